"""Figures of the latent tools (points 13–17): inversion strips and losses, edit grids, rows of images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from gan_helpers.latent import Inversion
from gan_helpers.plots import image_grid


def show_inversion(result: Inversion, title: str | None = None, size: float = 1.5):
    """Target, then the image at each recorded step (random -> imitation), then the loss curve."""
    pictures = [(result.target[0], "target")] + [(f, f"step {s}") for f, s in zip(result.frames, result.frame_steps)]
    size = min(size, 8.0 / (len(pictures) + 3))  # at most 8 inches wide: labels stay legible at print size
    fig = plt.figure(figsize=(size * (len(pictures) + 3), max(1.8, size * 1.8)), layout="constrained")
    grid = fig.add_gridspec(1, len(pictures) + 1, width_ratios=[1] * len(pictures) + [3])
    for i, (image, label) in enumerate(pictures):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(label, fontsize="small")
        ax.set_axis_off()
    plot_inversion_losses({"": result}, ax=fig.add_subplot(grid[0, -1]), legend=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_inversion_losses(results: dict[str, Inversion], ax=None, legend: bool = True):
    """Loss curves (MSE per step) of several inversions on one axes; log scale when they span a factor of 3."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    values = []
    for label, result in results.items():
        curve = [*result.losses, result.final_mse]
        values += [v for v in curve if math.isfinite(v) and v > 0]
        ax.plot(range(len(curve)), curve, marker="." if len(curve) < 30 else None, label=label or None)
    if values and max(values) > 3 * min(values):
        ax.set_yscale("log")
    else:  # a flat curve: plain numbers read better than log ticks 1e-1 apart
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("SGD step")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3, which="both")
    if legend and any(results):
        ax.legend(fontsize="small")
    return ax


def show_rows(rows: dict[str, torch.Tensor], title: str | None = None, size: float = 1.3):
    """One labelled row of images per entry (e.g. one per generator or per method), all (N, 3, 64, 64)."""
    width = max(r.shape[0] for r in rows.values())
    size = min(size, 8.0 / width)  # at most 8 inches wide
    fig, axes = plt.subplots(len(rows), 1, figsize=(size * width, size * len(rows) + 0.6), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items()):
        ax.imshow(image_grid(images, nrow=images.shape[0]).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(label, fontsize="small", loc="left")
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_edits(original: torch.Tensor, edited: torch.Tensor, coords: Sequence[int], values: Sequence[float], title: str | None = None, size: float = 1.3):
    """Point 14 grid: the unedited image, then one row per coordinate and one column per value."""
    size = min(size, 8.0 / (len(values) + 1))  # at most 8 inches wide
    fig, axes = plt.subplots(len(coords), len(values) + 1, figsize=(size * (len(values) + 1), size * len(coords) + 0.8), squeeze=False)
    for i, coord in enumerate(coords):
        for j in range(len(values) + 1):
            image = original.reshape(3, 64, 64) if j == 0 else edited[i * len(values) + j - 1]
            ax = axes[i, j]
            ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("found" if j == 0 else f"{values[j - 1]:+g}", fontsize="small")
        axes[i, 0].set_ylabel(f"z[{coord}]", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_inversions(results: dict[str, Inversion], title: str | None = None, width: float = 8.0):
    """Several inversions of one target in one figure: a row of frames per setting, then all loss curves."""
    first = next(iter(results.values()))
    columns = 1 + len(first.frames)
    size = width / columns
    fig = plt.figure(figsize=(width, size * len(results) + 2.6), layout="constrained")
    grid = fig.add_gridspec(len(results) + 1, columns, height_ratios=[size] * len(results) + [2.4])
    for row, (label, result) in enumerate(results.items()):
        pictures = [(result.target[0], "target")] + [(f, f"step {s}") for f, s in zip(result.frames, result.frame_steps)]
        for col, (image, caption) in enumerate(pictures):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(caption, fontsize=8)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
    plot_inversion_losses(results, ax=fig.add_subplot(grid[-1, :]))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
