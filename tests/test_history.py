"""What a run's history says in numbers: the run summary, the tail of a run, the side-by-side table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gan_helpers.runs import summaries
from report import sources


def fake_run(folder: Path, generator: str, losses: list[tuple[float, float]], epochs: int | None = None, seconds: float = 2.0) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    config = {"data": str(folder / "nodata"), "generator": generator, "epochs": epochs or len(losses),
              "batch_size": 8, "lr_d": 1e-5, "lr_g": 1e-4, "device": "cpu", "max_images": None}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"epoch": i + 1, "loss_D": d, "loss_G": g, "D_x": 0.7, "D_G_z": 0.3, "seconds": seconds} for i, (d, g) in enumerate(losses)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "checkpoints" / f"epoch-{len(losses):06d}.pt").write_bytes(b"")
    return folder


def test_run_summary_numbers(tmp_path):
    losses = [(1.0, 1.0)] * 18 + [(0.5, 1.5), (0.5, 2.5)]
    s = summaries.run_summary(fake_run(tmp_path / "00000-t", "transposed", losses))
    assert s["epochs"] == 20 and s["seconds"] == 40.0 and s["seconds_per_epoch"] == 2.0
    assert s["final_loss_D"] == 0.5 and s["final_loss_G"] == 2.5
    assert s["tail_epochs"] == 2 and s["end_gap"] == pytest.approx(1.5) and s["end_ratio"] == pytest.approx(4.0)
    assert s["end_D_x"] == pytest.approx(0.7) and s["problems"] == []


def test_run_summary_names_what_went_wrong(tmp_path):
    run = fake_run(tmp_path / "00001-t", "transposed", [(1.0, 1.0), (float("nan"), 2.0)], epochs=5)
    (run / "FORKED_FROM").write_text(str(tmp_path / "00000-t" / "checkpoints" / "epoch-000010.pt") + "\n")
    problems = " | ".join(summaries.run_summary(run)["problems"])
    assert "non-finite losses in 1 epoch(s), first at epoch 2" in problems
    assert "stopped at epoch 2 of 5" in problems
    assert "continued from an earlier run's checkpoint (00000-t, epoch-000010)" in problems


@pytest.mark.parametrize("count, kept", [(1, 1), (9, 1), (10, 1), (11, 2), (20, 2), (21, 3)])
def test_tail_is_the_last_tenth_rounded_up(count, kept):
    metrics = [{"epoch": e} for e in range(1, count + 1)]
    assert [m["epoch"] for m in summaries.tail(metrics)] == list(range(count - kept + 1, count + 1))
    assert summaries.tail([]) == []


def test_summary_table_lays_runs_side_by_side(tmp_path):
    fast = summaries.run_summary(fake_run(tmp_path / "00000-t", "transposed", [(0.7, 0.8)] * 10, seconds=2.0))
    slow = summaries.run_summary(fake_run(tmp_path / "00001-u", "upsampling", [(0.2, 3.0)] * 10, seconds=5.0))
    table = summaries.summary_table([fast, slow])
    assert table.splitlines()[0] == "| | transposed | upsampling |" and "| 0.2 / 3 |" in table
    assert not math.isnan(fast["end_ratio"])


def test_summary_table_states_results_not_folders_and_says_an_early_stop_once(tmp_path):
    stopped = summaries.run_summary(fake_run(tmp_path / "00003-t", "transposed", [(0.7, 0.8)] * 3, epochs=20))
    table = summaries.summary_table([stopped])
    assert "00003-t" not in table and str(tmp_path) not in table and "nodata" not in table
    assert "| epochs trained (planned) | 3 (20) |" in table and "stopped at" not in table and "problems" not in table
    nan = summaries.run_summary(fake_run(tmp_path / "00004-t", "transposed", [(1.0, 1.0), (float("nan"), 2.0)], epochs=5))
    assert "| problems recorded | non-finite losses in 1 epoch(s), first at epoch 2 |" in summaries.summary_table([nan])


@pytest.mark.parametrize("name, words", [
    ("AMD EPYC (AVX-512 bf16), 2 cores and Intel Xeon (AVX-512 bf16, AMX), 2 cores", "AMD EPYC, 2 cores and Intel Xeon, 2 cores"),
    ("AMD EPYC with AVX-512 bf16 and Intel Xeon with AMX", "AMD EPYC and Intel Xeon"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
])
def test_machines_are_named_without_their_cpu_flags(name, words):
    assert sources.machine_in_words(name) == words
    assert sources.version_in_words("2.5.1+cu124") == "2.5.1" and sources.version_in_words("2.5.1") == "2.5.1"
