"""Shared fixtures: tiny data sets and a fast torch for 2-core machines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def write_image_folder(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` smooth random 64x64 RGB PNGs, like a prepared data set."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.BILINEAR).save(folder / f"img{i:03d}.png")
    return folder


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A prepared data set of 8 images."""
    return write_image_folder(tmp_path / "tiny", 8)


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread per test: tiny tensors on a shared 2-core machine run several times slower with two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
