"""Latent tools (points 13-16): inversion leaves G alone and works, interpolation and edits are exact."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from gan_helpers.errors import UserError
from gan_helpers.models import generate
from gan_helpers.latent import Inversion, auto_lr, coordinate_influence, flat_baseline, invert, steps_to_settle
from gan_helpers.latent_edits import edit_coordinates, interpolate
from gan_helpers.runs.latent_files import load_target_image, save_latent, typical_pair
from gan_helpers.runs.run_folders import checkpoint_for_epoch
from gan_helpers.latent_plots import show_edit_groups, show_inversions, show_rows
from gan_helpers.models import UpsamplingGenerator


class ToyGenerator(nn.Module):
    """A cheap stand-in with the real interface: (B, 128) -> (B, 3, 64, 64) in [0, 1].

    Batch norm and dropout make train and eval mode differ, so a test can
    tell whether inversion ran in eval mode.
    """

    latent_dim = 128

    def __init__(self, active: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(128, 3 * 8 * 8)
        with torch.no_grad():
            self.linear.weight[:, active:] = 0  # coordinates past `active` have no effect
        self.net = nn.Sequential(
            nn.BatchNorm1d(3 * 8 * 8),
            nn.Dropout(0.5),
            nn.Unflatten(1, (3, 8, 8)),
            nn.Upsample(scale_factor=8),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.linear(z))


def toy(seed: int = 0, active: int = 128) -> ToyGenerator:
    torch.manual_seed(seed)
    return ToyGenerator(active)


def latent(seed: int) -> torch.Tensor:
    return torch.randn(1, 128, generator=torch.Generator().manual_seed(seed))


def snapshot(G: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in G.state_dict().items()}


def assert_unchanged(G: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = G.state_dict()
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert torch.equal(value, after[name]), f"{name} changed"


# ---- invert -------------------------------------------------------------------------------------


def test_invert_leaves_generator_bit_identical_and_restores_mode_and_flags():
    G = toy()
    G.train()
    G.linear.bias.requires_grad_(False)  # a mixed set of flags must come back as it was
    flags = [p.requires_grad for p in G.parameters()]
    before = snapshot(G)
    invert(G, generate(G, latent(1))[0], steps=5, reduction="sum", seed=0)
    assert_unchanged(G, before)  # weights and batch-norm running statistics alike
    assert [p.requires_grad for p in G.parameters()] == flags
    assert G.training
    assert all(p.grad is None for p in G.parameters())


def test_invert_computes_no_weight_gradients():
    G = toy()
    target = generate(G, latent(1))[0]
    seen = []
    G.register_forward_pre_hook(lambda module, args: seen.append(any(p.requires_grad for p in module.parameters())))
    invert(G, target, steps=3, seed=0)
    assert seen and not any(seen)  # parameters were out of autograd in every forward pass
    assert all(p.requires_grad for p in G.parameters())


def test_invert_real_generator_shapes_and_no_change():
    torch.manual_seed(0)
    G = UpsamplingGenerator()  # has batch norm, whose running statistics a train-mode pass would move
    G.eval()
    before = snapshot(G)
    result = invert(G, torch.rand(3, 64, 64), steps=2, seed=0)
    assert_unchanged(G, before)
    assert not G.training
    assert all(p.requires_grad for p in G.parameters())
    assert result.z.shape == (1, 128)
    assert len(result.losses) == 2
    assert result.frame_steps == [0, 1, 2]
    assert result.frames.shape == (3, 3, 64, 64)
    assert result.image.shape == result.target.shape == (1, 3, 64, 64)


def test_invert_lowers_the_loss_towards_a_reachable_target():
    G = toy()
    target = generate(G, latent(1))[0]
    result = invert(G, target, steps=30, reduction="sum", seed=0)
    assert len(result.losses) == 30
    assert all(math.isfinite(x) for x in result.losses)
    assert result.final_mse < 0.05 * result.losses[0]
    assert result.losses[-1] < result.losses[0]


def test_losses_are_the_mse_before_each_update_and_frames_match_the_steps():
    G = toy()
    target = generate(G, latent(1))[0]
    result = invert(G, target, steps=6, reduction="sum", seed=3, frames=4)
    start_image = generate(G, latent(3))
    assert result.losses[0] == pytest.approx(float((start_image[0] - target).pow(2).mean()), rel=1e-5)
    assert result.frame_steps == [0, 2, 4, 6]
    assert torch.allclose(result.frames[0], start_image[0], atol=1e-6)
    assert torch.allclose(result.frames[-1], result.image[0])
    assert torch.allclose(generate(G, result.z), result.image, atol=1e-6)
    assert result.final_mse == pytest.approx(float((result.image - target).pow(2).mean()), rel=1e-5)


def test_sum_reduction_is_mean_with_a_proportionally_larger_step():
    G = toy()
    target = generate(G, latent(1))[0]
    summed = invert(G, target, steps=5, reduction="sum", lr=0.01, seed=0)
    averaged = invert(G, target, steps=5, reduction="mean", lr=0.01 * target.numel(), seed=0)
    spec = invert(G, target, steps=5, reduction="mean", lr=0.01, seed=0)
    assert torch.allclose(summed.z, averaged.z, atol=1e-4)
    assert not torch.allclose(summed.z, spec.z, atol=1e-4)


def test_auto_lr_converges_whatever_the_reduction_and_refuses_a_dead_generator():
    G = toy()
    target = generate(G, latent(1))[0]
    auto = invert(G, target, steps=15, lr="auto", seed=0)
    assert auto.settings["lr_auto"] and auto.settings["lr"] == pytest.approx(auto_lr(G, latent(0)), rel=1e-5)
    assert auto.final_mse < 0.1 * auto.losses[0]
    summed = invert(G, target, steps=15, lr="auto", reduction="sum", seed=0)
    assert torch.allclose(summed.z, auto.z, atol=1e-4)  # the step adapts to the scale of the objective
    assert invert(G, target, steps=15, seed=0).final_mse > 0.9 * auto.losses[0]  # the spec's rate barely moves here
    with pytest.raises(UserError):
        auto_lr(toy(active=0), latent(1))


def test_invert_works_inside_no_grad():
    G = toy()
    target = generate(G, latent(1))[0]
    with torch.no_grad():
        result = invert(G, target, steps=5, reduction="sum", seed=0)
    assert result.final_mse < result.losses[0]


def test_restarts_keep_the_best_and_seed_reproduces():
    G = toy()
    target = generate(G, latent(1))[0]
    result = invert(G, target, steps=3, reduction="sum", restarts=4, seed=8)
    assert len(result.restart_mses) == 4
    best = result.restart_mses.index(min(result.restart_mses))
    assert best != 0  # with this seed the best start is not the first one
    assert result.final_mse == result.restart_mses[best]
    assert float((generate(G, result.z) - target).pow(2).mean()) == pytest.approx(result.final_mse, rel=1e-5)
    assert torch.equal(invert(G, target, steps=3, reduction="sum", restarts=4, seed=8).z, result.z)
    assert not torch.equal(invert(G, target, steps=3, reduction="sum", restarts=4, seed=9).z, result.z)


@pytest.mark.parametrize(
    "target, options",
    [
        (torch.rand(3, 32, 32), {}),
        (torch.rand(2, 3, 64, 64), {}),
        (torch.rand(3, 64, 64) * 255, {}),
        (torch.rand(3, 64, 64), {"reduction": "max"}),
        (torch.rand(3, 64, 64), {"steps": 0}),
        (torch.rand(3, 64, 64), {"restarts": 0}),
        (torch.rand(3, 64, 64), {"lr": 0.0}),
    ],
)
def test_invert_rejects_bad_input_with_a_user_error(target, options):
    with pytest.raises(UserError):
        invert(toy(), target, **{"steps": 1, **options})


def test_steps_to_settle():
    assert steps_to_settle([1.0, 0.5, 0.2, 0.11, 0.1], final=0.1) == 3
    assert steps_to_settle([1.0, 0.9, 0.8], final=0.7) == 3  # only the final value is close: still falling
    assert steps_to_settle([0.5, 0.5], final=0.5) is None  # never fell


# ---- interpolate --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_hits_both_ends_exactly(method):
    a, b = latent(1), latent(2) * 1.7
    path = interpolate(a, b, 10, method)
    assert path.shape == (10, 128)
    assert torch.equal(path[0], a[0])
    assert torch.equal(path[-1], b[0])


def test_lerp_midpoint_is_the_average():
    a, b = latent(1), latent(2)
    assert torch.allclose(interpolate(a, b, 3)[1], (a[0] + b[0]) / 2, atol=1e-6)


def test_slerp_keeps_norms_between_the_ends_and_follows_the_arc():
    a, b = latent(1), latent(2) * 2
    path = interpolate(a, b, 9, "slerp")
    norms = path.norm(dim=1)
    low, high = min(a.norm(), b.norm()), max(a.norm(), b.norm())
    assert ((norms >= low - 1e-4) & (norms <= high + 1e-4)).all()
    assert torch.allclose(norms, torch.linspace(float(a.norm()), float(b.norm()), 9), rtol=1e-5)  # length moves linearly
    c, d = latent(1), latent(2)  # two typical Gaussian vectors, nearly orthogonal
    low = min(c.norm(), d.norm())
    assert interpolate(c, d, 9, "lerp")[4].norm() < 0.8 * low  # the straight line sags through the middle ...
    assert interpolate(c, d, 9, "slerp")[4].norm() >= low - 1e-4  # ... the arc does not
    unit = path / norms.unsqueeze(1)
    angles = torch.arccos((unit[1:] * unit[:-1]).sum(1).clamp(-1, 1))
    assert torch.allclose(angles, angles.mean().expand_as(angles), atol=1e-3)  # even steps along the circle


@pytest.mark.parametrize(
    "args",
    [
        (torch.zeros(128), torch.ones(128), 10, "cubic"),
        (torch.zeros(128), torch.ones(128), 1, "lerp"),
        (torch.zeros(128), torch.ones(64), 5, "lerp"),
        (torch.zeros(2, 128), torch.ones(128), 5, "lerp"),
        (torch.ones(128), -torch.ones(128), 5, "slerp"),
    ],
)
def test_interpolate_rejects_bad_input(args):
    with pytest.raises(UserError):
        interpolate(*args)


# ---- edits and influence ------------------------------------------------------------------------


def test_edit_coordinates_changes_exactly_one_value_per_row():
    z = latent(1)
    coords, values = [3, 100], [-2.0, 0.0, 2.5]
    rows = edit_coordinates(z, coords, values)
    assert rows.shape == (6, 128)
    for i, coord in enumerate(coords):
        for j, value in enumerate(values):
            row = rows[i * len(values) + j]
            assert row[coord] == value
            others = torch.arange(128) != coord
            assert torch.equal(row[others], z[0, others])


@pytest.mark.parametrize("coords, values", [([128], [1.0]), ([-1], [1.0]), ([], [1.0]), ([0], [])])
def test_edit_coordinates_rejects_bad_input(coords, values):
    with pytest.raises(UserError):
        edit_coordinates(latent(1), coords, values)


def test_coordinate_influence_finds_the_coordinates_that_matter():
    G = toy(active=10)
    before = snapshot(G)
    influence = coordinate_influence(G, latent(1))
    assert influence.shape == (128,)
    assert (influence[:10] > 0).all()
    assert torch.equal(influence[10:], torch.zeros(118))
    assert_unchanged(G, before)


# ---- choosing, saving, figures ------------------------------------------------------------------


def test_checkpoint_for_epoch(tmp_path):
    with pytest.raises(UserError):
        checkpoint_for_epoch(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    for epoch in (1, 3):
        (tmp_path / "checkpoints" / f"epoch-{epoch:06d}.pt").write_bytes(b"")
    assert checkpoint_for_epoch(tmp_path)[0] == 3
    assert checkpoint_for_epoch(tmp_path, 1) == (1, tmp_path / "checkpoints" / "epoch-000001.pt")
    with pytest.raises(UserError):
        checkpoint_for_epoch(tmp_path, 2)


def test_typical_pair_picks_the_image_nearest_the_mean_and_a_different_one():
    levels = torch.tensor([0.0, 0.42, 0.5, 0.62, 1.0, 0.9, 0.1, 0.3])  # mean 0.48
    images = levels.view(-1, 1, 1, 1).expand(-1, 3, 64, 64)
    # A: 0.5 is nearest the mean; the typical quarter besides it is {0.42, 0.62}, and 0.62 is farther from A.
    assert typical_pair(images) == (2, 3)
    with pytest.raises(UserError):
        typical_pair(images[:1])


def test_save_latent_never_overwrites(tmp_path):
    G = toy()
    result = invert(G, generate(G, latent(1))[0], steps=1, seed=0)
    first = save_latent(result, tmp_path, 5, "galaxy A")
    assert first.name == "epoch-000005-galaxy_A.pt"
    assert save_latent(result, tmp_path, 5, "galaxy A") == first  # the same vector again: nothing new
    other = invert(G, generate(G, latent(1))[0], steps=1, seed=1)
    second = save_latent(other, tmp_path, 5, "galaxy A")
    assert second.name == "epoch-000005-galaxy_A-v2.pt"
    record = torch.load(first, weights_only=True)
    assert torch.equal(record["z"], result.z)
    assert record["frames"].dtype == torch.uint8 and record["frames"].shape == result.frames.shape
    assert torch.equal(torch.load(second, weights_only=True)["z"], other.z)
    assert first.with_suffix(".png").is_file() and second.with_suffix(".png").is_file()
    (tmp_path / "latents" / "epoch-000005-galaxy_A-v3.pt").write_text("not a checkpoint")
    assert save_latent(invert(G, generate(G, latent(1))[0], steps=1, seed=2), tmp_path, 5, "galaxy A").name.endswith("-v4.pt")


def test_figures_draw():
    G = toy()
    result = invert(G, generate(G, latent(1))[0], steps=3, seed=0)
    show_inversions({"3 steps": result}, title="t")
    rows = edit_coordinates(result.z, [0, 1], [-1.0, 1.0])
    show_edit_groups({"": (result.image, generate(G, rows), [0, 1])}, [-1.0, 1.0])
    show_rows({"a": generate(G, interpolate(latent(1), latent(2), 4))})
    plt.close("all")


def test_load_target_image_crops_the_centre_square(tmp_path):
    from PIL import Image

    picture = Image.new("RGB", (300, 100), (255, 0, 0))  # red sides, green centre square
    picture.paste((0, 255, 0), (100, 0, 200, 100))
    picture.save(tmp_path / "wide.png")
    image = load_target_image(tmp_path / "wide.png")
    assert image.shape == (3, 64, 64)
    assert 0 <= image.min() and image.max() <= 1
    assert image[1].mean() > 0.95 and image[0].mean() < 0.05  # only the green centre survives
    with pytest.raises(UserError):
        load_target_image(tmp_path / "missing.jpg")
    (tmp_path / "not-an-image.png").write_text("hello")
    with pytest.raises(UserError):
        load_target_image(tmp_path / "not-an-image.png")


def _curve(losses: list[float], final: float) -> Inversion:
    empty = torch.zeros(1, 3, 64, 64)
    return Inversion(torch.zeros(1, 128), empty, empty, losses, final, empty, [0], [final], {"steps": len(losses)})


def test_flat_baseline_is_the_error_of_the_mean_colour():
    assert flat_baseline(torch.full((3, 64, 64), 0.3)) == pytest.approx(0.0)
    halves = torch.zeros(3, 64, 64)
    halves[:, :, 32:] = 1.0
    assert flat_baseline(halves) == pytest.approx(0.25)
    halves[0] = 0.7  # a flat red channel adds nothing
    assert flat_baseline(halves) == pytest.approx(0.25 * 2 / 3)


def test_invert_shows_a_progress_bar_only_when_asked(capsys):
    from gan_helpers.models import build_generator

    torch.manual_seed(0)
    G, target = build_generator("transposed"), torch.rand(3, 64, 64)
    quiet = invert(G, target, steps=2, seed=0)
    assert capsys.readouterr().err == ""
    shown = invert(G, target, steps=2, seed=0, progress=True)
    last = capsys.readouterr().err.split("\r")[-1]
    assert "2/2" in last and f"final MSE {shown.final_mse:.5f}" in last
    assert shown.final_mse == quiet.final_mse


def test_inversion_loss_panel_labels_only_1_2_5_times_a_power_of_ten():
    from types import SimpleNamespace

    from gan_helpers.latent_plots import plot_inversion_losses

    fig, ax = plt.subplots(figsize=(3, 1.2))  # a short panel, where minor labels (3e-2, 4e-3, …) collided
    curves = {"spec": SimpleNamespace(losses=[0.0295, 0.027], final_mse=0.0269),
              "auto": SimpleNamespace(losses=[0.0295, 0.01, 0.004], final_mse=0.0018)}
    plot_inversion_losses(curves, ax=ax, legend="below")
    fig.canvas.draw()
    low, high = ax.get_ylim()
    labelled = [t.get_loc() for t in ax.yaxis.get_major_ticks() if t.label1.get_text() and low <= t.get_loc() <= high]
    assert labelled, "the log axis keeps some labels"
    assert all(round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6) in (1.0, 2.0, 5.0) for v in labelled), labelled
    assert not [t for t in ax.yaxis.get_minor_ticks() if t.label1.get_text()], "no labelled minor ticks"
    plt.close(fig)
