"""Two cheap numbers for judging samples beside the pictures.

Neither is a standard GAN metric (FID needs a pretrained network that
cannot be downloaded here); they make two things the eye sees measurable:
whether the samples' colours approach the data set's, and how much grid
("tartan") pattern the samples carry.
"""

from __future__ import annotations

import torch


def colour_distance(images: torch.Tensor, reference: torch.Tensor, bins: int = 32) -> float:
    """Total-variation distance between per-channel colour histograms, averaged over RGB.

    0 means identical colour distributions, 1 means disjoint ones. Both
    arguments are batches (N, 3, H, W) in [0, 1].
    """
    distances = []
    for channel in range(3):
        a = torch.histc(images[:, channel].float().cpu(), bins=bins, min=0, max=1)
        b = torch.histc(reference[:, channel].float().cpu(), bins=bins, min=0, max=1)
        distances.append(0.5 * (a / a.sum() - b / b.sum()).abs().sum())
    return float(torch.stack(distances).mean())


def checkerboard_score(images: torch.Tensor) -> float:
    """Share of the images' spectral energy on the Nyquist row and column.

    Stride-2 transposed convolutions overlap unevenly and leave a pattern
    that repeats every two pixels; its energy lands at the highest
    frequency of the 2-D Fourier transform (index H/2 or W/2). Natural
    photos put little energy there. Returned as a percentage, averaged over
    the batch (N, 3, H, W).
    """
    x = images.float().cpu()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs() ** 2
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    nyquist = power[..., h, :].sum(-1) + power[..., :, w].sum(-1) - power[..., h, w]
    total = power.sum(dim=(-2, -1)).clamp_min(1e-12)
    return float(100 * (nyquist / total).mean())
