"""Augmentation (point 5): random per image, mild, no black corners, reproducible."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from gan_helpers.augment import Augment, min_zoom


def smooth_images(count: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Soft colour blobs in [0, 1] with no left-right symmetry, like a photo at low resolution."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_keeps_shape_dtype_and_range():
    images = smooth_images(8)
    out = Augment()(images)
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert out.device == images.device
    assert out.min() >= 0 and out.max() <= 1


def test_every_image_and_every_call_gets_its_own_draw():
    augment = Augment()
    batch = smooth_images(1).repeat(16, 1, 1, 1)  # one image, sixteen times
    first, second = augment(batch), augment(batch)
    # Within a batch: copies of the same image come out different from each other.
    distinct = {tuple(img.flatten()[:: 97].tolist()) for img in first}
    assert len(distinct) == 16
    # Across calls: the same input gives a different result.
    assert not torch.allclose(first, second)
    # Mild: each copy stays close to the original (a tilt and zoom, not a different picture).
    unflipped = (first - batch).abs().mean(dim=(1, 2, 3))
    flipped = (first - batch.flip(-1)).abs().mean(dim=(1, 2, 3))
    assert torch.minimum(unflipped, flipped).max() < 0.1


def test_flip_happens_about_half_the_time():
    torch.manual_seed(1)
    images = smooth_images(1).repeat(200, 1, 1, 1)
    out = Augment(flip=True, zoom=0.0, rotate_degrees=0.0)(images)
    same = torch.isclose(out, images, atol=1e-5).flatten(1).all(dim=1)
    mirrored = torch.isclose(out, images.flip(-1), atol=1e-5).flatten(1).all(dim=1)
    assert bool((same | mirrored).all())  # nothing else happens without zoom and rotation
    assert 60 < int(mirrored.sum()) < 140


def test_disabled_is_identity():
    images = smooth_images(4)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    out = Augment(enabled=False)(images)
    assert torch.equal(out, images)
    assert torch.equal(torch.get_rng_state(), state)  # draws nothing either


@pytest.mark.parametrize("degrees", [3.0, 10.0])
def test_no_black_corners_or_borders(degrees):
    torch.manual_seed(0)
    white = torch.ones(64, 3, 64, 64)
    out = Augment(zoom=0.1, rotate_degrees=degrees)(white)
    border = torch.cat([out[..., 0, :], out[..., -1, :], out[..., :, 0], out[..., :, -1]], dim=-1)
    assert border.min() > 0.98
    # The guard matters: with less zoom than min_zoom the corners do go dark.
    from torchvision.transforms.v2 import functional as F

    short = F.affine(white[0], angle=degrees, translate=[0, 0], scale=0.97 * min_zoom(degrees), shear=[0, 0],
                     interpolation=F.InterpolationMode.BILINEAR)
    assert short[:, 0, 0].max() < 0.5


def test_rotation_and_zoom_actually_vary():
    torch.manual_seed(0)
    images = smooth_images(1).repeat(32, 1, 1, 1)
    out = Augment(flip=False, zoom=0.1, rotate_degrees=3.0)(images)
    # Without flips every output is a geometric variant; they differ from the input and from each other.
    assert (out - images).abs().mean(dim=(1, 2, 3)).min() > 1e-3
    assert out.std(dim=0).mean() > 1e-3


def test_reproducible_from_torch_seed_only():
    images = smooth_images(8)
    augment = Augment()
    torch.manual_seed(123)
    random.seed(1)
    np.random.seed(1)
    first = augment(images)
    torch.manual_seed(123)
    random.seed(2)  # python's and numpy's generators must not matter
    np.random.seed(2)
    second = augment(images)
    assert torch.equal(first, second)
    torch.manual_seed(124)
    assert not torch.equal(first, augment(images))


def test_resumes_from_saved_rng_state():
    images = smooth_images(8)
    augment = Augment()
    torch.manual_seed(5)
    augment(images)
    state = torch.get_rng_state()  # what a checkpoint stores
    expected = augment(images)
    torch.manual_seed(999)
    torch.set_rng_state(state)
    assert torch.equal(augment(images), expected)


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        Augment()(torch.rand(3, 64, 64))


def test_min_zoom_covers_rotated_square():
    assert min_zoom(0) == pytest.approx(1.0)
    assert min_zoom(3.0) == pytest.approx(np.cos(np.radians(3)) + np.sin(np.radians(3)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_gpu_and_matches_seeded_cpu_draws():
    images = smooth_images(8)
    torch.manual_seed(7)
    cpu = Augment()(images)
    torch.manual_seed(7)
    gpu = Augment()(images.cuda())
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)
