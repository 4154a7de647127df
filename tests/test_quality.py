"""Quality measures: SWD as ProGAN built it, its calibration order, diversity and the memorisation check."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from gan_helpers.runs import quality
from gan_helpers.runs.quality import (
    calibration, degrade, laplacian_pyramid, mean_pairwise_distance, measure, memorisation, swd, swd_levels,
    untrained_samples,
)

FAST = dict(nhoods_per_image=32, directions=32, repeats=2)  # ProGAN uses 128, 128 and 4



def synthetic_sky(count: int, *, seed: int = 0) -> torch.Tensor:
    """`count` galaxy-like 64×64 images: one to three soft coloured ellipses and faint stars on black.

    A stand-in data set for checking the measures when no image folder is at hand.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    images = torch.zeros(count, 3, 64, 64)
    for i in range(count):
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            cy, cx = (torch.rand(2, generator=g) * 32 + 16).tolist()
            major, minor = (torch.rand(2, generator=g) * torch.tensor([12.0, 5.0]) + torch.tensor([4.0, 2.0])).tolist()
            angle = float(torch.rand(1, generator=g)) * math.pi
            u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
            v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
            colour = torch.tensor([0.9, 0.8, 0.6]) + torch.rand(3, generator=g) * torch.tensor([0.1, 0.2, 0.4])
            images[i] += colour.view(3, 1, 1) * torch.exp(-0.5 * ((u / major) ** 2 + (v / minor) ** 2))
        stars = torch.randint(0, 64 * 64, (20,), generator=g)
        images[i].view(3, -1)[:, stars] += torch.rand(20, generator=g) * 0.8
    return images.clamp(0, 1)


@pytest.fixture(scope="module")
def sky() -> torch.Tensor:
    return synthetic_sky(64, seed=1)


def _rebuild(pyramid: list[torch.Tensor]) -> torch.Tensor:
    image = pyramid[-1]
    for band in pyramid[-2::-1]:
        up = torch.zeros_like(band)
        up[:, :, ::2, ::2] = image
        image = quality._filter(up, gain=4.0) + band
    return image


def test_pyramid_has_levels_64_32_16_and_sums_back_to_the_images(sky):
    pyramid = laplacian_pyramid(sky[:4])
    assert [level.shape[-1] for level in pyramid] == list(quality.SWD_LEVELS)
    assert torch.allclose(_rebuild(pyramid), sky[:4], atol=1e-5)
    assert pyramid[0].mean().abs() < 0.01, "the finest level is band-pass: it carries no mean brightness"
    flat = laplacian_pyramid(torch.full((1, 3, 64, 64), 0.3))
    assert all(band.abs().max() < 1e-6 for band in flat[:-1]), "mirrored borders: a flat image has no edges"
    assert torch.allclose(flat[-1], torch.full((1, 3, 16, 16), 0.3))


def test_swd_is_deterministic_per_seed_and_leaves_the_global_rng_alone(sky):
    a, b = sky[:32], sky[32:]
    state = torch.get_rng_state()
    first = swd_levels(a, b, seed=3, **FAST)
    assert torch.equal(torch.get_rng_state(), state)
    assert swd_levels(a, b, seed=3, **FAST) == first
    assert swd_levels(a, b, seed=4, **FAST) != first
    assert len(first) == 3 and swd(a, b, seed=3, **FAST) == pytest.approx(sum(first) / 3)


def test_swd_normalises_each_set_per_channel_as_progan_did(sky):
    """So a global change of contrast or brightness per channel leaves SWD unchanged (colour_distance sees that)."""
    a, b = sky[:32], sky[32:]
    changed = b * torch.tensor([0.5, 0.8, 1.0]).view(1, 3, 1, 1) + 0.1
    assert swd_levels(a, changed, **FAST) == pytest.approx(swd_levels(a, b, **FAST), rel=1e-4)


def test_swd_compares_sets_of_different_sizes_and_sees_fine_noise(sky):
    noisy = (sky[32:] + 0.05 * torch.randn(32, 3, 64, 64, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    clean = swd_levels(sky, sky[32:48], **FAST)
    noised = swd_levels(sky, noisy[:16], **FAST)
    assert noised[0] > 3 * clean[0], "pixel noise shows at the finest level"
    assert noised[0] - clean[0] > noised[2] - clean[2], "and far less in the low-pass level"


def test_calibration_orders_copies_floor_degraded_and_untrained_generators(sky):
    rows = calibration(sky[:16], **FAST)
    cases = [r["case"] for r in rows]
    assert cases == ["copies", "floor"] + ["degraded"] * len(quality.DEGRADE_STRENGTHS) + ["ceiling", "ceiling"]
    values = [r["swd"] for r in rows]
    floor, degraded, ceilings = values[1], values[2:-2], values[-2:]
    assert floor < degraded[0]
    assert all(x < y for x, y in zip(degraded, degraded[1:])), f"SWD must rise with blur and noise: {degraded}"
    assert degraded[-1] < min(ceilings)
    assert rows[0]["near_copies"] == rows[0]["samples"] == 8, "the reference's own images (half mirrored) are all copies"
    assert rows[1]["near_copies"] <= 1, "held-out real images are not copies"
    assert all(r["samples"] == 8 and r["reals"] == 8 for r in rows)
    json.dumps(rows)  # JSON-ready


def test_memorisation_flags_copies_and_mirrored_copies_and_passes_new_images(sky):
    reals, new = sky[:48], sky[48:]
    samples = torch.cat([reals[:5], reals[5:10].flip(-1), new])
    found = memorisation(samples, reals)
    assert found["near_copy"][:10].all()
    assert not found["near_copy"][10:].any()
    assert found["index"][:10].tolist() == list(range(10))
    assert found["mirrored"][:10].tolist() == [False] * 5 + [True] * 5
    assert found["ratio"][10:].median() > 0.7, "new images from the same distribution score about 1"
    assert measure(samples, reals, **FAST)["near_copies"] == 10
    assert measure(new, reals, **FAST)["near_copies"] == 0


def test_diversity_and_distinct_neighbours_expose_collapse(sky):
    reals = sky[:48]
    collapsed = sky[50:51].repeat(16, 1, 1, 1) + 0.001 * torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert mean_pairwise_distance(sky[50:51].repeat(4, 1, 1, 1)) == pytest.approx(0, abs=1e-3)
    healthy, broken = measure(sky[48:64], reals, **FAST), measure(collapsed, reals, **FAST)
    assert broken["diversity_ratio"] < 0.05 < 0.7 < healthy["diversity_ratio"]
    assert broken["distinct_nearest"] == 1 < healthy["distinct_nearest"]


def test_degrade_and_untrained_samples_are_repeatable(sky):
    assert torch.equal(degrade(sky[:2], 0), sky[:2])
    assert torch.equal(degrade(sky[:2], 1.0, seed=5), degrade(sky[:2], 1.0, seed=5))
    assert (degrade(sky[:2], 2.0) - sky[:2]).abs().mean() > 0.01
    state = torch.get_rng_state()
    first = untrained_samples("transposed", 2, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert first.shape == (2, 3, 64, 64) and torch.equal(first, untrained_samples("transposed", 2, seed=1))


def test_nearest_pairs_figure_marks_the_copy(sky):
    from gan_helpers.runs.run_plots import show_nearest_pairs

    fig = show_nearest_pairs(torch.cat([sky[3:4].flip(-1), sky[40:44]]), sky[:32], count=3)
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert titles[0].endswith("copy") and not any(t.endswith("copy") for t in titles[1:])
    matplotlib.pyplot.close(fig)
