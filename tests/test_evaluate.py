"""Quality records: the same numbers at training time and afterwards, one record per epoch, the best epoch, the GIF."""

from __future__ import annotations

import argparse
import json

import matplotlib
import numpy as np

matplotlib.use("Agg")

import pytest
import torch
from PIL import Image
from torch import nn

from commands import evaluate
from gan_helpers.runs import quality_records, run_folders, checkpoints
from commands.evaluate import save_evolution
from gan_helpers.runs.run_plots import save_grid
from gan_helpers.datasets.loading import load_dataset
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import append_quality, best_epoch, quality_noise, quality_record, read_quality
from gan_helpers.models import build_generator

FAST = dict(nhoods_per_image=16, directions=16, repeats=1)




class ToyGenerator(nn.Module):
    """A cheap generator with the real interface whose batch norm makes train and eval mode differ."""

    latent_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(128, 3 * 8 * 8), nn.BatchNorm1d(3 * 8 * 8), nn.Unflatten(1, (3, 8, 8)),
                                 nn.Upsample(scale_factor=8, mode="bilinear"), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_quality_noise_is_fixed_and_differs_from_the_fixed_noise():
    assert torch.equal(quality_noise(4, seed=2), quality_noise(4, seed=2))
    assert not torch.equal(quality_noise(4, seed=2), quality_noise(4, seed=3))
    fixed = torch.randn(4, 128, generator=torch.Generator().manual_seed(2))  # how training draws fixed_z
    assert not torch.allclose(quality_noise(4, seed=2), fixed)


def test_quality_record_samples_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    G, reals = ToyGenerator(), torch.rand(12, 3, 64, 64)
    G.net[1].running_mean.fill_(0.5)  # eval mode differs visibly from batch statistics
    G.train()
    record = quality_record(G, reals, epoch=7, seed=1, samples=8, **FAST)
    assert G.training, "the generator's mode is restored"
    G.eval()
    again = quality_record(G, reals, epoch=7, seed=1, samples=8, **FAST)
    assert not G.training
    assert {k: v for k, v in record.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    assert record["epoch"] == 7 and record["samples"] == 8 and record["reals"] == 12
    json.dumps(record)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller inside an autocast region still gets float32
        inside = quality_record(G, reals, epoch=7, seed=1, samples=8, **FAST)
    assert inside["swd"] == record["swd"] and inside["diversity"] == record["diversity"]


def test_append_quality_keeps_one_record_per_epoch_in_order(tmp_path):
    for epoch, swd in ((20, 5.0), (10, 9.0), (20, 4.0)):
        append_quality(tmp_path, {"epoch": epoch, "swd": swd})
    assert read_quality(tmp_path) == [{"epoch": 10, "swd": 9.0}, {"epoch": 20, "swd": 4.0}]
    assert [p.name for p in tmp_path.iterdir()] == ["quality.jsonl"], "no temporary file is left behind"


def test_truncate_quality_drops_later_epochs(tmp_path):
    for epoch in (10, 20, 30):
        append_quality(tmp_path, {"epoch": epoch, "swd": 1.0})
    quality_records.truncate_quality(tmp_path, 20)
    assert [r["epoch"] for r in read_quality(tmp_path)] == [10, 20]


def test_cached_calibration_is_reused_only_for_the_same_images(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(quality_records, "calibration", lambda reals, **kw: calls.append(kw) or [{"case": "floor", "n": len(reals)}])
    reals = torch.rand(6, 3, 64, 64)
    first = quality_records.cached_calibration(reals, tmp_path / "calibration.json", nhoods_per_image=8)
    assert quality_records.cached_calibration(reals, tmp_path / "calibration.json", nhoods_per_image=8) == first
    assert len(calls) == 1
    quality_records.cached_calibration(reals[:5], tmp_path / "calibration.json", nhoods_per_image=8)
    quality_records.cached_calibration(reals[:5], tmp_path / "calibration.json", nhoods_per_image=16)
    assert len(calls) == 3 and calls[-1] == {"seed": 0, "nhoods_per_image": 16}


def test_quality_table_has_a_row_per_record():
    record = {"epoch": 50, "swd": 40.0, "swd_64": 30.0, "swd_32": 40.0, "swd_16": 50.0, "diversity_ratio": 0.9,
              "distinct_nearest": 80, "samples": 256, "nn_ratio_median": 1.1, "near_copies": 2}
    table = quality_records.quality_table([record, {**record, "label": "real vs real"}]).splitlines()
    assert len(table) == 4 and table[2].startswith("| epoch 50 | 40.0 | 30.0 | 40.0 | 50.0 | 0.90 | 80/256 | 1.10 | 2 |")
    assert table[3].startswith("| real vs real |")


def test_evaluate_reproduces_the_training_time_record(tiny_data, tmp_path):
    config = {"data": str(tiny_data), "max_images": 6, "seed": 3, "generator": "transposed"}
    run_dir = tmp_path / "00000-tiny-transposed"
    (run_dir / "checkpoints").mkdir(parents=True)
    run_folders.write_config(run_dir, config)
    torch.manual_seed(0)
    G = build_generator("transposed")
    # what the training hook does at epoch 2 (ProGAN's SWD settings: tiny sets keep it cheap)
    reals = load_dataset(tiny_data, max_images=6)
    during = quality_record(G, reals, epoch=2, seed=3, samples=4)
    append_quality(run_dir, during)
    checkpoints.save_checkpoint(run_dir, 2, {"epoch": 2, "config": config, "G": G.state_dict()})

    assert evaluate.run(_parse(str(run_dir), "--output", str(tmp_path / "again.jsonl"), "--device", "cpu")) == 0
    after, = read_quality(tmp_path / "again.jsonl")
    assert after["samples"] == 4, "the sample count follows the run's own records"
    assert {k: v for k, v in after.items() if k != "seconds"} == {k: v for k, v in during.items() if k != "seconds"}
    assert read_quality(run_dir) == [during], "--output leaves the run's own file alone"
    with pytest.raises(UserError, match="no checkpoint for epoch"):
        evaluate.evaluate_run(run_dir, epochs=[5], samples=4)
    with pytest.raises(UserError, match="at least 2"):
        evaluate.evaluate_run(run_dir, samples=1)


def _fake_run(tmp_path, records, checkpoint_epochs):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for epoch in checkpoint_epochs:
        (run_dir / "checkpoints" / run_folders.epoch_name(epoch, "pt")).write_bytes(b"")
    for epoch, swd, copies in records:
        append_quality(run_dir, {"epoch": epoch, "swd": swd, "near_copies": copies})
    return run_dir


def test_best_epoch_is_lowest_swd_among_checkpoints_tie_broken_by_near_copies(tmp_path):
    run_dir = _fake_run(tmp_path, [(10, 100.0, 0), (20, 50.0, 5), (30, 51.0, 0), (40, 30.0, 0), (50, 70.0, 0)],
                        checkpoint_epochs=[10, 20, 30, 50])  # epoch 40 was sampled but not checkpointed
    epoch, numbers = best_epoch(run_dir)
    assert epoch == 30
    assert numbers["lowest_swd_epoch"] == 20 and numbers["tied_epochs"] == [20, 30] and numbers["near_copies"] == 0
    assert best_epoch(run_dir, margin=0.0)[0] == 20
    with pytest.raises(UserError, match="evaluate"):
        best_epoch(_fake_run(tmp_path / "empty", [(40, 30.0, 0)], checkpoint_epochs=[10]))


def test_labelled_grids_and_evolution_gif(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    images = torch.zeros(4, 3, 64, 64)  # black images: any dark pixel in the label strip is the label
    save_grid(images, run_dir / "samples" / run_folders.epoch_name(10, "png"), label="epoch 10")
    save_grid(images, run_dir / "samples" / run_folders.epoch_name(0, "png"))  # an unlabelled grid, 134 px square
    labelled = Image.open(run_dir / "samples" / run_folders.epoch_name(10, "png"))
    assert labelled.text["label"] == "epoch 10" and labelled.size[0] == 134 < labelled.size[1]
    strip = np.asarray(labelled.convert("L"))[: labelled.height - 134]
    assert (strip < 128).any() and (strip > 128).any(), "the strip holds dark text on white"

    gif = Image.open(save_evolution(run_dir))
    assert gif.n_frames == 2
    sizes = []
    for frame in range(gif.n_frames):
        gif.seek(frame)
        sizes.append(gif.size)
        assert np.asarray(gif.convert("L"))[:10, :60].min() < 128, f"frame {frame} carries a label"
    assert sizes[0] == sizes[1] == labelled.size, "an unlabelled grid gets a strip of the same height"
    assert np.abs(np.asarray(gif.convert("L"), dtype=float) - np.asarray(labelled.convert("L"))).mean() < 2, \
        "a labelled grid is shown as it is, not labelled twice"
    with pytest.raises(UserError, match="no sample grids"):
        save_evolution(tmp_path)


def test_plot_quality_draws_runs_against_calibration(tmp_path):
    from gan_helpers.runs.run_plots import plot_quality

    run_dir = _fake_run(tmp_path, [(10, 100.0, 0), (20, 50.0, 0)], checkpoint_epochs=[10])
    rows = [{"case": "floor", "label": "real vs real", "swd": 20.0}, {"case": "ceiling", "label": "untrained", "swd": 400.0}]
    ax = plot_quality(run_dir, calibration=rows)
    assert list(ax.lines[0].get_ydata()) == [100.0, 50.0]
    assert sorted(line.get_ydata()[0] for line in ax.lines[1:]) == [20.0, 400.0]
    # Named in the legend beside the axes, not written on them, where close lines' labels would overlap.
    assert [t.get_text() for t in ax.get_legend().get_texts()][1:] == ["real vs real", "untrained"]
    assert not ax.texts
    matplotlib.pyplot.close(ax.figure)
