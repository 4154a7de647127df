"""Moving through latent space (points 14, 16): interpolation and coordinate edits."""

from __future__ import annotations
import torch
from gan_helpers.latent import METHODS, as_latent_vector, coordinate_influence
from collections.abc import Sequence
from gan_helpers.errors import UserError
from torch import nn


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int, method: str = "lerp") -> torch.Tensor:
    """Point 16: a (steps, 128) path whose first row is exactly `z_a` and last exactly `z_b`.

    ``'lerp'`` walks the straight line. ``'slerp'`` turns the direction along
    the great circle between the two and moves the length linearly from
    |z_a| to |z_b|. Gaussian latents in 128 dimensions lie near a sphere of
    radius about sqrt(128); the midpoint of a straight line between two of
    them is about 1/sqrt(2) as long, a vector the generator rarely saw in
    training, while slerp's stay at typical lengths.
    """
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise UserError(f"steps must be a whole number of at least 2 (both ends are included), not {steps!r}.")
    a, b = as_latent_vector(z_a, "z_a"), as_latent_vector(z_b, "z_b")
    if a.shape != b.shape:
        raise UserError(f"z_a and z_b must have the same length, not {a.numel()} and {b.numel()}.")
    t = torch.linspace(0, 1, steps, device=a.device).unsqueeze(1)
    norm_a, norm_b = a.norm(), b.norm()
    cosine = torch.dot(a, b) / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else torch.tensor(1.0)
    if method == "lerp" or cosine > 0.9995:  # (almost) parallel: the arc is a straight line
        path = (1 - t) * a + t * b
    else:
        if cosine < -0.9995:
            raise UserError("z_a and z_b point in opposite directions, so no single great circle joins them; use method='lerp'.")
        omega = torch.arccos(cosine.clamp(-1, 1))
        direction = (torch.sin((1 - t) * omega) * a / norm_a + torch.sin(t * omega) * b / norm_b) / torch.sin(omega)
        path = direction * ((1 - t) * norm_a + t * norm_b)
    path[0], path[-1] = a, b  # exact ends, whatever the rounding inside
    return path


def edit_coordinates(z: torch.Tensor, coords: Sequence[int], values: Sequence[float]) -> torch.Tensor:
    """Point 14: copies of `z` with one coordinate changed each, shape (len(coords) * len(values), 128).

    Row ``i * len(values) + j`` has coordinate ``coords[i]`` set to ``values[j]``;
    a grid with ``nrow=len(values)`` shows one coordinate per row.
    """
    z = as_latent_vector(z, "z")
    if not coords or not values:
        raise UserError("pass at least one coordinate and one value to edit.")
    bad = [c for c in coords if not 0 <= int(c) < z.numel()]
    if bad:
        raise UserError(f"coordinates {bad} are outside the latent vector; use indices 0 to {z.numel() - 1}.")
    rows = z.repeat(len(coords) * len(values), 1)
    for i, coord in enumerate(coords):
        for j, value in enumerate(values):
            rows[i * len(values) + j, int(coord)] = value
    return rows


def influential_coordinates(G: nn.Module, z: torch.Tensor, count: int = 4, seed: int = 0) -> tuple[list[int], int]:
    """The `count` coordinates whose change moves G's image most, and the one that moves it least."""
    order = coordinate_influence(G, z, probes=8, seed=seed).argsort(descending=True).tolist()
    return order[:count], order[-1]
