"""Figures read from run folders: losses, verdicts, quality curves, the results at the reference epochs, a run's history strip."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from gan_helpers.errors import UserError
from gan_helpers.formatting import finite_number
from gan_helpers.paths import shown
from gan_helpers.plots import draw_image, image_grid, image_rows, label_height, milestone_epochs, pick_epochs, rate_changes, tile_grid
from gan_helpers.runs import run_folders
from gan_helpers.runs.quality import memorisation
from gan_helpers.runs.quality_records import best_epoch, favoured_model, read_quality
from gan_helpers.storage.atomic import atomic_write_bytes
from gan_helpers.storage.regular import open_regular_file


# A saved grid of 64 images of 64 px is 0.3 M pixels; a PNG whose header claims more than this is a decompression
# bomb (a few KB that decode to gigabytes) and is never decoded.
MAX_GRID_PIXELS = 25_000_000


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, label: str | None = None) -> Path:
    """Save a batch of images in [0, 1] as one PNG grid, atomically (a kill never leaves half a PNG).

    With a `label` (e.g. "epoch 50") the grid carries it in a strip above the images, and the PNG records that
    it does (its text chunk "label"), so a reader (read_png) can show the grid without the strip, and the
    evolution GIF labels only the grids that lack one.
    """
    pixels = image_grid(images, nrow).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    picture, info = Image.fromarray(pixels, "RGB"), PngInfo()
    if label is not None:
        picture = label_image(picture, label)
        info.add_text("label", label)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def label_image(image: Image.Image, text: str) -> Image.Image:
    """`image` with a white strip above it holding `text` in black."""
    height = label_height(image.width)
    labelled = Image.new("RGB", (image.width, image.height + height), "white")
    labelled.paste(image.convert("RGB"), (0, height))
    try:
        font = ImageFont.load_default(size=int(height * 0.8))  # scalable default font (Pillow >= 10.1)
    except TypeError:
        font = ImageFont.load_default()
    ImageDraw.Draw(labelled).text((4, height // 2), text, fill="black", font=font, anchor="lm")
    return labelled


def _runs_and_axes(run_dirs, labels: Sequence[str] | None, ax) -> tuple[list, Sequence[str], object]:
    """One run folder or several as a list, their labels (default: the folders' names) and the axes to draw on
    (a new figure's when `ax` is None): the start of every plot of runs' curves."""
    run_dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3))
    return run_dirs, labels or [Path(r).name for r in run_dirs], ax


def plot_losses(run_dirs: Sequence[str | Path] | str | Path, labels: Sequence[str] | None = None, ax=None, legend: bool = True):
    """Mean discriminator (solid) and generator (dashed) loss per epoch of one or more runs (from metrics.jsonl).

    ``legend=False`` leaves the legend to :func:`run_style_legend` (one for a figure of several panels).
    """
    run_dirs, labels, ax = _runs_and_axes(run_dirs, labels, ax)
    for run_dir, label, color in zip(run_dirs, labels, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 2):
        metrics = run_folders.read_metrics(run_dir)
        for key, style in (("loss_D", "-"), ("loss_G", "--")):
            epochs, values = finite_points(metrics, key)
            ax.plot(epochs, values, color=color, linestyle=style, marker="." if len(epochs) < 30 else None, label=f"{label} {key}")
    return epoch_axes(ax, "mean binary cross entropy", legend)


def finite_points(records: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of the records whose `key` is a finite number: a missing, mistyped, NaN or infinite value
    (metrics.jsonl may hold ``Infinity``) is no point, so matplotlib never meets it."""
    points = [(r["epoch"], finite_number(r.get(key))) for r in records]
    kept = [(epoch, value) for epoch, value in points if value is not None]
    return [e for e, _ in kept], [v for _, v in kept]


def epoch_axes(ax, ylabel: str, legend: bool | str = True):
    """Whole epochs along x, a label on y, a light grid and (if `legend`) a small legend in room made above the
    curves, or with ``legend="beside"`` right of the axes (a figure with constrained layout keeps it inside its width)."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # at most 6 labels: "1500" and "2000" never touch in a half-width panel
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend == "beside":
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    elif legend:
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + (high - low) * 0.2 * len(ax.get_lines()))
        ax.legend(fontsize="small", loc="upper right")
    return ax


def show_nearest_pairs(samples: torch.Tensor | dict[str, torch.Tensor], reals: torch.Tensor, count: int = 8,
                       title: str | None = None):
    """The `count` samples closest to a training image (the memorisation check), each above that image.

    Each column is titled with its ratio (see gan_helpers.runs.quality.memorisation:
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
        found = memorisation(group, reals)
        order = found["ratio"].argsort()[:count].tolist()
        nearest = [reals[found["index"][i]].flip(-1) if found["mirrored"][i] else reals[found["index"][i]] for i in order]
        ratios = [f"{found['ratio'][i]:.2f}" + (" copy" if found["near_copy"][i] else "") for i in order]
        tile_grid(panel, [[group[i] for i in order], nearest], ratios, ["sample", "nearest"])
        if label is not None:
            panel.suptitle(label)
    fig.suptitle(title or "samples closest to a training image (ratio to that image's own nearest neighbour)")
    return fig


def plot_quality(run_dirs: Sequence[str | Path] | str | Path, labels: Sequence[str] | None = None, key: str = "swd",
                 calibration: Sequence[dict] | None = None, ax=None):
    """One quality number (default SWD ×10³) per recorded epoch of one or more runs (from quality.jsonl): G's solid,
    G_ema's (the average of G's weights, where the run keeps one) dashed in the same colour.

    With `calibration` rows (gan_helpers.runs.quality.calibration) the floor and
    ceiling rows are drawn as horizontal lines, so the curves read against them.
    The legend stands to the right of the axes: a figure with constrained
    layout keeps it inside its width.
    """
    run_dirs, labels, ax = _runs_and_axes(run_dirs, labels, ax)
    for run_dir, label in zip(run_dirs, labels):
        records, averaged = read_quality(run_dir), read_quality(run_dir, "G_ema")
        line, = ax.plot([r["epoch"] for r in records], [r[key] for r in records], marker="." if len(records) < 30 else None,
                        label=f"{label} G" if averaged else label)
        if averaged:
            ax.plot([r["epoch"] for r in averaged], [r[key] for r in averaged], linestyle="--", color=line.get_color(),
                    marker="." if len(averaged) < 30 else None, label=f"{label} G_ema")
    # The calibration lines are named in the legend: labels on the axes would cross the curves and each other
    # (the two ceilings lie close together).
    ceiling_styles = iter(["--", "-.", (0, (5, 1, 1, 1, 1, 1))])
    for row in calibration or []:
        if row["case"] in ("floor", "ceiling"):
            style = ":" if row["case"] == "floor" else next(ceiling_styles, "--")
            ax.axhline(row[key], color="grey", linestyle=style, linewidth=1, label=row["label"])
    ax.margins(y=0.05)
    return epoch_axes(ax, "SWD ×10³ (lower: closer)" if key == "swd" else key, legend="beside")


def plot_verdicts(run_dirs: dict[str, str | Path], ax=None, legend: bool = True):
    """The discriminator's mean probability "real" per epoch, for reals (solid) and fakes (dashed), per run;
    a dotted vertical line where the run's lr_d changed (point 10), just before the first epoch at the new rate."""
    _, _, ax = _runs_and_axes(list(run_dirs.values()), list(run_dirs), ax)
    for label, run_dir in run_dirs.items():
        metrics = run_folders.read_metrics(run_dir)
        epochs = [m["epoch"] for m in metrics]
        line, = ax.plot(epochs, [m["D_x"] for m in metrics], label=f"{label} D(x)")
        ax.plot(epochs, [m["D_G_z"] for m in metrics], linestyle="--", color=line.get_color(), label=f"{label} D(G(z))")
        for epoch, old, new in rate_changes(metrics):
            ax.axvline(epoch - 0.5, linestyle=":", color=line.get_color())
            ax.annotate(f"lr_d {old:g} → {new:g}", (epoch - 0.5, 0.97), rotation=90, va="top", ha="right",
                        fontsize="x-small", color=line.get_color())
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    return epoch_axes(ax, "mean probability 'real'", legend)


REFERENCE_EPOCHS = (10, 300, 900, 2000)  # the epochs of the exercise's reference samples


def reference_epochs(available: Sequence[int], reference: Sequence[int] = REFERENCE_EPOCHS) -> list[int]:
    """The saved epochs to compare with the exercise's reference samples: each reference epoch the run has a grid
    of (else the nearest one it has), and the last epoch reached in place of those beyond it."""
    if not available:
        return []
    last = max(available)
    return sorted({last if target >= last else min(available, key=lambda a: (abs(a - target), a)) for target in reference})


def results_rows(run_dir: str | Path, samples: int = 8) -> list[tuple[str, torch.Tensor]]:
    """(label, images) rows of :func:`show_results`: the fixed-noise samples of G, then of G_ema where the run
    keeps its grids, at the reference epochs and, for the generator points 13–17 use (``favoured_model``), at the
    epoch its quality records rate best (marked "chosen")."""
    rows = []
    favoured = favoured_model(run_dir)
    for model, average in (("G", False), ("G_ema", True)):
        saved = run_folders.samples(run_dir, average=average)
        if not saved:
            continue
        try:
            chosen = best_epoch(run_dir, model=model)[0] if model == favoured else None
        except UserError:  # no quality records of this model at a kept checkpoint: the reference epochs alone
            chosen = None
        epochs = sorted({*reference_epochs(list(saved)), *([chosen] if chosen in saved else [])})
        for epoch in epochs:
            note = ", chosen" if epoch == chosen else ", last" if epoch == max(saved) else ""
            rows.append((f"epoch {epoch}\n{model}{note}", grid_tiles(saved[epoch], samples)))  # two short lines: room for the tiles
    return rows


def show_results(run_dir: str | Path, samples: int = 8, title: str | None = None, label_width: float = 1.3):
    """The result of a run, large: a row of `samples` fixed-noise images per epoch (:func:`results_rows`), the whole
    6.7 in text width, so with 8 samples each image prints at about 1.8 cm (never below 1.5 cm up to 10 samples)."""
    rows = results_rows(run_dir, samples)
    columns = max((images.shape[0] for _, images in rows), default=1)
    size = (6.5 - label_width) / max(columns, 1)
    fig = plt.figure(figsize=(6.5, (size * 66 / 64 + 0.12) * max(len(rows), 1) + (0.35 if title else 0.1)), layout="constrained")
    if rows:
        image_rows(fig, rows)
    if title:
        fig.suptitle(title)
    return fig


def history_epochs(run_dir: str | Path, limit: int = 39) -> list[int]:
    """The saved sample epochs a history strip shows: every one after epoch 0, or `limit` of them: the milestones
    (:func:`gan_helpers.plots.milestone_epochs`) and the rest spread evenly over the run. 39 and the column of
    training images fill two rows of 20 in :func:`show_history`."""
    saved = [epoch for epoch in run_folders.samples(run_dir) if epoch > 0]
    milestones = set(milestone_epochs(saved, limit))
    rest = [epoch for epoch in saved if epoch not in milestones]
    return sorted(milestones | set(pick_epochs(rest, limit - len(milestones))))


def show_history(run_dir: str | Path, samples: int = 4, per_row: int = 20, size: float = 0.3):
    """A run's history in one compact strip: a column per saved sample epoch (:func:`history_epochs`), the first
    `samples` fixed latent vectors down it, and a last column of training images; `per_row` columns to a block,
    blocks below one another. A 64-pixel tile at `size` 0.3 in prints at about 210 ppi.
    """
    saved = run_folders.samples(run_dir)
    columns = [(str(epoch), grid_tiles(saved[epoch], samples)) for epoch in history_epochs(run_dir)]
    columns.append(("real", grid_tiles(Path(run_dir) / "reals.png", samples)))
    blocks = [columns[start:start + per_row] for start in range(0, len(columns), per_row)]
    wide = min(per_row, len(columns))  # a short history is a short strip, not a wide empty figure
    fig = plt.figure(figsize=(size * wide + 0.4, len(blocks) * (size * samples + 0.3)), layout="constrained")
    for ax, block in zip(fig.subplots(len(blocks), 1, squeeze=False)[:, 0], blocks):
        tiles = torch.stack([images[row] for row in range(samples) for _, images in block])  # row r: latent r, epoch by epoch
        draw_image(ax, image_grid(tiles, nrow=len(block)), frame=True)
        step = tiles.shape[-1] + 2
        ax.set_xticks([2 + step * i + step // 2 for i in range(len(block))], [label for label, _ in block], fontsize=8)
        ax.tick_params(length=0, pad=2)
        ax.set_anchor("W")
    fig.supxlabel("epoch", fontsize=8)
    return fig


def read_png(path: str | Path) -> tuple[np.ndarray, bool]:
    """The (H, W, 3) RGB pixels of a saved picture (a run's sample grid, reals.png) and whether a label strip is drawn
    in (:func:`gan_helpers.runs.run_plots.save_grid`).

    A run folder or a shipped result may come from someone else, so the file
    is read only when it is a regular file (:func:`~gan_helpers.storage.regular.open_regular_file`)
    and decoded only when its header claims at most :data:`MAX_GRID_PIXELS`;
    anything else is one sentence naming it.
    """
    with open_regular_file(path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below is stricter
        try:
            with Image.open(handle, formats=["PNG"]) as image:
                claimed = f"{image.width}×{image.height}"
                if image.width * image.height <= MAX_GRID_PIXELS:
                    return np.asarray(image.convert("RGB")), "label" in getattr(image, "text", {})
        except Image.DecompressionBombError:  # Pillow's own guard, at twice its MAX_IMAGE_PIXELS
            claimed = "hundreds of millions of"
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            raise UserError(f"{shown(path)} is not a PNG picture that can be decoded ({error}); delete it, or the "
                            f"run folder it came with.") from None
    raise UserError(f"{shown(path)} claims {claimed} pixels, more than a sample grid ever has ({MAX_GRID_PIXELS:,} at "
                    f"most), so it is not decoded (a decompression bomb); delete it, or the run folder it came with.")


def show_png(path: str | Path, title: str | None = None, ax=None, size: float = 6.0):
    """Draw a saved PNG (a run's sample grid, say) on `ax`.

    A grid saved with its label drawn above it (gan_helpers.runs.run_plots.save_grid) is shown
    without that strip when a `title` names it: at figure size the strip's
    text would print far below 8 pt, and the title says the same.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    pixels, labelled = read_png(path)
    if labelled and title:
        pixels = pixels[label_height(pixels.shape[1]):]
    ax.imshow(pixels, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def grid_tiles(path: str | Path, count: int | None = None, tile: int = 64, padding: int = 2) -> torch.Tensor:
    """The first `count` images (all when None) of a saved sample grid, as (N, 3, tile, tile) in [0, 1].

    Reads the layout :func:`save_grid` writes (`padding` white pixels around
    each `tile`-pixel image, row by row); a label strip above the grid
    is skipped.
    """
    pixels, labelled = read_png(path)
    if labelled:
        pixels = pixels[label_height(pixels.shape[1]):]
    step = tile + padding
    rows, columns = (pixels.shape[0] - padding) // step, (pixels.shape[1] - padding) // step
    found = [pixels[padding + r * step:padding + r * step + tile, padding + c * step:padding + c * step + tile]
             for r in range(rows) for c in range(columns)]
    found = found[:count] if count is not None else found
    return torch.from_numpy(np.stack(found)).permute(0, 3, 1, 2).float().div(255)
