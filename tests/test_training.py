"""Points 7 and 8: each step changes only the network it trains."""

import copy

import pytest
import torch

from gan_helpers.models import Discriminator, TransposedConvGenerator, UpsamplingGenerator
from gan_helpers.training import TrainingDiverged, d_step, fit, g_step, jitter_labels, train_epoch, train_step




def params(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def buffers(model):
    return {name: b.detach().clone() for name, b in model.named_buffers()}


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def changed(a, b):
    return [k for k in a if not torch.equal(a[k], b[k])]


def make(generator_cls):
    torch.manual_seed(0)
    G, D = generator_cls(), Discriminator()
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-3)
    return G.train(), D.train(), opt_G, opt_D


@pytest.mark.parametrize("generator_cls", [TransposedConvGenerator, UpsamplingGenerator])
def test_discriminator_step_changes_only_the_discriminator(generator_cls):
    G, D, opt_G, opt_D = make(generator_cls)
    G_before, D_before, G_buffers = params(G), params(D), buffers(G)
    out = d_step(D, G, opt_D, torch.rand(2, 3, 64, 64))
    assert same(G_before, params(G)), "the discriminator step must not touch the generator's weights"
    # every weight of D that takes part in the loss moves
    assert set(changed(D_before, params(D))) == set(D_before)
    assert all(p.grad is None for p in G.parameters())
    assert set(out) == {"loss_D", "D_x", "D_G_z"} and all(v.dim() == 0 for v in out.values())
    # documented decision: G stays in train mode, so its batch-norm statistics follow its output
    if G_buffers:
        assert changed(G_buffers, buffers(G))
    assert G.training and D.training


@pytest.mark.parametrize("generator_cls", [TransposedConvGenerator, UpsamplingGenerator])
def test_generator_step_changes_only_the_generator(generator_cls):
    G, D, opt_G, opt_D = make(generator_cls)
    G_before, D_before, D_buffers = params(G), params(D), buffers(D)
    out = g_step(D, G, opt_G, 2)
    assert same(D_before, params(D)), "the generator step must not touch the discriminator's weights"
    # documented decision: D judges in eval mode, so even its batch-norm statistics stay put
    assert same(D_buffers, buffers(D)) and D.training
    assert set(changed(G_before, params(G))) == set(G_before)
    assert all(p.grad is None for p in D.parameters())
    assert set(out) == {"loss_G"}
    assert not any(state for state in opt_D.state.values()), "D's optimizer must not have stepped"


def test_generator_step_grades_fakes_with_the_discriminators_running_statistics():
    G, D, opt_G, _ = make(TransposedConvGenerator)
    seen = []
    D.features[1].register_forward_hook(lambda module, i, o: seen.append(module.training))
    g_step(D, G, opt_G, 2)
    assert seen == [False]


def test_jittered_labels_stay_valid_and_spread():
    torch.manual_seed(0)
    labels = torch.cat([torch.ones(5000), torch.zeros(5000)])
    noisy = jitter_labels(labels, 0.05)
    real, fake = noisy[:5000], noisy[5000:]
    assert real.min() >= 0.95 and real.max() <= 1.0
    assert fake.min() >= 0.0 and fake.max() <= 0.05
    # uniform after folding: mean offset 0.025, no pile-up at the bounds
    assert abs(fake.mean().item() - 0.025) < 0.002
    assert (fake == 0).float().mean() < 0.01 and (real == 1).float().mean() < 0.01


def test_discriminator_step_uses_jittered_labels():
    G, D, _, opt_D = make(TransposedConvGenerator)
    D_plain, D_noisy = copy.deepcopy(D), copy.deepcopy(D)
    opt_plain = torch.optim.Adam(D_plain.parameters(), lr=1e-3)
    opt_noisy = torch.optim.Adam(D_noisy.parameters(), lr=1e-3)
    real = torch.rand(2, 3, 64, 64)
    torch.manual_seed(1)
    plain = d_step(D_plain, G, opt_plain, real, label_noise=0.0)["loss_D"]
    torch.manual_seed(1)
    noisy = d_step(D_noisy, G, opt_noisy, real, label_noise=0.05)["loss_D"]
    assert plain != noisy


def test_train_epoch_covers_every_image_and_returns_means():
    G, D, opt_G, opt_D = make(TransposedConvGenerator)
    seen = []

    def spy(batch):
        seen.append(batch.shape[0])
        return batch

    stats = train_epoch(D, G, opt_D, opt_G, torch.rand(5, 3, 64, 64), batch_size=2, augment=spy)
    assert seen == [2, 2, 1]
    assert set(stats) == {"loss_D", "loss_G", "D_x", "D_G_z"}
    assert all(isinstance(v, float) for v in stats.values())
    assert 0 < stats["D_x"] < 1 and 0 < stats["D_G_z"] < 1


def test_fit_stops_on_non_finite_loss_before_hooks_run():
    G, D, opt_G, opt_D = make(TransposedConvGenerator)
    with torch.no_grad():
        D.classifier[2].weight.fill_(float("nan"))
    calls = []
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        fit(D, G, opt_D, opt_G, torch.rand(2, 3, 64, 64), epochs=2, batch_size=2,
            hooks=[lambda e, s: calls.append(e)], progress=False)
    assert calls == []


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_train_step_runs_both_steps_and_stacks_the_metrics(precision):
    G, D, opt_G, opt_D = make(TransposedConvGenerator)
    G_before, D_before = params(G), params(D)
    out = train_step(D, G, opt_D, opt_G, torch.rand(2, 3, 64, 64), precision=precision)
    assert out.shape == (4,) and out.dtype == torch.float32
    assert changed(G_before, params(G)) and changed(D_before, params(D))
    assert 0 < out[2] < 1 and 0 < out[3] < 1  # D_x and D_G_z are probabilities


def test_train_epoch_runs_a_given_step_per_batch():
    G, D, opt_G, opt_D = make(TransposedConvGenerator)
    sizes = []

    def step(real):
        sizes.append(real.shape[0])
        return torch.tensor([1.0, 2.0, 0.5, 0.25])

    stats = train_epoch(D, G, opt_D, opt_G, torch.rand(5, 3, 64, 64), batch_size=2, step=step)
    assert sizes == [2, 2, 1]
    assert stats == {"loss_D": 1.0, "loss_G": 2.0, "D_x": 0.5, "D_G_z": 0.25}


def test_fit_rejects_an_unknown_precision():
    G, D, opt_G, opt_D = make(TransposedConvGenerator)
    with pytest.raises(ValueError, match="precision"):
        fit(D, G, opt_D, opt_G, torch.rand(2, 3, 64, 64), epochs=1, batch_size=2, progress=False, precision="fp16")
