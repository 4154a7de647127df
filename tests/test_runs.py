"""Point 9: run folders, checkpoints that round-trip, exact resume, divergence stop, CLI errors."""

import json

import pytest
import torch

from gan_helpers.runs import run_folders, checkpoints
from gan_helpers import speed
from gan_helpers.__main__ import main
from gan_helpers.runs.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import read_quality
from gan_helpers.runs.run_loop import discriminator_rate
from gan_helpers.runs.experiment import train


def tiny_config(data, tmp_path, **changes):
    """Two epochs of 4 images; quality numbers from 2 samples (256, the default, would cost a minute per run here)."""
    values = dict(data=str(data), runs_dir=str(tmp_path / "runs"), epochs=2, batch_size=2, sample_every=1, save_every=1,
                  max_images=4, fixed_noise=4, quality_samples=2, progress=False)
    return TrainConfig(**{**values, **changes})


def test_run_folder_is_complete(tiny_data, tmp_path):
    run_dir = train(tiny_config(tiny_data, tmp_path, augment=False))
    assert run_dir.name == "00000-tiny-transposed"
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2
    metrics = run_folders.read_metrics(run_dir)
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert set(metrics[0]) == {"epoch", "loss_D", "loss_G", "D_x", "D_G_z", "lr_d", "seconds", "device", "precision"}
    assert metrics[0]["device"] == "cpu" and metrics[0]["precision"] == speed.choose_precision("cpu")
    assert list(run_folders.checkpoint_files(run_dir)) == [1, 2]
    assert list(run_folders.samples(run_dir)) == [0, 1, 2]
    assert [r["epoch"] for r in read_quality(run_dir)] == [0, 1, 2], "quality numbers beside every grid"
    assert torch.load(run_dir / "fixed_noise.pt", weights_only=True).shape == (4, 128)
    assert (run_dir / "reals.png").stat().st_size > 0
    # a second run gets a new folder
    assert train(tiny_config(tiny_data, tmp_path, epochs=1, augment=False)).name == "00001-tiny-transposed"


def test_checkpoint_round_trip_holds_full_state(tiny_data, tmp_path):
    run_dir = train(tiny_config(tiny_data, tmp_path, epochs=1, generator="upsampling", augment=False))
    state = torch.load(run_folders.checkpoint_files(run_dir)[1], weights_only=True)
    assert {"epoch", "config", "G", "D", "opt_G", "opt_D", "rng"} <= set(state)
    assert state["epoch"] == 1 and state["config"]["generator"] == "upsampling"
    assert state["opt_D"]["state"], "the optimizer state (Adam moments) is saved"
    G, loaded = checkpoints.load_generator(run_dir)
    assert not G.training
    assert all(torch.equal(G.state_dict()[k], state["G"][k]) for k in state["G"])


def test_checkpoints_are_never_overwritten(tiny_data, tmp_path):
    run_dir = train(tiny_config(tiny_data, tmp_path, epochs=1, augment=False))
    before = run_folders.checkpoint_files(run_dir)[1].read_bytes()
    with pytest.raises(UserError, match="never overwritten"):
        checkpoints.save_checkpoint(run_dir, 1, {"epoch": 1})
    assert run_folders.checkpoint_files(run_dir)[1].read_bytes() == before


@pytest.mark.parametrize("generator", ["upsampling"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny_data, tmp_path, generator):
    whole = train(tiny_config(tiny_data, tmp_path / "a", generator=generator))
    part = train(tiny_config(tiny_data, tmp_path / "b", generator=generator, epochs=1))
    resumed = train(resume=part, epochs=2)
    assert resumed == part
    assert (part / "resumes.txt").read_text() == "resumed from epoch 1 on cpu\n"
    a = torch.load(run_folders.checkpoint_files(whole)[2], weights_only=True)
    b = torch.load(run_folders.checkpoint_files(resumed)[2], weights_only=True)
    for net in ("G", "G_ema", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    assert not all(torch.equal(a["G"][k], a["G_ema"][k]) for k in a["G"]), "G_ema is an average, not G"
    same = ("epoch", "model", "swd", "diversity_ratio")
    assert [[r[k] for k in same] for r in read_quality(whole, None)] == [[r[k] for k in same] for r in read_quality(resumed, None)]
    assert run_folders.read_metrics(whole) == [
        {**m, "seconds": w["seconds"]} for m, w in zip(run_folders.read_metrics(resumed), run_folders.read_metrics(whole))
    ]


def test_a_run_resumed_from_a_checkpoint_without_g_ema_starts_it_from_g(tiny_data, tmp_path):
    part = train(tiny_config(tiny_data, tmp_path, epochs=1, augment=False, ema_half_life=0.0))
    assert "G_ema" not in torch.load(run_folders.checkpoint_files(part)[1], weights_only=True)
    assert read_quality(part, "G_ema") == [] and not (part / "samples" / "ema").exists()
    train(resume=part, epochs=2, ema_half_life=5.0)
    assert (part / "resumes.txt").read_text() == "resumed from epoch 1 on cpu; ema_half_life 0.0 -> 5.0; G_ema started from G at epoch 1\n"
    assert "G_ema" in torch.load(run_folders.checkpoint_files(part)[2], weights_only=True)
    assert [r["epoch"] for r in read_quality(part, "G_ema")] == [2] and (part / "samples" / "ema" / "epoch-000002.png").is_file()


def test_a_resume_that_changes_a_rate_records_the_change(tiny_data, tmp_path):
    part = train(tiny_config(tiny_data, tmp_path, epochs=1, augment=False))
    train(resume=part, epochs=2, lr_g=5e-5)
    assert (part / "resumes.txt").read_text() == "resumed from epoch 1 on cpu; lr_g 0.0002 -> 5e-05\n"
    last = torch.load(run_folders.checkpoint_files(part)[2], weights_only=True)
    assert [g["lr"] for g in last["opt_G"]["param_groups"]] == [5e-5], "epoch 2 trained at the new rate"
    train(resume=part, epochs=3, note="epoch 2: D(G(z)) 0.04 for 3 epochs, the discriminator wins; lr_d halved")
    assert (part / "resumes.txt").read_text().splitlines()[-1] == \
        "resumed from epoch 2 on cpu; note: epoch 2: D(G(z)) 0.04 for 3 epochs, the discriminator wins; lr_d halved"
    with pytest.raises(UserError, match="a resume note is one line"):
        train(resume=part, epochs=4, note="two\nlines")
    with pytest.raises(UserError, match="a note is kept with a resume"):
        train(tiny_config(tiny_data, tmp_path / "new", epochs=1), note="a new run")
    assert len((part / "resumes.txt").read_text().splitlines()) == 2 and len(run_folders.read_metrics(part)) == 3


def test_point_10_rule_halves_lr_d_once_the_discriminator_wins():
    config = TrainConfig(lr_d=1e-5, lower_lr_d_below=0.2)
    assert discriminator_rate(config, []) == 1e-5
    assert discriminator_rate(config, [{"epoch": 1, "D_G_z": 0.25}, {"epoch": 2, "D_G_z": 0.2}]) == 1e-5
    assert discriminator_rate(config, [{"epoch": 1, "D_G_z": 0.19}]) == 5e-6
    assert discriminator_rate(config, [{"epoch": 1, "D_G_z": 0.1}, {"epoch": 2, "D_G_z": 0.6}]) == 5e-6, "for good"
    assert discriminator_rate(config, [{"epoch": 1, "D_G_z": 0.01}, {"epoch": 2, "D_G_z": 0.01}]) == 5e-6, "halved once"
    assert discriminator_rate(config.replace(lower_lr_d_below=0.0), [{"epoch": 1, "D_G_z": 0.0}]) == 1e-5, "0: never"


def test_lowered_lr_d_trains_on_and_resumes_exactly(tiny_data, tmp_path):
    """A rate of 1e-3 lets the discriminator win the first epoch of 4 images (D(G(z)) about 0.24 < 0.4)."""
    settings = dict(epochs=4, lr_d=1e-3, lower_lr_d_below=0.4, augment=False)
    whole = train(tiny_config(tiny_data, tmp_path / "a", **settings))
    metrics = run_folders.read_metrics(whole)
    assert metrics[0]["D_G_z"] < 0.4, "the setting must make the rule act, or this test checks nothing"
    assert [m["lr_d"] for m in metrics] == [1e-3, 5e-4, 5e-4, 5e-4]
    last = torch.load(run_folders.checkpoint_files(whole)[4], weights_only=True)
    assert [g["lr"] for g in last["opt_D"]["param_groups"]] == [5e-4], "the optimizer trained at the lowered rate"
    assert [g["lr"] for g in last["opt_G"]["param_groups"]] == [2e-4], "the generator's rate is untouched"

    part = train(tiny_config(tiny_data, tmp_path / "b", **{**settings, "epochs": 1}))
    resumed = train(resume=part, epochs=4)
    again = torch.load(run_folders.checkpoint_files(resumed)[4], weights_only=True)
    for net in ("G", "D"):
        assert all(torch.equal(last[net][k], again[net][k]) for k in last[net]), net
    assert [m["lr_d"] for m in run_folders.read_metrics(resumed)] == [1e-3, 5e-4, 5e-4, 5e-4]


def test_resume_from_an_older_checkpoint_forks_a_new_run(tiny_data, tmp_path):
    run_dir = train(tiny_config(tiny_data, tmp_path, augment=False))
    forked = train(resume=run_folders.checkpoint_files(run_dir)[1], epochs=2)
    assert forked != run_dir
    assert list(run_folders.checkpoint_files(forked)) == [1, 2]
    assert (forked / "FORKED_FROM").read_text().strip().endswith("epoch-000001.pt")
    assert [m["epoch"] for m in run_folders.read_metrics(forked)] == [1, 2]


def test_resume_refuses_changes_that_would_make_another_run(tiny_data, tmp_path):
    run_dir = train(tiny_config(tiny_data, tmp_path, epochs=1, augment=False))
    with pytest.raises(UserError, match="generator cannot change"):
        train(resume=run_dir, epochs=2, generator="upsampling")
    with pytest.raises(UserError, match="already at epoch 1"):
        train(resume=run_dir, epochs=1)


def test_divergence_names_the_last_good_checkpoint(tiny_data, tmp_path, monkeypatch):
    run_dir = train(tiny_config(tiny_data, tmp_path, epochs=1, augment=False))
    import gan_helpers.training as training

    real_epoch = training.train_epoch
    monkeypatch.setattr(training, "train_epoch", lambda *a, **k: {**real_epoch(*a, **k), "loss_G": float("nan")})
    with pytest.raises(UserError, match=r"diverged at epoch 2 \(loss_G=nan\).*epoch-000001\.pt.*--resume"):
        train(resume=run_dir, epochs=3)
    assert list(run_folders.checkpoint_files(run_dir)) == [1]
    assert [m["epoch"] for m in run_folders.read_metrics(run_dir)] == [1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--generator", "gan"], "invalid choice"),
        (["--epochs", "ten"], "invalid int value"),
        (["--epochs", "0"], "epochs must be a whole number"),
        (["--data", "/no/such/folder"], "/no/such/folder"),
        (["--resume", "/no/such/run"], "does not exist"),
        (["--lr-d", "-1"], "lr_d must be a positive"),
        (["--colour", "red"], "unrecognized arguments"),
    ],
)
def test_cli_errors_are_one_sentence(argv, message, capsys, tmp_path):
    try:
        code = main(["train", "--runs-dir", str(tmp_path), *argv])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("error:", "python -m gan_helpers train: error:", "usage:")) or "error:" in last


def test_cli_two_epoch_run(tiny_data, tmp_path, capsys):
    code = main(["train", "--data", str(tiny_data), "--epochs", "2", "--batch-size", "2", "--max-images", "4", "--save-every", "1", "--sample-every", "1",
                 "--runs-dir", str(tmp_path / "runs"), "--fixed-noise", "4", "--quality-samples", "2", "--no-progress", "--no-augment"])
    assert code == 0
    (run_dir,) = run_folders.find_runs(tmp_path / "runs")
    assert list(run_folders.checkpoint_files(run_dir)) == [1, 2]
    assert f"Done: {run_dir}" in capsys.readouterr().out  # outside the project: printed in full
