"""Mild random augmentation of real images at every use (point 5).

A horizontal mirror, a slight zoom in and a rotation by a very small angle,
built from torchvision's own transforms (v2). Every image of a batch gets
its own random draw, and all draws come from the global torch generator, so
``torch.manual_seed`` makes a run repeatable and the generator's state (saved
in checkpoints) lets a resumed run continue the same sequence.
"""

from __future__ import annotations

import math

import torch
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
    filled. `rotate_degrees`: the largest tilt either way. `enabled` False
    makes it the identity.
    """

    def __init__(self, flip: bool = True, zoom: float = 0.1, rotate_degrees: float = 3.0, enabled: bool = True) -> None:
        super().__init__()
        if zoom < 0 or rotate_degrees < 0:
            raise ValueError(f"zoom ({zoom}) and rotate_degrees ({rotate_degrees}) must not be negative")
        self.flip, self.zoom, self.rotate_degrees, self.enabled = flip, zoom, rotate_degrees, enabled
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
        if not self.enabled:
            return batch
        # v2 transforms draw one set of parameters per call, so a call per image
        # gives every image its own flip, angle and zoom.
        return torch.stack([self.transform(image) for image in batch]).clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"flip={self.flip}, zoom={self.zoom}, rotate_degrees={self.rotate_degrees}, enabled={self.enabled}"
