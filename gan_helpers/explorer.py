"""The latent explorer (point 14, interactively): sliders for a few coordinates of a found vector.

Needs a live kernel with ipywidgets; the report and batch runs skip it.
Each slider starts at the found value, and its range covers that value
with room either side, so the first image shown is the inversion's own.
The widgets' last state (slider values, picture) is saved with the notebook
(JupyterLab's widget ``saveState`` setting, which ``make setup`` turns on),
so the explorer still shows after a reload; after a kernel restart it is a
picture only, until its cell runs again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_helpers.errors import UserError
from gan_helpers.models import generate
from gan_helpers.plots import show_images


def latent_explorer(G: nn.Module, z: torch.Tensor, coords: Sequence[int], title: str, size: float = 3.0):
    """A widget: one slider per coordinate in `coords` beside the image G draws from the edited vector."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    if z.numel() != G.latent_dim:
        raise UserError(f"the explorer takes one latent vector of {G.latent_dim} values, not a tensor of shape {tuple(z.shape)}.")
    bad = [c for c in coords if not 0 <= c < G.latent_dim]
    if not coords or bad:
        raise UserError(f"pick coordinates to explore from 0 to {G.latent_dim - 1} (got {list(coords)}).")
    base = z.detach().reshape(1, -1).clone()
    sliders = []
    for coord in coords:
        value = float(base[0, coord])
        reach = max(4.0, math.ceil(abs(value)) + 1.0)  # symmetric about 0, at least ±4, `value` with a margin of 1
        sliders.append(widgets.FloatSlider(value=value, min=-reach, max=reach, step=0.01,
                                           description=f"z[{coord}]", continuous_update=False, readout_format=".2f"))
    output = widgets.Output()

    def redraw(_change=None) -> None:
        edited = base.clone()
        for coord, slider in zip(coords, sliders):
            edited[0, coord] = slider.value
        with output:
            output.clear_output(wait=True)
            show_images(generate(G, edited), title=title, size=size)
            plt.show()

    for slider in sliders:
        slider.observe(redraw, names="value")
    redraw()
    return widgets.HBox([widgets.VBox(sliders), output])
