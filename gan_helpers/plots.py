"""Figures the notebooks show: image grids, loss curves, sample evolution, code excerpts."""

from __future__ import annotations

import inspect
import math
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
    """Draw a saved PNG (a run's sample grid, say) on `ax`."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(plt.imread(path), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_losses(run_dirs: Sequence[str | Path] | str | Path, labels: Sequence[str] | None = None, ax=None):
    """Mean discriminator and generator loss per epoch of one or more runs (from metrics.jsonl)."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    labels = labels or [Path(r).name for r in run_dirs]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for run_dir, label, color in zip(run_dirs, labels, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 2):
        metrics = runs.read_metrics(run_dir)
        epochs = [m["epoch"] for m in metrics]
        ax.plot(epochs, [m["loss_D"] for m in metrics], color=color, linestyle="-", marker="." if len(epochs) < 30 else None, label=f"{label}: loss_D")
        ax.plot(epochs, [m["loss_G"] for m in metrics], color=color, linestyle="--", marker="." if len(epochs) < 30 else None, label=f"{label}: loss_G")
    return _epoch_axes(ax, "mean binary cross entropy")


def _epoch_axes(ax, ylabel: str):
    """Whole epochs along x, a label on y, a light grid and a small legend."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def pick_epochs(available: Sequence[int], count: int) -> list[int]:
    """Up to `count` epochs spread evenly over `available`, always with the first and last."""
    available = sorted(available)
    if len(available) <= count:
        return available
    step = (len(available) - 1) / (count - 1)
    return sorted({available[round(i * step)] for i in range(count)})


def show_sample_evolution(run_dir: str | Path, count: int = 6, epochs: Sequence[int] | None = None, title: str | None = None):
    """The fixed-noise sample grids of a run at several saved epochs, side by side."""
    saved = runs.samples(run_dir)
    epochs = list(epochs) if epochs is not None else pick_epochs(list(saved), count)
    width = min(3.0, 8.0 / len(epochs))  # at most 8 inches: labels stay legible at print size
    fig, axes = plt.subplots(1, len(epochs), figsize=(width * len(epochs), width + 0.5), squeeze=False)
    for ax, epoch in zip(axes[0], epochs):
        show_png(saved[epoch], title=f"epoch {epoch}", ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_nearest_pairs(samples: torch.Tensor, reals: torch.Tensor, count: int = 8, title: str | None = None):
    """The `count` samples closest to a training image (the memorisation check), each above that image.

    Each column is titled with its ratio (see gan_helpers.quality.memorisation:
    about 1 for a new image, 0 for a copy); the training image is shown
    mirrored where its mirror was the nearer one.
    """
    from gan_helpers.quality import memorisation

    found = memorisation(samples, reals)
    order = found["ratio"].argsort()[:count].tolist()
    fig, axes = plt.subplots(2, len(order), figsize=(1.6 * len(order), 3.7), squeeze=False)
    for col, i in enumerate(order):
        neighbour = reals[found["index"][i]]
        neighbour = neighbour.flip(-1) if found["mirrored"][i] else neighbour
        for row, image in enumerate((samples[i], neighbour)):
            axes[row, col].imshow(image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[0, col].set_title(f"{found['ratio'][i]:.2f}" + (" copy" if found["near_copy"][i] else ""), fontsize="small")
    axes[0, 0].set_ylabel("sample")
    axes[1, 0].set_ylabel("nearest\ntraining image")
    fig.suptitle(title or "samples closest to a training image (ratio to that image's own nearest neighbour)", fontsize="medium")
    fig.tight_layout()
    return fig


def plot_quality(run_dirs: Sequence[str | Path] | str | Path, labels: Sequence[str] | None = None, key: str = "swd",
                 calibration: Sequence[dict] | None = None, ax=None):
    """One quality number (default SWD ×10³) per recorded epoch of one or more runs (from quality.jsonl).

    With `calibration` rows (gan_helpers.quality.calibration) the floor and
    ceiling rows are drawn as horizontal lines, so the curves read against them.
    """
    from gan_helpers.evaluate import read_quality

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    labels = labels or [Path(r).name for r in run_dirs]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for run_dir, label in zip(run_dirs, labels):
        records = read_quality(run_dir)
        ax.plot([r["epoch"] for r in records], [r[key] for r in records], marker="." if len(records) < 30 else None, label=label)
    for row in calibration or []:
        if row["case"] in ("floor", "ceiling"):
            ax.axhline(row[key], color="grey", linestyle=":" if row["case"] == "floor" else "--", linewidth=1)
            ax.annotate(row["label"], (0, row[key]), xycoords=("axes fraction", "data"), fontsize="x-small", color="grey", va="bottom")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("SWD ×10³ (lower is closer to the data)" if key == "swd" else key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def show_source(*objects) -> None:
    """Display the source code of classes or functions as a highlighted block (for `[code]` points)."""
    from IPython.display import Markdown, display

    for obj in objects:
        module = inspect.getmodule(obj).__name__
        display(Markdown(f"`{module}.{obj.__qualname__}`\n\n```python\n{inspect.getsource(obj).rstrip()}\n```"))


def plot_verdicts(run_dirs: dict[str, str | Path], ax=None):
    """The discriminator's mean probability "real" per epoch, for reals (solid) and fakes (dashed), per run."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for label, run_dir in run_dirs.items():
        metrics = runs.read_metrics(run_dir)
        epochs = [m["epoch"] for m in metrics]
        line, = ax.plot(epochs, [m["D_x"] for m in metrics], label=f"{label}: D(x), real")
        ax.plot(epochs, [m["D_G_z"] for m in metrics], linestyle="--", color=line.get_color(), label=f"{label}: D(G(z)), fake")
    ax.set_ylim(0, 1)
    return _epoch_axes(ax, "mean probability 'real'")


def plot_step_trace(trace: dict[str, list[float]], ax=None):
    """Point 7: D(x) and D(G(z)) at every step of the first steps of training (from checks.trace_steps)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    steps = range(1, len(trace["D_x"]) + 1)
    ax.plot(steps, trace["D_x"], label="D(x): real images")
    ax.plot(steps, trace["D_G_z"], label="D(G(z)): fakes")
    ax.set_ylim(0, 1)
    ax.set_xlabel("training step (one D step and one G step)")
    ax.set_ylabel("mean probability 'real'")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def show_untrained(outputs: dict[str, torch.Tensor], size: float = 2.6):
    """Untrained generators' outputs: as they are, contrast stretched, and a 16x16 corner enlarged (points 3, 11)."""
    fig, axes = plt.subplots(len(outputs), 3, figsize=(3 * size, size * len(outputs)), squeeze=False)
    for row, (label, images) in zip(axes, outputs.items()):
        stretched = (images - images.min()) / (images.max() - images.min()).clamp_min(1e-12)
        show_images(images, nrow=4, title=f"{label}: as generated", ax=row[0])
        show_images(stretched, nrow=4, title=f"{label}: contrast stretched", ax=row[1])
        row[2].imshow(stretched[0, :, :16, :16].permute(1, 2, 0).numpy(), interpolation="nearest")
        row[2].set_title(f"{label}: 16×16 corner, stretched")
        row[2].set_axis_off()
    fig.tight_layout()
    return fig


def show_runs_at_epochs(run_dirs: dict[str, str | Path], count: int = 5):
    """The fixed-noise grids of several runs at the same epochs: one row per run."""
    common = sorted(set.intersection(*(set(runs.samples(r)) for r in run_dirs.values())))
    epochs = pick_epochs(common, count)
    fig, axes = plt.subplots(len(run_dirs), len(epochs), figsize=(1.6 * len(epochs), 1.9 * len(run_dirs)), squeeze=False)
    for row, (label, run_dir) in zip(axes, run_dirs.items()):
        for ax, epoch in zip(row, epochs):
            show_png(runs.samples(run_dir)[epoch], title=f"{label}, epoch {epoch}", ax=ax)
            ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def show_centre_crops(images: dict[str, torch.Tensor], crop: int = 32):
    """The central crop x crop pixels of one image per entry, enlarged without smoothing (grid artifacts up close)."""
    fig, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 2.9), squeeze=False)
    for ax, (title, image) in zip(axes[0], images.items()):
        start = (image.shape[-1] - crop) // 2
        ax.imshow(image[:, start:start + crop, start:start + crop].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return fig
