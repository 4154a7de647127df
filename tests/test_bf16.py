"""The bf16 fast path against the fp32 reference: where autocast applies, how close, exact resume.

These tests ask for bf16 by name, so on a CPU without native bfloat16 they run
emulated, at tens of seconds per step of the spec's networks: they hold a few
steps on one or two images each.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from training_twins import assert_same_state, make, smooth_images, state

from gan_helpers import speed
from gan_helpers.augment import BatchAugment
from gan_helpers.training import d_step, fit, g_step, train_step


def test_autocast_only_on_the_fast_path():
    layer = torch.nn.Linear(4, 4)
    with speed.autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")
        assert layer(torch.rand(2, 4)).dtype == torch.float32
    with speed.autocast(torch.device("cpu"), "bf16"):
        assert layer(torch.rand(2, 4)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_steps_compute_in_the_chosen_precision_and_return_fp32_losses(precision, dtype):
    D, G, opt_D, opt_G = make()
    seen = []
    D.classifier[2].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    G.to_rgb[0].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    d = d_step(D, G, opt_D, torch.rand(2, 3, 64, 64), precision=precision)
    g = g_step(D, G, opt_G, 2, precision=precision)
    assert seen == [dtype] * 4  # G then D in each step
    assert all(v.dtype == torch.float32 for v in [*d.values(), *g.values()])
    assert all(p.dtype == torch.float32 for p in [*D.parameters(), *G.parameters()])
    assert not torch.is_autocast_enabled("cpu")


def test_an_enclosing_autocast_context_changes_nothing():
    """Autocast is entered inside each step without a cast cache, so stale bf16 weights cannot leak across steps."""
    results = []
    for outer in (False, True):
        D, G, opt_D, opt_G = make()
        real = smooth_images(1)
        torch.manual_seed(3)
        with torch.autocast("cpu", enabled=False) if outer else contextlib.nullcontext():
            for _ in range(2):  # a cast cache kept across steps would feed the second one stale weights
                out = train_step(D, G, opt_D, opt_G, real, precision="bf16")
        results.append((out, state(D, G, opt_D, opt_G)))
    assert torch.equal(results[0][0], results[1][0])
    assert_same_state(results[0][1], results[1][1])


@pytest.mark.parametrize("kind", ["transposed", "upsampling"])
def test_bf16_tracks_fp32(kind):
    """bf16's epoch means stay within 0.01 of fp32's over 3 steps from the same seed, at the spec's learning rates.

    Both paths draw the same random numbers (noise, label jitter, dropout,
    augmentation). bf16 keeps 8 significant bits, a relative rounding of
    about 0.2 % per value, and accumulates in float32; the measured
    differences are at most about 2.3e-3 in the losses and probabilities
    (both generators). 0.01 leaves room for other CPUs' kernels, while a real
    fault moves these numbers further: a discriminator that never learns is
    off by about 0.04 after the same 3 steps (checked below on the fp32 path,
    which costs a fraction of emulated bf16 on CPUs without native bf16).
    """
    K = ("loss_D", "loss_G", "D_x", "D_G_z")

    def history(precision, lr_d=1e-5):
        D, G, opt_D, opt_G = make(kind)
        opt_D.param_groups[0]["lr"] = lr_d
        return fit(D, G, opt_D, opt_G, smooth_images(2), epochs=3, batch_size=2,
                   augment=BatchAugment(), progress=False, precision=precision)

    reference, fast, broken = history("fp32"), history("bf16"), history("fp32", lr_d=0.0)
    for ref, got in zip(reference, fast):
        for name in K:
            assert got[name] == pytest.approx(ref[name], abs=0.01), name
    assert max(abs(ref[name] - bad[name]) for ref, bad in zip(reference, broken) for name in K) > 0.02


def test_fast_path_resumes_exactly():
    """Two epochs in one go equal one epoch, a checkpoint round trip into fresh networks, and one more."""
    images = smooth_images(3)  # batches of 2 and 1: the short batch runs too

    def train(epochs, start=None):
        D, G, opt_D, opt_G = make("upsampling", seed=0 if start is None else 7)
        if start is not None:
            D.load_state_dict(start["D"])
            G.load_state_dict(start["G"])
            opt_D.load_state_dict(start["opt_D"])
            opt_G.load_state_dict(start["opt_G"])
            torch.set_rng_state(start["rng"])
        else:
            torch.manual_seed(5)
        history = fit(D, G, opt_D, opt_G, images, epochs=epochs, start_epoch=0 if start is None else 1,
                      batch_size=2, augment=BatchAugment(), progress=False, precision="bf16")
        return history, {**state(D, G, opt_D, opt_G), "rng": torch.get_rng_state()}

    whole, whole_state = train(2)
    first, checkpoint = train(1)
    second, resumed_state = train(2, start=checkpoint)
    assert [h["loss_D"] for h in whole] == [first[0]["loss_D"], second[0]["loss_D"]]
    assert_same_state(whole_state, resumed_state)
    assert torch.equal(whole_state["rng"], resumed_state["rng"])
