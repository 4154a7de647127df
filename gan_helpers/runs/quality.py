"""Quality numbers computed offline: no downloaded network, only the images themselves.

- **SWD**, the sliced Wasserstein distance between local patches, as ProGAN
  (Karras et al. 2018) measured it: a Laplacian pyramid of each 64×64
  image with levels at 64, 32 and 16 pixels (the last one is the low-pass
  residual), 128 random 7×7×3 neighbourhoods per image and level, each set of
  descriptors normalised per channel by its own mean and standard deviation,
  then 4 repeats of 128 random unit directions (512 in all). Lower is
  closer. Every SWD value here is **×10³**, the unit ProGAN reports. The
  per-set normalisation makes SWD blind to a global shift of a channel's
  brightness or contrast; :func:`gan_helpers.scores.colour_distance` sees that.
- **Diversity**: mean pairwise RMS pixel distance within a set; a collapsing
  generator's samples come much closer to each other than real images do.
- **Memorisation**: each sample's nearest training image x (RMS pixel
  distance at 64×64 and 32×32, mirrored training images included, since
  training mirrors them); the distance divided by x's own distance to its
  nearest other training image; below :data:`NEAR_COPY_RATIO` it is a near copy.

:func:`calibration` puts these numbers on a scale: two halves of the real set
(the floor), the same real images blurred and noised more and more, and an
untrained generator (the ceiling).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from gan_helpers.runs.config import GENERATOR_KINDS
from gan_helpers.models import build_generator

SWD_LEVELS = (64, 32, 16)  # pyramid levels of a 64×64 image: two band-pass levels and the low-pass rest
NEAR_COPY_RATIO = 0.5  # near copy: closer to a training image than half that image's distance to its own nearest neighbour
DEGRADE_STRENGTHS = (0.5, 1.0, 2.0, 3.0)  # blur sigma in pixels; noise std is 0.02 per unit of strength

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # cv2.pyrDown's filter (and ProGAN's), applied along each axis


def _filter(images: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """The separable 5×5 binomial filter with mirrored borders; shifted sums beat a depthwise conv on the CPU."""
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    h, w = images.shape[-2:]
    rows = sum(weight * padded[..., i: i + h, :] for i, weight in enumerate(_BINOMIAL))
    out = sum(weight * rows[..., j: j + w] for j, weight in enumerate(_BINOMIAL))
    return out * (gain / 256.0)


def laplacian_pyramid(images: torch.Tensor, levels: int = len(SWD_LEVELS)) -> list[torch.Tensor]:
    """Band-pass levels of a batch (N, C, H, W), finest first, and the low-pass rest last.

    Same construction as cv2.pyrDown / pyrUp with mirrored borders, so
    the levels sum back to the images exactly.
    """
    pyramid = [images.float()]
    for _ in range(1, levels):
        low = _filter(pyramid[-1])[:, :, ::2, ::2]
        up = torch.zeros_like(pyramid[-1])
        up[:, :, ::2, ::2] = low
        pyramid[-1] = pyramid[-1] - _filter(up, gain=4.0)
        pyramid.append(low)
    return pyramid


def _descriptors(level: torch.Tensor, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random size×size×C neighbourhoods of a batch, flattened, each set normalised per channel.

    Neighbourhood k comes from image k mod N, so with more descriptors than
    images every image contributes (almost) equally.
    """
    n, c, h, w = level.shape
    half = size // 2
    y = torch.randint(half, h - half, (count,), generator=generator)
    x = torch.randint(half, w - half, (count,), generator=generator)
    start = (torch.arange(count) % n) * (c * h * w) + (y - half) * w + (x - half)
    within = torch.arange(size)
    offsets = (torch.arange(c).view(-1, 1, 1) * (h * w) + within.view(1, -1, 1) * w + within.view(1, 1, -1)).view(-1)
    index = (start.view(-1, 1) + offsets.view(1, -1)).to(level.device)
    desc = level.reshape(-1)[index].view(count, c, size * size)
    std, mean = torch.std_mean(desc, dim=(0, 2), keepdim=True, correction=0)
    return ((desc - mean) / std.clamp_min(1e-8)).view(count, -1)


def _sorted_projections(desc: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Projections (directions, count), each row sorted; on the CPU numpy's sort is several times faster than torch's."""
    projections = dirs.T @ desc.T
    if projections.is_cuda:
        return torch.sort(projections, dim=1).values
    return torch.from_numpy(np.sort(projections.numpy(), axis=1))


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, repeats: int, directions: int, generator: torch.Generator) -> float:
    """Mean 1-D Wasserstein-1 distance of the two descriptor sets along random unit directions."""
    results = []
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], directions, generator=generator)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a)
        with torch.autocast(a.device.type, enabled=False):  # float32 even inside a caller's autocast region
            results.append((_sorted_projections(a, dirs) - _sorted_projections(b, dirs)).abs().mean())
    return float(torch.stack(results).mean())


def swd_levels(images_a: torch.Tensor, images_b: torch.Tensor, *, seed: int = 0, nhoods_per_image: int = 128,
               nhood_size: int = 7, directions: int = 128, repeats: int = 4) -> list[float]:
    """SWD ×10³ at each pyramid level (:data:`SWD_LEVELS`: 64, 32, 16) between two image batches.

    Both sets give ``nhoods_per_image × min(len(a), len(b))`` descriptors per
    level, so sets of different sizes compare like equal ones. Every random
    choice comes from a CPU generator seeded with `seed`, so the same
    inputs give the same number on any device.
    """
    generator = torch.Generator().manual_seed(seed)
    count = nhoods_per_image * min(len(images_a), len(images_b))
    device = images_a.device
    pyramids = laplacian_pyramid(images_a), laplacian_pyramid(images_b.to(device))
    distances = []
    for level_a, level_b in zip(*pyramids):
        desc_a = _descriptors(level_a, count, nhood_size, generator)
        desc_b = _descriptors(level_b, count, nhood_size, generator)
        distances.append(1e3 * _sliced_wasserstein(desc_a, desc_b, repeats, directions, generator))
    return distances


def swd(images_a: torch.Tensor, images_b: torch.Tensor, *, seed: int = 0, **options) -> float:
    """SWD ×10³ between two image batches, averaged over the pyramid levels (ProGAN's "SWD avg")."""
    levels = swd_levels(images_a, images_b, seed=seed, **options)
    return sum(levels) / len(levels)


# ---- diversity and memorisation ----------------------------------------------------------------

def _flat(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] != size:
        images = F.adaptive_avg_pool2d(images.float(), size)
    return images.float().reshape(len(images), -1)


def _rms_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """RMS pixel distance of every row of `a` to every row of `b` (in the images' [0, 1] units)."""
    with torch.autocast(a.device.type, enabled=False):  # float32 even inside a caller's autocast region
        squared = (a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * a @ b.T
    return (squared.clamp_min(0) / a.shape[1]).sqrt()


def mean_pairwise_distance(images: torch.Tensor, size: int = 64) -> float:
    """Mean RMS pixel distance over all pairs of different images in a batch."""
    flat = _flat(images, size)
    distances = _rms_distances(flat, flat)
    n = len(flat)
    return float((distances.sum() - distances.diagonal().sum()) / (n * (n - 1)))


def nearest_training(queries: torch.Tensor, reals: torch.Tensor, size: int = 64, *,
                     exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each query image, its nearest training image, mirrored copies included.

    Returns (distance, index into `reals`, mirrored?) per query. With
    ``exclude_self`` the queries are `reals` themselves and an image never
    counts as its own (or its mirror's) neighbour.
    """
    flat_reals = _flat(reals, size)
    candidates = torch.cat([flat_reals, _flat(reals.flip(-1), size)])
    distances = _rms_distances(_flat(queries.to(reals.device), size), candidates)
    if exclude_self:
        own = torch.arange(len(reals), device=distances.device)
        distances[own, own] = math.inf
        distances[own, own + len(reals)] = math.inf
    best, index = distances.min(dim=1)
    return best, index % len(reals), index >= len(reals)


def memorisation(samples: torch.Tensor, reals: torch.Tensor, *, threshold: float = NEAR_COPY_RATIO) -> dict:
    """How close each sample comes to a training image, relative to how crowded that image's neighbourhood is.

    ``ratio_64`` / ``ratio_32``: the distance from a sample to its nearest
    training image x, divided by the distance from x to x's own nearest other
    training image, at 64×64 and at 32×32 (the smaller size forgives a copy's
    added fine noise). A fresh image from the data's distribution scores about
    1, an exact copy 0. A sample is a near copy when the smaller ratio is below
    `threshold`: closer to x than half of x's distance to the rest of the set.
    Dividing by x's own neighbour distance, not one global typical distance,
    keeps crowded parts of a data set (many similar faint images) from being
    flagged. Returns per-sample tensors: ratio_64, ratio_32, ratio, near_copy,
    index and mirrored (the neighbour at 32×32).
    """
    out = {}
    for size in (64, 32):
        own_neighbour = nearest_training(reals, reals, size, exclude_self=True)[0]
        distance, index, mirrored = nearest_training(samples, reals, size)
        out[f"ratio_{size}"] = (distance / own_neighbour[index].clamp_min(1e-8)).cpu()
        if size == 32:  # the noise-tolerant size names the neighbour
            out["index"], out["mirrored"] = index.cpu(), mirrored.cpu()
    out["ratio"] = torch.minimum(out["ratio_64"], out["ratio_32"])
    out["near_copy"] = out["ratio"] < threshold
    return out


def measure(samples: torch.Tensor, reals: torch.Tensor, *, seed: int = 0, threshold: float = NEAR_COPY_RATIO,
            **swd_options) -> dict:
    """Every quality number of a batch of samples against the training images, JSON-ready.

    SWD values are ×10³. ``diversity_ratio`` below 1 means the samples are
    less varied than the real images; ``distinct_nearest`` counts the
    different training images the samples are nearest to (at 32×32), and its
    fraction divides that by the number of samples (calibration's floor row
    shows what real images score, since even they share neighbours).
    """
    if len(samples) < 2 or len(reals) < 2:
        raise ValueError(f"quality numbers need at least 2 samples and 2 real images, not {len(samples)} and {len(reals)}")
    samples = samples.float().to(reals.device)
    levels = swd_levels(reals, samples, seed=seed, **swd_options)
    copies = memorisation(samples, reals, threshold=threshold)
    diversity, diversity_reals = mean_pairwise_distance(samples), mean_pairwise_distance(reals)
    distinct = len(torch.unique(copies["index"]))
    return {
        "samples": len(samples),
        "reals": len(reals),
        "swd": sum(levels) / len(levels),
        **{f"swd_{size}": value for size, value in zip(SWD_LEVELS, levels)},
        "diversity": diversity,
        "diversity_reals": diversity_reals,
        "diversity_ratio": diversity / diversity_reals if diversity_reals > 0 else math.nan,
        "distinct_nearest": distinct,
        "distinct_nearest_fraction": distinct / len(samples),
        "nn_ratio_median": float(copies["ratio"].median()),
        "nn_ratio_min": float(copies["ratio"].min()),
        "near_copies": int(copies["near_copy"].sum()),
        "near_copy_threshold": threshold,
    }


# ---- calibration -------------------------------------------------------------------------------

def degrade(images: torch.Tensor, strength: float, *, seed: int = 0) -> torch.Tensor:
    """The images blurred (Gaussian, sigma = `strength` pixels) and noised (std 0.02 × `strength`), clamped to [0, 1]."""
    from torchvision.transforms.v2.functional import gaussian_blur

    if strength <= 0:
        return images.clone()
    radius = math.ceil(3 * strength)
    blurred = gaussian_blur(images, [2 * radius + 1] * 2, [float(strength)] * 2)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)).to(images)
    return (blurred + 0.02 * strength * noise).clamp(0, 1)


def untrained_samples(kind: str, count: int, *, seed: int = 0, device: str | torch.device = "cpu") -> torch.Tensor:
    """`count` images from a freshly initialised generator of `kind` (eval mode), without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_generator(kind).to(device).eval()
    z = torch.randn(count, G.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        return torch.cat([G(chunk) for chunk in z.split(32)]).float()


def calibration(reals: torch.Tensor, *, seed: int = 0, **swd_options) -> list[dict]:
    """The quality numbers of known cases, so a run's numbers can be read against them.

    The reals are shuffled (seeded) and split in two halves; the first half
    is the reference and every row compares N/2 candidates with it:
    ``copies`` (the reference itself, half of it mirrored: SWD's sampling
    noise and what memorisation looks like), ``floor`` (the other half:
    what a perfect generator would score), ``degraded`` (the other half
    blurred and noised, one row per strength; SWD must rise with it) and
    ``ceiling`` (an untrained generator of each kind). A training-time record
    compares 256 samples with all N reals, so its SWD floor is at most this one.
    """
    order = torch.randperm(len(reals), generator=torch.Generator().manual_seed(seed))
    half = len(reals) // 2
    reference, held_out = reals[order[:half]], reals[order[half: 2 * half]]
    mirrored = torch.cat([reference[: half // 2].flip(-1), reference[half // 2:]])
    cases = [("copies", "the reference images themselves, half mirrored", 0.0, mirrored),
             ("floor", "real vs real (two halves)", 0.0, held_out)]
    cases += [("degraded", f"held-out half, blur sigma {s:g} px + noise std {0.02 * s:.2g}", s,
               degrade(held_out, s, seed=seed)) for s in DEGRADE_STRENGTHS]
    cases += [("ceiling", f"untrained {kind} generator", math.nan,
               untrained_samples(kind, half, seed=seed, device=reals.device)) for kind in GENERATOR_KINDS]
    rows = []
    for case, label, strength, candidates in cases:
        numbers = measure(candidates, reference, seed=seed, **swd_options)
        rows.append({"case": case, "label": label, "strength": strength, **numbers})
    return rows
