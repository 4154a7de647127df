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


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """A (3, H, W) grid of a batch (N, 3, h, w) in [0, 1]; square-ish when nrow is None."""
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> None:
    """Save a batch of images in [0, 1] as one PNG grid."""
    save_image(image_grid(images, nrow), path)


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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean binary cross entropy")
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
    fig, axes = plt.subplots(1, len(epochs), figsize=(3 * len(epochs), 3.3), squeeze=False)
    for ax, epoch in zip(axes[0], epochs):
        show_png(saved[epoch], title=f"epoch {epoch}", ax=ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_source(*objects) -> None:
    """Display the source code of classes or functions as a highlighted block (for `[code]` points)."""
    from IPython.display import Markdown, display

    for obj in objects:
        module = inspect.getmodule(obj).__name__
        display(Markdown(f"`{module}.{obj.__qualname__}`\n\n```python\n{inspect.getsource(obj).rstrip()}\n```"))
