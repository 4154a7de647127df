"""Figures the notebooks show: image grids, loss curves, sample evolution, code excerpts.

Sized for print (report/README.md): the report scales a figure to the 6.5 in
text width, so line plots, whose legends are set small, are drawn 6.5 in wide
(printed 1:1), and image figures at most 8 in wide with 10 pt text (printed
at 8 pt or more).
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import torch
from torchvision.utils import make_grid, save_image

from gan_helpers import runs
from gan_helpers.atomic import atomic_open


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """A (3, H, W) grid of a batch (N, 3, h, w) in [0, 1]; square-ish when nrow is None."""
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> None:
    """Save a batch of images in [0, 1] as one PNG grid (atomically: a kill never leaves half a PNG)."""
    with atomic_open(path, "wb") as f:
        save_image(image_grid(images, nrow), f, format="png")


def show_images(images: torch.Tensor, nrow: int | None = None, title: str | None = None, ax=None, size: float = 6.0):
    """Draw a batch of images in [0, 1] as a grid on `ax` (a new figure when None)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(image_grid(images, nrow).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_png(path: str | Path, title: str | None = None, ax=None, size: float = 6.0):
    """Draw a saved PNG (a run's sample grid, say) on `ax`.

    A grid saved with its label drawn above it (gan_helpers.animation) is shown
    without that strip when a `title` names it: at figure size the strip's
    text would print far below 8 pt, and the title says the same.
    """
    import numpy as np
    from PIL import Image

    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    with Image.open(path) as image:
        labelled = "label" in getattr(image, "text", {})
        pixels = np.asarray(image.convert("RGB"))
    if labelled and title:
        pixels = pixels[max(14, pixels.shape[1] // 22):]  # the strip's height in animation.label_image
    ax.imshow(pixels, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def grid_tiles(path: str | Path, count: int | None = None, tile: int = 64, padding: int = 2) -> torch.Tensor:
    """The first `count` images (all when None) of a saved sample grid, as (N, 3, tile, tile) in [0, 1].

    Reads the layout :func:`save_grid` writes (`padding` white pixels around
    each `tile`-pixel image, row by row); a label strip above the grid
    (gan_helpers.animation) is skipped.
    """
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        labelled = "label" in getattr(image, "text", {})
        pixels = np.asarray(image.convert("RGB"))
    if labelled:
        pixels = pixels[max(14, pixels.shape[1] // 22):]
    step = tile + padding
    rows, columns = (pixels.shape[0] - padding) // step, (pixels.shape[1] - padding) // step
    found = [pixels[padding + r * step:padding + r * step + tile, padding + c * step:padding + c * step + tile]
             for r in range(rows) for c in range(columns)]
    found = found[:count] if count is not None else found
    return torch.from_numpy(np.stack(found)).permute(0, 3, 1, 2).float().div(255)


def _image_rows(fig, rows: Sequence[tuple[str, torch.Tensor]]) -> None:
    """One axes per (label, images) entry of `rows`: the images side by side, the label on the left."""
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (label, images) in zip(axes, rows):
        ax.imshow(image_grid(images, nrow=images.shape[0]).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_anchor("W")
        _row_label(ax, label)
        ax.yaxis.label.set(rotation=0, ha="right", va="center")


def plot_losses(run_dirs: Sequence[str | Path] | str | Path, labels: Sequence[str] | None = None, ax=None, legend: bool = True):
    """Mean discriminator (solid) and generator (dashed) loss per epoch of one or more runs (from metrics.jsonl).

    ``legend=False`` leaves the legend to :func:`run_style_legend` (one for a figure of several panels).
    """
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    labels = labels or [Path(r).name for r in run_dirs]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3))
    for run_dir, label, color in zip(run_dirs, labels, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 2):
        metrics = runs.read_metrics(run_dir)
        epochs = [m["epoch"] for m in metrics]
        ax.plot(epochs, [m["loss_D"] for m in metrics], color=color, linestyle="-", marker="." if len(epochs) < 30 else None, label=f"{label} loss_D")
        ax.plot(epochs, [m["loss_G"] for m in metrics], color=color, linestyle="--", marker="." if len(epochs) < 30 else None, label=f"{label} loss_G")
    return _epoch_axes(ax, "mean binary cross entropy", legend)


def _epoch_axes(ax, ylabel: str, legend: bool = True):
    """Whole epochs along x, a label on y, a light grid and (if `legend`) a small legend in room made above the curves."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + (high - low) * 0.2 * len(ax.get_lines()))
        ax.legend(fontsize="small", loc="upper right")
    return ax


def run_style_legend(fig, labels: Sequence[str]) -> None:
    """One legend under a figure of loss and verdict panels drawn with ``legend=False``.

    A colour per run (in the order the panels drew them), a solid line for
    the discriminator's curve (loss_D, D(x) of reals) and a dashed one for the
    generator's (loss_G, D(G(z)) of fakes). The figure needs constrained layout.
    """
    from matplotlib.lines import Line2D

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = [Line2D([], [], color=color) for color in colors[:len(labels)]]
    handles += [Line2D([], [], color="grey"), Line2D([], [], color="grey", linestyle="--")]
    names = [*labels, "solid: loss_D; D(x) of reals", "dashed: loss_G; D(G(z)) of fakes"]
    fig.legend(handles, names, loc="outside lower center", ncol=len(handles) if len(labels) == 1 else 2, fontsize="small")


def pick_epochs(available: Sequence[int], count: int) -> list[int]:
    """Up to `count` epochs spread evenly over `available`, always with the first and last."""
    available = sorted(available)
    if len(available) <= count:
        return available
    step = (len(available) - 1) / (count - 1)
    return sorted({available[round(i * step)] for i in range(count)})


def early_and_late_epochs(available: Sequence[int], count: int) -> list[int]:
    """Up to `count` of `available`, first and last always, the others evenly spaced in log(epoch + 1).

    The samples change most in the first epochs (point 10: watch every
    epoch at first), so these get more of the rows: of 0-2000 with 8 rows,
    epochs 0, 2, 8, 20, 80, 230, 660 and 2000 where they were saved.
    """
    available = sorted(set(available))
    if len(available) <= count:
        return available
    top = math.log(available[-1] + 1)
    chosen: list[int] = []
    for i in range(count):
        target = math.log(available[0] + 1) + (top - math.log(available[0] + 1)) * i / (count - 1)
        free = [a for a in available if a not in chosen]
        chosen.append(min(free, key=lambda a: abs(math.log(a + 1) - target)))
    return sorted(chosen)


def show_sample_evolution(run_dir: str | Path, count: int = 6, epochs: Sequence[int] | None = None, title: str | None = None,
                          size: float = 0.95, reals: bool = False, samples: int = 6):
    """The first `samples` fixed-noise images of a run at several saved epochs: a row per epoch, a column per latent vector.

    Epochs default to :func:`early_and_late_epochs` (more rows early, where
    the samples change most). Each image is at most `size` inches square and
    the figure fits the 6.5 in text width, so an image prints at 2 cm or
    more. ``reals`` adds a row of real training images (``reals.png``).
    """
    saved = runs.samples(run_dir)
    epochs = list(epochs) if epochs is not None else early_and_late_epochs(list(saved), count)
    rows = [(f"epoch {epoch}", grid_tiles(saved[epoch], samples)) for epoch in epochs]
    if reals:
        rows.append(("real images", grid_tiles(Path(run_dir) / "reals.png", samples)))
    columns = max(images.shape[0] for _, images in rows)
    label_width = 0.8
    size = min(size, (6.5 - label_width) / columns)
    fig = plt.figure(figsize=(size * columns + label_width, (size + 0.06) * len(rows) + (0.35 if title else 0.05)),
                     layout="constrained")
    _image_rows(fig, rows)
    if title:
        fig.suptitle(title)
    return fig


def show_nearest_pairs(samples: torch.Tensor | dict[str, torch.Tensor], reals: torch.Tensor, count: int = 8,
                       title: str | None = None):
    """The `count` samples closest to a training image (the memorisation check), each above that image.

    Each column is titled with its ratio (see gan_helpers.quality.memorisation:
    about 1 for a new image, 0 for a copy); the training image is shown
    mirrored where its mirror was the nearer one. A dict of samples (one
    entry per generator, say) sets its groups side by side, each under its name.
    """
    groups = samples if isinstance(samples, dict) else {None: samples}
    columns = count * len(groups)
    size = min(1.6, 7.5 / columns)  # at most 8 inches wide: 10 pt text prints at 8 pt or more
    fig = plt.figure(figsize=(size * columns + 0.5, 2 * size + 0.9), layout="constrained")
    panels = fig.subfigures(1, len(groups), squeeze=False)[0] if len(groups) > 1 else [fig]
    for panel, (label, group) in zip(panels, groups.items()):
        _nearest_pair_columns(panel, group, reals, count)
        if label is not None:
            panel.suptitle(label)
    fig.suptitle(title or "samples closest to a training image (ratio to that image's own nearest neighbour)")
    return fig


def _nearest_pair_columns(fig, samples: torch.Tensor, reals: torch.Tensor, count: int) -> None:
    from gan_helpers.quality import memorisation

    found = memorisation(samples, reals)
    order = found["ratio"].argsort()[:count].tolist()
    axes = fig.subplots(2, len(order), squeeze=False)
    for col, i in enumerate(order):
        neighbour = reals[found["index"][i]]
        neighbour = neighbour.flip(-1) if found["mirrored"][i] else neighbour
        for row, image in enumerate((samples[i], neighbour)):
            axes[row, col].imshow(image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[0, col].set_title(f"{found['ratio'][i]:.2f}" + (" copy" if found["near_copy"][i] else ""))
    axes[0, 0].set_ylabel("sample")
    axes[1, 0].set_ylabel("nearest")


def plot_quality(run_dirs: Sequence[str | Path] | str | Path, labels: Sequence[str] | None = None, key: str = "swd",
                 calibration: Sequence[dict] | None = None, ax=None):
    """One quality number (default SWD ×10³) per recorded epoch of one or more runs (from quality.jsonl).

    With `calibration` rows (gan_helpers.quality.calibration) the floor and
    ceiling rows are drawn as horizontal lines, so the curves read against them.
    The legend stands to the right of the axes: a figure with constrained
    layout keeps it inside its width.
    """
    from gan_helpers.evaluate import read_quality

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    labels = labels or [Path(r).name for r in run_dirs]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3))
    for run_dir, label in zip(run_dirs, labels):
        records = read_quality(run_dir)
        ax.plot([r["epoch"] for r in records], [r[key] for r in records], marker="." if len(records) < 30 else None, label=label)
    for row in calibration or []:
        if row["case"] in ("floor", "ceiling"):
            ax.axhline(row[key], color="grey", linestyle=":" if row["case"] == "floor" else "--", linewidth=1)
            # At the right end: every curve starts at its untrained generator's ceiling, on the left.
            ax.annotate(row["label"], (0.99, row[key]), xycoords=("axes fraction", "data"), fontsize=8.5, color="grey",
                        ha="right", va="bottom")
    ax.margins(y=0.1)  # room for the label above the highest line
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("SWD ×10³ (lower: closer)" if key == "swd" else key)
    ax.grid(alpha=0.3)
    # Beside the axes, clear of the curves and of the calibration labels (draw the figure with constrained layout).
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return ax


def show_source(*objects, brief: bool = False, excerpt: tuple[str, str] | None = None) -> None:
    """Display the source code of classes or functions as a highlighted block (for `[code]` points).

    ``brief`` cuts every docstring to its first paragraph (closed by ``[…]``):
    the code stays complete, the prose stays in the package. ``excerpt=(first,
    last)`` prints one function's signature (without type hints) and only
    its lines from the first one containing `first` to the next one containing
    `last`, with ``...`` where lines are left out, and without its progress
    bars: the core of a long function.
    """
    from IPython.display import Markdown, display

    from gan_helpers.report.spec_code import drop_plumbing, short_docstrings, source_excerpt

    if excerpt is not None and len(objects) != 1:
        raise ValueError("excerpt= needs exactly one object")
    for obj in objects:
        module = inspect.getmodule(obj).__name__
        code = textwrap.dedent(inspect.getsource(obj)).rstrip()
        if brief:
            code = short_docstrings(code)
        if excerpt is not None:
            code = drop_plumbing(source_excerpt(obj, code, *excerpt))
        display(Markdown(f"`{module}.{obj.__qualname__}`\n\n```python\n{code}\n```"))


def rate_changes(metrics: list[dict], key: str = "lr_d") -> list[tuple[int, float, float]]:
    """(first epoch at the new rate, old rate, new rate) wherever `key` changed between epochs of `metrics`."""
    known = [m for m in metrics if key in m]
    return [(b["epoch"], a[key], b[key]) for a, b in zip(known, known[1:]) if a[key] != b[key]]


def plot_verdicts(run_dirs: dict[str, str | Path], ax=None, legend: bool = True):
    """The discriminator's mean probability "real" per epoch, for reals (solid) and fakes (dashed), per run;
    a dotted vertical line where the run's lr_d changed (point 10), just before the first epoch at the new rate."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3))
    for label, run_dir in run_dirs.items():
        metrics = runs.read_metrics(run_dir)
        epochs = [m["epoch"] for m in metrics]
        line, = ax.plot(epochs, [m["D_x"] for m in metrics], label=f"{label} D(x)")
        ax.plot(epochs, [m["D_G_z"] for m in metrics], linestyle="--", color=line.get_color(), label=f"{label} D(G(z))")
        for epoch, old, new in rate_changes(metrics):
            ax.axvline(epoch - 0.5, linestyle=":", color=line.get_color())
            ax.annotate(f"lr_d {old:g} → {new:g}", (epoch - 0.5, 0.97), rotation=90, va="top", ha="right",
                        fontsize="x-small", color=line.get_color())
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    return _epoch_axes(ax, "mean probability 'real'", legend)


def plot_step_trace(trace: dict[str, list[float]], ax=None):
    """Point 7: D(x) and D(G(z)) at every step of the first steps of training (from checks.trace_steps)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 2.5))
    steps = range(1, len(trace["D_x"]) + 1)
    ax.plot(steps, trace["D_x"], label="D(x): real images")
    ax.plot(steps, trace["D_G_z"], label="D(G(z)): fakes")
    ax.set_ylim(0, 1)
    ax.set_xlabel("training step (one D step and one G step)")
    ax.set_ylabel("mean probability 'real'")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def show_untrained(outputs: dict[str, torch.Tensor], size: float = 1.8):
    """Untrained generators' outputs: as they are, contrast stretched, and a 16x16 corner enlarged (points 3, 11).

    One row per entry of `outputs`, named on its left; the columns are named once, on top.
    """
    fig, axes = plt.subplots(len(outputs), 3, figsize=(3 * size + 0.4, size * len(outputs) + 0.4), squeeze=False)
    for number, (row, (label, images)) in enumerate(zip(axes, outputs.items())):
        stretched = (images - images.min()) / (images.max() - images.min()).clamp_min(1e-12)
        show_images(images, nrow=4, ax=row[0])
        show_images(stretched, nrow=4, ax=row[1])
        row[2].imshow(stretched[0, :, :16, :16].permute(1, 2, 0).numpy(), interpolation="nearest")
        row[2].set_axis_off()
        if number == 0:
            for ax, name in zip(row, ("as generated", "stretched", "16×16 corner")):
                ax.set_title(name)
        _row_label(row[0], label)
    fig.tight_layout()
    return fig


def _row_label(ax, label: str) -> None:
    """Name a row of image panels on the left of its first axes (which otherwise shows no frame or ticks)."""
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(label)


def show_runs_at_epochs(run_dirs: dict[str, str | Path], count: int = 5, epochs: dict[str, Sequence[int]] | None = None,
                        notes: dict[str, dict[int, str]] | None = None, size: float = 0.85, samples: int = 3):
    """The first `samples` fixed-noise images of several runs at the same epochs: a panel per run, side by side,
    a row per epoch in each.

    `epochs` gives each run its own epochs instead (panels may differ in
    length); `notes` adds a word to an epoch's label, e.g. {"transposed": {40: "chosen"}}.
    Each image is at most `size` inches square and the figure fits the 6.5 in
    text width, so an image prints at 2 cm or more with two runs of three.
    """
    if epochs is None:
        common = sorted(set.intersection(*(set(runs.samples(r)) for r in run_dirs.values())))
        epochs = {label: early_and_late_epochs(common, count) for label in run_dirs}
    shared = len({tuple(e) for e in epochs.values()}) == 1 and not notes  # then only the first panel names the rows
    label_width = 0.8
    labels = 1 if shared else len(run_dirs)
    size = min(size, (6.5 - label_width * labels - 0.1 * len(run_dirs)) / (samples * len(run_dirs)))
    height = max(len(e) for e in epochs.values())
    fig = plt.figure(figsize=(size * samples * len(run_dirs) + label_width * labels + 0.1 * len(run_dirs), (size + 0.06) * height + 0.35),
                     layout="constrained")
    panels = fig.subfigures(1, len(run_dirs), squeeze=False,
                            width_ratios=[size * samples + (label_width if i < labels else 0) for i in range(len(run_dirs))])[0]
    for number, (panel, (label, run_dir)) in enumerate(zip(panels, run_dirs.items())):
        saved = runs.samples(run_dir)
        rows = []
        for epoch in epochs[label]:
            note = (notes or {}).get(label, {}).get(epoch)
            name = f"epoch {epoch}" + (f"\n({note})" if note else "")
            rows.append((name if number < labels else "", grid_tiles(saved[epoch], samples)))
        _image_rows(panel, rows)
        panel.suptitle(label)
    return fig


def show_centre_crops(images: dict[str, torch.Tensor], crop: int = 32, size: float = 1.6):
    """The central crop x crop pixels of one image per entry, enlarged without smoothing (grid artifacts up close)."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.4), squeeze=False)
    for ax, (title, image) in zip(axes[0], images.items()):
        start = (image.shape[-1] - crop) // 2
        ax.imshow(image[:, start:start + crop, start:start + crop].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    return fig
