"""Test inputs for the training-path tests: twin networks (the same seed gives the same G, D and
optimizers), smooth images, and their state compared value for value."""

from __future__ import annotations

import io

import torch

from gan_helpers.models import Discriminator, build_generator


def make(kind="transposed", device="cpu", seed=0):
    torch.manual_seed(seed)
    G, D = build_generator(kind).to(device), Discriminator().to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-5, betas=(0.5, 0.999))
    return D, G, opt_D, opt_G


def smooth_images(count, device="cpu"):
    """Soft colour blobs in [0, 1] with no left-right symmetry, like a photo at low resolution."""
    coarse = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    return torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic").clamp(0, 1).to(device)


def state(D, G, opt_D, opt_G):
    """Everything training changes, as plain values (through a checkpoint-like round trip)."""
    buffer = io.BytesIO()
    torch.save({"D": D.state_dict(), "G": G.state_dict(), "opt_D": opt_D.state_dict(), "opt_G": opt_G.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_same_state(a, b):
    for net in ("D", "G"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"
    for opt in ("opt_D", "opt_G"):
        for index, entry in a[opt]["state"].items():
            for key, value in entry.items():
                assert torch.equal(value, b[opt]["state"][index][key]), f"{opt} state {index}.{key} differs"
