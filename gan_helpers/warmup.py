"""Point 6: a gradient step by hand on a tiny two-layer model.

The same mechanics the GAN steps use, small enough to watch: gradients of a
pseudo-loss with respect to the first layer's parameters only, and an SGD
optimizer that updates only that layer.
"""

from __future__ import annotations

import torch
from torch import nn


def tiny_model(inputs: int = 3, hidden: int = 3, outputs: int = 2) -> nn.Sequential:
    """Two fully connected layers (point 6: 2–3 inputs and outputs)."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Linear(hidden, outputs))


def pseudo_loss(output: torch.Tensor, target: float = 42.0) -> torch.Tensor:
    """How far the mean output is from `target`, squared: any differentiable number would do."""
    return (output.mean() - target) ** 2


def first_layer_steps(model: nn.Sequential, batch: torch.Tensor, steps: int = 20, lr: float = 0.01, target: float = 42.0) -> list[float]:
    """Update only ``model[0]`` for `steps` iterations on the same batch; return the loss before each step.

    ``torch.autograd.grad`` computes the gradient with respect to the first
    layer's parameters alone, and the optimizer holds only those
    parameters, so the second layer cannot change.
    """
    first = list(model[0].parameters())
    optimizer = torch.optim.SGD(first, lr=lr)
    losses = []
    for _ in range(steps):
        loss = pseudo_loss(model(batch), target)
        grads = torch.autograd.grad(loss, first)
        for param, grad in zip(first, grads):
            param.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses
