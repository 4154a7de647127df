"""Tiny image folders for tests (a module of its own: tests/browser has a conftest of its own too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folder(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` smooth random 64x64 RGB PNGs, like a prepared data set."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.BILINEAR).save(folder / f"img{i:03d}.png")
    return folder
