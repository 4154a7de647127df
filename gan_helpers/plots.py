"""Figures the notebooks show: image grids, loss curves, sample evolution, code excerpts.

Sized for print (report/README.md): the report scales a figure to the 6.7 in
text width, so line plots, whose legends are set small, are drawn 6.5 in wide
(printed about 1:1), and image figures at most 8 in wide with 10 pt text (printed
at 8 pt or more).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid


def label_height(width: int) -> int:
    """The height of the label strip drawn above a saved grid `width` pixels wide (gan_helpers.runs.run_plots.save_grid)."""
    return max(14, width // 22)


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """A (3, H, W) grid of a batch (N, 3, h, w) in [0, 1]; square-ish when nrow is None."""
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)


def show_images(images: torch.Tensor, nrow: int | None = None, title: str | None = None, ax=None, size: float = 6.0):
    """Draw a batch of images in [0, 1] as a grid on `ax` (a new figure when None)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    return draw_image(ax, image_grid(images, nrow), title)


def draw_image(ax, image: torch.Tensor, title: str | None = None, *, frame: bool = False):
    """Draw one image (3, H, W) in [0, 1] on `ax`, pixel for pixel: without axes, or with `frame` in a box without
    ticks (a row of such boxes can be named by its first axes' y label)."""
    ax.imshow(image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
    if frame:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def tile_grid(fig, rows: Sequence[Sequence[torch.Tensor]], titles: Sequence[str] = (), labels: Sequence[str] = ()):
    """Framed images on `fig` (a figure or a subfigure), an axes row per entry of `rows`: the first row's axes
    titled with `titles`, each row named on its left by `labels`. Returns the axes, (rows, columns)."""
    axes = fig.subplots(len(rows), max(map(len, rows)), squeeze=False)
    for axes_row, images in zip(axes, rows):
        for ax, image in zip(axes_row, images):
            draw_image(ax, image, frame=True)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title)
    for ax, label in zip(axes[:, 0], labels):
        ax.set_ylabel(label)
    return axes


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
    if len(available) <= count or count < 2:
        return available[:max(count, 0)]
    step = (len(available) - 1) / (count - 1)
    return sorted({available[round(i * step)] for i in range(count)})


# Point 10 watches every epoch at first: the grids shown are at these epochs (the nearest saved one) and the last.
MILESTONE_EPOCHS = (1, 10, 100, 300, 1000, 3000)
# Further rows, where `count` leaves room, in this order: early epochs, then the untrained generator.
EXTRA_EPOCHS = (3, 30, 0, 2, 5, 20, 50)


def milestone_epochs(available: Sequence[int], count: int) -> list[int]:
    """Up to `count` of `available`: the saved epochs nearest 1, 10, 100, 300, 1000 … and the last, then early ones.

    Of 0-2000 saved every epoch to 20 and every 10 after (the full
    profile), 7 rows are epochs 1, 3, 10, 100, 300, 1000 and 2000; of a
    run stopped at 330 they are 1, 3, 10, 30, 100, 300 and 330.
    """
    available = sorted(set(available))
    if len(available) <= count:
        return available
    last = available[-1]
    chosen = [last]
    wanted = [e for e in MILESTONE_EPOCHS if e < last] + [e for e in EXTRA_EPOCHS if e < last]
    for target in wanted:
        if len(chosen) == count:
            break
        nearest = min(available, key=lambda a: (abs(a - target), a))
        if nearest not in chosen:
            chosen.append(nearest)
    return sorted(chosen)


def rate_changes(metrics: list[dict], key: str = "lr_d") -> list[tuple[int, float, float]]:
    """(first epoch at the new rate, old rate, new rate) wherever `key` changed between epochs of `metrics`."""
    known = [m for m in metrics if key in m]
    return [(b["epoch"], a[key], b[key]) for a, b in zip(known, known[1:]) if a[key] != b[key]]


def plot_step_trace(trace: dict[str, list[float]], ax=None):
    """Point 7: D(x) and D(G(z)) at every step of the first steps of training (from gan_helpers.step_inspection.trace_steps)."""
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
        draw_image(row[2], stretched[0, :, :16, :16])
        if number == 0:
            for ax, name in zip(row, ("as generated", "stretched", "16×16 corner")):
                ax.set_title(name)
        row_label(row[0], label)
    fig.tight_layout()
    return fig


def image_rows(fig, rows: Iterable[tuple[str, torch.Tensor]]) -> None:
    """One axes per (label, images) entry of `rows`: the images side by side, the label on the left."""
    rows = list(rows)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (label, images) in zip(axes, rows):
        draw_image(ax, image_grid(images, nrow=images.shape[0]))
        ax.set_anchor("W")
        row_label(ax, label)
        ax.yaxis.label.set(rotation=0, ha="right", va="center")


def row_label(ax, label: str) -> None:
    """Name a row of image panels on the left of its first axes (which otherwise shows no frame or ticks)."""
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(label)


def show_centre_crops(images: dict[str, torch.Tensor], crop: int = 32, size: float = 1.6):
    """The central crop x crop pixels of one image per entry, enlarged without smoothing (grid artifacts up close)."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.4), squeeze=False)
    for ax, (title, image) in zip(axes[0], images.items()):
        start = (image.shape[-1] - crop) // 2
        draw_image(ax, image[:, start:start + crop, start:start + crop], title)
    fig.tight_layout()
    return fig
