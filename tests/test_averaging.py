"""G_ema, the average of the generator's weights: its decay, its update, its standing batch-norm statistics."""

import pytest
import torch

from gan_helpers.averaging import averaged_copy, ema_decay, standing_statistics, update_average
from gan_helpers.models import build_generator


def test_decay_halves_an_old_step_after_the_half_life():
    decay = ema_decay(half_life=5, steps_per_epoch=64)
    assert decay ** (5 * 64) == pytest.approx(0.5)
    assert ema_decay(20, 64) > decay


def test_the_average_moves_towards_g_and_leaves_g_alone():
    torch.manual_seed(0)
    G = build_generator("transposed")
    G_ema = averaged_copy(G)
    start = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
    update_average(G_ema, G, decay=0.75)
    for (name, average), weight in zip(G_ema.named_parameters(), G.parameters()):
        assert torch.allclose(average, start[name] + 0.25), name
        assert not average.requires_grad
    assert all(torch.equal(G.state_dict()[k], start[k] + 1.0) for k, _ in G.named_parameters())


def test_standing_statistics_fit_the_averaged_weights_and_touch_no_global_random_state():
    torch.manual_seed(0)
    G_ema = averaged_copy(build_generator("upsampling"))
    layer = next(m for m in G_ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(layer.running_mean, torch.zeros_like(layer.running_mean))
    rng = torch.get_rng_state()
    standing_statistics(G_ema, seed=3, samples=16, batch_size=8)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not G_ema.training and layer.momentum == 0.1
    first = layer.running_mean.clone()
    assert not torch.equal(first, torch.zeros_like(first)), "statistics of G_ema's own output"
    standing_statistics(G_ema, seed=3, samples=16, batch_size=8)
    assert torch.equal(layer.running_mean, first), "the same seed gives the same statistics"
