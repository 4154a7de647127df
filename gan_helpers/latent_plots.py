"""Figures of the latent tools (points 13–17): inversion strips and losses, edit grids, rows of images."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from gan_helpers.latent import Inversion
from gan_helpers.plots import image_rows, tile_grid


def plot_inversion_losses(results: dict[str, Inversion], ax=None, legend: bool | str = True):
    """Loss curves (MSE per step) of several inversions on one axes; log scale when they span a factor of 3.

    The legend sits in room made for it above the curves, or with
    ``legend="below"`` under the axes (a narrow panel, where it would cover them).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    values = []
    for label, result in results.items():
        curve = [*result.losses, result.final_mse]
        values += [v for v in curve if math.isfinite(v) and v > 0]
        ax.plot(range(len(curve)), curve, marker="." if len(curve) < 30 else None, label=label or None)
    if values and max(values) > 3 * min(values):
        ax.set_yscale("log")  # labels at 1, 2 and 5 times a power of ten only, so a short panel's labels never collide
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):  # a flat curve: plain numbers read better
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)  # than log ticks 1e-1 apart; a y axis shared
        # with a log-scale panel keeps that panel's log ticks
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # a few whole steps: legible in a narrow panel
    ax.set_xlabel("SGD step")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3, which="both")
    if legend == "below" and any(results):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)  # full size: the figure prints at 81 %
    elif legend and any(results):  # room above the curves for the legend, so it covers none of them
        low, high = ax.get_ylim()
        share = 0.15 * len(results)
        if ax.get_yscale() != "log":
            ax.set_ylim(low, high + (high - low) * share)
        else:  # limits a linear panel sharing this axis set may be zero or negative: take the curves' own then
            low, high = (low, high) if 0 < low < high else (min(values, default=0.1), max(values, default=1.0))
            ax.set_ylim(low, high * (high / low) ** share)
        ax.legend(loc="upper right")
    return ax


def show_rows(rows: dict[str, torch.Tensor], title: str | None = None, size: float = 1.3, label_width: float = 1.6):
    """One row of images per entry (e.g. one per generator or per method), all (N, 3, 64, 64), named on its left.

    Images are at most `size` inches square and the figure at most 8 inches
    wide; a label may hold a line break. Shorter rows start at the left edge.
    """
    width = max(r.shape[0] for r in rows.values())
    size = min(size, (8.0 - label_width) / width)
    fig = plt.figure(figsize=(size * width + label_width, (size + 0.08) * len(rows) + (0.4 if title else 0.1)))
    image_rows(fig, rows.items())
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_edit_groups(groups: dict[str, tuple[torch.Tensor, torch.Tensor, Sequence[int]]], values: Sequence[float],
                     title: str | None = None, size: float = 1.3):
    """Point 14 grids side by side, one per entry (e.g. per generator): (found image, edited images, coordinates).

    In each grid the first column is the unedited image and each further
    column sets the row's coordinate to one of `values`; the whole figure is
    at most 8 inches wide, so its 10 pt labels print at 8 pt or more.
    """
    columns = len(values) + 1
    rows = max(len(coords) for _, _, coords in groups.values())
    size = min(size, (8.0 - 0.5 * len(groups)) / (columns * len(groups)) - 0.1)
    named = any(groups)
    fig = plt.figure(figsize=((size + 0.1) * columns * len(groups) + 0.5 * len(groups), (size + 0.05) * rows + 0.45 + 0.3 * named + 0.3 * bool(title)),
                     layout="constrained")
    panels = fig.subfigures(1, len(groups), squeeze=False)[0] if len(groups) > 1 else [fig]
    titles = ["found"] + [f"{value:+g}" if value else "0" for value in values]  # not "+0"
    for panel, (name, (original, edited, coords)) in zip(panels, groups.items()):
        images = [[original.reshape(3, 64, 64), *edited[i * len(values):(i + 1) * len(values)]] for i in range(len(coords))]
        tile_grid(panel, images, titles, [f"z[{coord}]" for coord in coords])
        if name:  # the figure's own title when it is one panel
            panel.suptitle(name)
    if title:
        fig.suptitle(title)
    return fig


def show_inversions(results: dict[str, Inversion] | dict[str, dict[str, Inversion]], title: str | None = None,
                    width: float = 8.0, height: float = 9.0, tile: float = 0.9, label_width: float = 0.9,
                    loss_height: float = 1.6):
    """Inversions of one target: a row of frames per setting (random start to imitation), the loss curves below.

    A dict of dicts groups the rows (one group per generator, say): each
    group is named above its rows and has its own loss panel, side by side
    under all the frames, with one legend for them. Frames are titled with
    the SGD step they show (the bare number where frames are small), from
    the group's first row; a row whose frames are at other steps (a longer
    setting) names its own range under its name; rows are named on their left; the figure is at most `width` inches wide and
    `height` high (at 10 pt, a figure up to 8 × 9 inches prints its text at 8 pt or more).
    """
    groups = results if all(isinstance(v, dict) for v in results.values()) else {"": results}
    first = next(iter(next(iter(groups.values())).values()))
    columns = 1 + len(first.frames)
    # Each group: its name, the first row's step titles, then its rows of frames; below them all, the loss panels.
    fixed = [0.25 + 0.3 * bool(name) for name in groups]
    rows = sum(len(group) for group in groups.values())
    below = loss_height + 0.35 + 0.35 * bool(title)
    tile = min(tile, (width - label_width - 0.2) / columns, (height - sum(fixed) - below) / (1.05 * rows))
    heights = [1.05 * tile * len(group) + extra for group, extra in zip(groups.values(), fixed)]
    heights.append(loss_height + 0.35)
    fig = plt.figure(figsize=(tile * columns + label_width + 0.2, sum(heights) + 0.35 * bool(title)), layout="constrained")
    parts = fig.subfigures(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
    for panel, (name, group) in zip(parts, groups.items()):
        steps = next(iter(group.values())).frame_steps  # the column titles are the first row's
        names = [f"{label}\nsteps {result.frame_steps[0]}–{result.frame_steps[-1]}" if result.frame_steps != steps
                 else label for label, result in group.items()]
        axes = tile_grid(panel, [[result.target[0], *result.frames] for result in group.values()],
                         ["target", *(f"step {s}" if tile >= 0.7 else str(s) for s in steps)], names)
        for ax in axes[:, 0]:
            ax.yaxis.label.set(rotation=0, ha="right", va="center")
        if name:
            panel.suptitle(name)
    loss_axes = parts[-1].subplots(1, len(groups), squeeze=False)[0]
    panel_width = fig.get_figwidth() / len(groups) - 0.7  # less the tick labels and "MSE"
    for ax, (name, group) in zip(loss_axes, groups.items()):
        plot_inversion_losses(group, ax=ax, legend=False)
        if name:  # on two lines where a narrow panel's title would run into its neighbour's (about 11 characters per inch at 10 pt)
            ax.set_title(textwrap.fill(name, max(10, int(11 * panel_width))))
    handles, labels = loss_axes[0].get_legend_handles_labels()
    if any(labels):
        parts[-1].legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False)
    if title:
        fig.suptitle(title)
    return fig
