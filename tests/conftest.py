"""Shared fixtures: tiny data sets and a fast torch for 2-core machines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from image_folders import write_image_folder


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

