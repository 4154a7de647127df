"""Augmentation (point 5): random per image, mild, no black corners, reproducible.

Every behaviour is checked for both implementations: the per-image
torchvision reference (Augment) and the batched one training uses
(BatchAugment), which must draw from the same distribution and apply the
same geometry.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from torchvision.transforms.v2 import functional as TF
from training_twins import smooth_images

from gan_helpers.augment import Augment, BatchAugment, min_zoom

BOTH = pytest.mark.parametrize("Kind", [Augment, BatchAugment])


@BOTH
def test_keeps_shape_dtype_and_range(Kind):
    images = smooth_images(8)
    out = Kind()(images)
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert out.device == images.device
    assert out.min() >= 0 and out.max() <= 1


@BOTH
def test_every_image_and_every_call_gets_its_own_draw(Kind):
    augment = Kind()
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


@BOTH
def test_flip_happens_about_half_the_time(Kind):
    torch.manual_seed(1)
    images = smooth_images(1).repeat(200, 1, 1, 1)
    out = Kind(flip=True, zoom=0.0, rotate_degrees=0.0)(images)
    same = torch.isclose(out, images, atol=1e-5).flatten(1).all(dim=1)
    mirrored = torch.isclose(out, images.flip(-1), atol=1e-5).flatten(1).all(dim=1)
    assert bool((same | mirrored).all())  # nothing else happens without zoom and rotation
    assert 60 < int(mirrored.sum()) < 140


@BOTH
@pytest.mark.parametrize("degrees", [3.0, 10.0])
def test_no_black_corners_or_borders(Kind, degrees):
    torch.manual_seed(0)
    white = torch.ones(64, 3, 64, 64)
    out = Kind(zoom=0.1, rotate_degrees=degrees)(white)
    border = torch.cat([out[..., 0, :], out[..., -1, :], out[..., :, 0], out[..., :, -1]], dim=-1)
    assert border.min() > 0.98
    # The guard matters: with less zoom than min_zoom the corners do go dark.
    from torchvision.transforms.v2 import functional as F

    short = F.affine(white[0], angle=degrees, translate=[0, 0], scale=0.97 * min_zoom(degrees), shear=[0, 0],
                     interpolation=F.InterpolationMode.BILINEAR)
    assert short[:, 0, 0].max() < 0.5


@BOTH
def test_rotation_and_zoom_actually_vary(Kind):
    torch.manual_seed(0)
    images = smooth_images(1).repeat(32, 1, 1, 1)
    out = Kind(flip=False, zoom=0.1, rotate_degrees=3.0)(images)
    # Without flips every output is a geometric variant; they differ from the input and from each other.
    assert (out - images).abs().mean(dim=(1, 2, 3)).min() > 1e-3
    assert out.std(dim=0).mean() > 1e-3


@BOTH
def test_reproducible_from_torch_seed_only(Kind):
    images = smooth_images(8)
    augment = Kind()
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


@BOTH
def test_resumes_from_saved_rng_state(Kind):
    images = smooth_images(8)
    augment = Kind()
    torch.manual_seed(5)
    augment(images)
    state = torch.get_rng_state()  # what a checkpoint stores
    expected = augment(images)
    torch.manual_seed(999)
    torch.set_rng_state(state)
    assert torch.equal(augment(images), expected)


@BOTH
def test_rejects_wrong_shapes(Kind):
    with pytest.raises(ValueError, match="B, 3, H, W"):
        Kind()(torch.rand(3, 64, 64))


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batched_draws_on_the_gpu_repeat_and_apply_like_the_cpu():
    images = smooth_images(8).cuda()
    augment = BatchAugment()
    torch.manual_seed(7)
    first = augment(images)
    torch.manual_seed(7)
    assert torch.equal(augment(images), first) and first.device.type == "cuda"
    draws = augment.draw(8, torch.device("cuda"))
    cpu = BatchAugment.apply(images.cpu(), *(d.cpu() for d in draws))
    assert torch.allclose(BatchAugment.apply(images, *draws).cpu(), cpu, atol=1e-4)


def test_batched_geometry_is_torchvisions():
    """Mirror, rotation and zoom land on the same pixels as torchvision's hflip + affine (also for H != W)."""
    for shape in ((4, 3, 64, 64), (4, 3, 32, 48)):
        images = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        flips = torch.tensor([False, True, False, True])
        angles = torch.tensor([3.0, -2.0, 0.5, -7.0])
        scales = torch.tensor([1.06, 1.1, 1.0, 1.2])
        out = BatchAugment.apply(images, flips, angles, scales)
        for image, flip, angle, scale, got in zip(images, flips, angles, scales, out):
            expected = TF.affine(TF.hflip(image) if flip else image, angle=float(angle), translate=[0, 0],
                                 scale=float(scale), shear=[0, 0], interpolation=TF.InterpolationMode.BILINEAR)
            assert (got - expected).abs().max() < 1e-5


def ks_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical distributions."""
    both = torch.cat([a, b]).sort().values
    cdf_a = torch.searchsorted(a.sort().values, both, right=True) / len(a)
    cdf_b = torch.searchsorted(b.sort().values, both, right=True) / len(b)
    return float((cdf_a - cdf_b).abs().max())


def test_batched_draws_follow_the_torchvision_distribution():
    count, degrees, zoom = 2000, 3.0, 0.1
    reference = Augment(zoom=zoom, rotate_degrees=degrees)
    flip_step, affine_step = reference.transform.transforms
    torch.manual_seed(0)
    image = [torch.rand(3, 8, 8)]
    ref = [affine_step.make_params(image) for _ in range(count)]
    ref_angles = torch.tensor([p["angle"] for p in ref])
    ref_scales = torch.tensor([p["scale"] for p in ref])
    assert flip_step.p == 0.5
    flips, angles, scales = BatchAugment(zoom=zoom, rotate_degrees=degrees).draw(count, torch.device("cpu"))
    cover = min_zoom(degrees)
    assert angles.abs().max() <= degrees and angles.min() < -0.99 * degrees and angles.max() > 0.99 * degrees
    assert scales.min() >= cover and scales.max() <= cover * (1 + zoom) * (1 + 1e-6)
    # With 2000 draws each, a KS distance above 0.08 would mean different distributions (p < 0.0001).
    assert ks_distance(angles, ref_angles) < 0.08
    assert ks_distance(scales, ref_scales) < 0.08
    assert 0.45 < flips.float().mean() < 0.55
    # Per-image independence: neither neighbouring images nor flip, angle and zoom of one image are linked.
    draws = torch.stack([flips.float(), angles, scales])
    assert torch.corrcoef(draws).fill_diagonal_(0).abs().max() < 0.1
    assert abs(float(torch.corrcoef(torch.stack([angles[:-1], angles[1:]]))[0, 1])) < 0.1
    assert not BatchAugment(flip=False).draw(100, torch.device("cpu"))[0].any()


@pytest.mark.parametrize("degrees", [3.0, 10.0])
def test_batched_extreme_draws_keep_corners_filled(degrees):
    """The smallest zoom at the largest tilt either way still covers the frame; a little less does not."""
    white = torch.ones(4, 3, 64, 64)
    cover = min_zoom(degrees)
    angles = torch.tensor([degrees, -degrees, degrees, -degrees])
    flips = torch.tensor([False, False, True, True])
    out = BatchAugment.apply(white, flips, angles, torch.full((4,), cover))
    border = torch.cat([out[..., 0, :], out[..., -1, :], out[..., :, 0], out[..., :, -1]], dim=-1)
    assert border.min() > 0.98
    short = BatchAugment.apply(white, flips, angles, torch.full((4,), 0.97 * cover))
    assert short[..., 0, 0].max() < 0.5
