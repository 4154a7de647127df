"""G_ema: an exponential moving average of the generator's weights, sampled beside G.

A GAN's generator circles its equilibrium rather than settling in it, so the
samples of one epoch can be much better or worse than those of the next.
Averaging G's recent weights smooths that out (ProGAN, StyleGAN2-ADA and
BigGAN sample from such an average; Yazici et al. 2019). Training does not
change at all: D is trained against G, G against D, exactly as in points 7
and 8; the average only watches G and is sampled beside it.

After every generator step ``G_ema = decay * G_ema + (1 - decay) * G`` for
each weight, with the decay set by a half-life counted in epochs (an old
step's weight halves every ``half_life`` epochs). Buffers are copied from G.
Batch norm's running statistics (the upsampling generator has them) belong
to G's weights, not to their average, so before G_ema samples they are
recomputed from fresh latents: BigGAN's "standing statistics".
"""

from __future__ import annotations

import copy

import torch
from torch import nn

STANDING_SAMPLES = 256  # fresh latents behind the standing batch-norm statistics


def ema_decay(half_life: float, steps_per_epoch: int) -> float:
    """The per-step decay whose weights halve every `half_life` epochs of `steps_per_epoch` generator steps."""
    return 0.5 ** (1 / (half_life * steps_per_epoch))


def averaged_copy(G: nn.Module) -> nn.Module:
    """A frozen copy of G to average into: same weights now, no gradients, eval mode."""
    G_ema = copy.deepcopy(G).eval()
    G_ema.requires_grad_(False)
    return G_ema


@torch.no_grad()
def update_average(G_ema: nn.Module, G: nn.Module, decay: float) -> None:
    """One step of the average: every weight moves (1 - decay) of the way to G's; buffers are G's."""
    for average, weight in zip(G_ema.parameters(), G.parameters()):
        average.lerp_(weight, 1 - decay)
    for average, buffer in zip(G_ema.buffers(), G.buffers()):
        average.copy_(buffer)


@torch.no_grad()
def standing_statistics(G_ema: nn.Module, *, seed: int = 0, samples: int = STANDING_SAMPLES, batch_size: int = 64) -> None:
    """Recompute G_ema's batch-norm running statistics for its own weights, from `samples` fresh latents.

    The latents come from their own seeded generator, so training's random
    numbers are untouched and a resumed run recomputes the same statistics.
    Each layer's statistics become the plain mean over the batches (momentum
    None); the layers' momentum and G_ema's mode are restored afterwards.
    """
    layers = [m for m in G_ema.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return
    device = next(G_ema.parameters()).device
    z = torch.randn(samples, G_ema.latent_dim, generator=torch.Generator().manual_seed(seed))
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the batches below
    was_training = G_ema.training
    G_ema.train()
    try:
        with torch.autocast(device.type, enabled=False):
            for chunk in z.split(batch_size):
                G_ema(chunk.to(device))
    finally:
        G_ema.train(was_training)
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum

