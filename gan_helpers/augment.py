"""Mild random augmentation of real images at every use (point 5).

A horizontal mirror, a slight zoom in and a rotation by a very small angle.
:class:`Augment` builds it from torchvision's own transforms (v2), one image
at a time; :class:`BatchAugment` draws the same random settings for a whole
batch at once and resamples all images in one ``affine_grid``/``grid_sample``
call, on the batch's device: what training uses, since on a GPU it is a
handful of kernels per batch (and can be captured in a CUDA graph) instead of
several per image. Every image of a batch gets its own random draw, and the
draws come from torch's generator (the CPU one for :class:`Augment`, the
batch device's for :class:`BatchAugment`), so ``torch.manual_seed`` makes a
run repeatable and the generators' states (saved in checkpoints) let a
resumed run continue the same sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


def min_zoom(rotate_degrees: float) -> float:
    """The zoom that hides the corners of an image rotated by up to `rotate_degrees`.

    A square turned by angle a needs cos(a) + sin(a) times its size to cover
    the original frame; any less and black fill shows in the corners.
    """
    angle = math.radians(abs(rotate_degrees))
    return math.cos(angle) + math.sin(angle)


class Augment(torch.nn.Module):
    """Randomly mirror, zoom into and slightly rotate each image of a batch.

    `flip`: mirror left-right with probability 0.5. `zoom`: extra zoom in
    of up to this fraction beyond what the rotation needs to keep borders
    filled. `rotate_degrees`: the largest tilt either way. Training without
    augmentation passes none (``augment=None``).
    """

    def __init__(self, flip: bool = True, zoom: float = 0.1, rotate_degrees: float = 3.0) -> None:
        super().__init__()
        if zoom < 0 or rotate_degrees < 0:
            raise ValueError(f"zoom ({zoom}) and rotate_degrees ({rotate_degrees}) must not be negative")
        self.flip, self.zoom, self.rotate_degrees = flip, zoom, rotate_degrees
        cover = min_zoom(rotate_degrees)
        steps = [v2.RandomHorizontalFlip(p=0.5)] if flip else []
        # One resampling for rotation and zoom together keeps the image sharper than two.
        steps.append(v2.RandomAffine(degrees=rotate_degrees, scale=(cover, cover * (1 + zoom)),
                                     interpolation=v2.InterpolationMode.BILINEAR))
        self.transform = v2.Compose(steps)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the same shape, dtype and device, each image drawn anew."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch of shape (B, 3, H, W), got {tuple(batch.shape)}")
        # v2 transforms draw one set of parameters per call, so a call per image
        # gives every image its own flip, angle and zoom.
        return torch.stack([self.transform(image) for image in batch]).clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"flip={self.flip}, zoom={self.zoom}, rotate_degrees={self.rotate_degrees}"


class BatchAugment(Augment):
    """:class:`Augment`'s flip, zoom and rotation for a whole batch in one resampling.

    Same settings, ranges and corner rule; each image still gets its own
    draw. The geometry is torchvision's (``F.affine`` after ``F.hflip``,
    bilinear, zero fill), written as one affine sampling grid per image.
    """

    def draw(self, count: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random (flips, angles in degrees, scales) for `count` images, from one call to `device`'s generator."""
        u = torch.rand(count, 3, device=device)
        flips = (u[:, 0] < 0.5) & self.flip
        angles = (2 * u[:, 1] - 1) * self.rotate_degrees
        cover = min_zoom(self.rotate_degrees)
        scales = cover * (1 + self.zoom * u[:, 2])
        return flips, angles, scales

    @staticmethod
    def apply(batch: torch.Tensor, flips: torch.Tensor, angles: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """Mirror (where `flips`), rotate by `angles` degrees and zoom in by `scales`, about each image's centre."""
        height, width = batch.shape[-2:]
        radians = torch.deg2rad(angles.to(batch.dtype))
        cos, sin = radians.cos() / scales, radians.sin() / scales
        mirror = 1 - 2 * flips.to(batch.dtype)  # a mirrored input is sampled at -x
        zero = torch.zeros_like(cos)
        # Output (x, y) samples the input at the inverse rotation and zoom, in
        # grid coordinates [-1, 1]; the aspect factors keep it a rotation when H != W.
        theta = torch.stack([
            torch.stack([mirror * cos, mirror * sin * (height / width), zero], dim=1),
            torch.stack([-sin * (width / height), cos, zero], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the same shape, dtype and device, each image drawn anew."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch of shape (B, 3, H, W), got {tuple(batch.shape)}")
        return self.apply(batch, *self.draw(batch.shape[0], batch.device)).clamp_(0.0, 1.0)
