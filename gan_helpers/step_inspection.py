"""Checks the notebooks and tests show: which weights a step changed, and how D's verdicts move step by step.

:func:`snapshot` and :func:`changed` answer points 6–8's question "did this
step update only the network it should?". :func:`trace_steps` runs the
first training steps one by one and records each step's losses and
verdicts, for the figure of point 7.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_helpers.training import d_step, g_step


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of `model`'s parameters."""
    return {name: tensor.detach().clone() for name, tensor in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, bool]:
    """For every tensor in `before`: whether `model`'s current value differs from it."""
    now = model.state_dict()
    return {name: not torch.equal(old, now[name].detach()) for name, old in before.items()}


def trace_steps(
    D: nn.Module,
    G: nn.Module,
    opt_D: torch.optim.Optimizer,
    opt_G: torch.optim.Optimizer,
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    label_noise: float = 0.05,
) -> dict[str, list[float]]:
    """Run `steps` D + G steps on random batches of `images`; every step's loss_D, loss_G, D(x), D(G(z)).

    The per-step readout synchronises with the device at every step, which is
    fine for a few hundred demonstration steps and exactly what the training
    loop avoids.
    """
    D.train()
    G.train()
    trace: dict[str, list[float]] = {"loss_D": [], "loss_G": [], "D_x": [], "D_G_z": []}
    for _ in range(steps):
        real = images[torch.randint(len(images), (batch_size,), device=images.device)]
        d = d_step(D, G, opt_D, real, label_noise)
        g = g_step(D, G, opt_G, batch_size)
        for name, value in {**d, **g}.items():
            trace[name].append(float(value))
    return trace
