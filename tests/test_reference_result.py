"""The shipped reference result (results/reference/), when the project ships one, is whole and fits the full profile.

`make report` without a GPU reads this result instead of training, so a result
that does not match its provenance, was trained with other settings than the
full profile's, or holds weights the spec's classes cannot load would give a
report about something else. Without a shipped result there is nothing to check.
"""

from __future__ import annotations

import pytest
import torch

from gan_helpers.runs.config import GENERATOR_KINDS
from gan_helpers.models import TransposedConvGenerator, UpsamplingGenerator
from gan_helpers.runs.experiment import experiment_config, find_run
from gan_helpers.runs.results import REFERENCE as NAME, results_root
from report.provenance import check_result
from gan_helpers.runs.run_folders import checkpoint_files, read_config, read_metrics

REFERENCE = results_root() / NAME  # results/reference, or $LAB_RESULTS/reference
SPEC_CLASSES = {"transposed": TransposedConvGenerator, "upsampling": UpsamplingGenerator}  # points 2 and 11

pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason="the project ships no results/reference yet")


@pytest.mark.parametrize("kind", GENERATOR_KINDS)
def test_the_reference_result_is_whole_and_fits_the_full_profile(kind, tmp_path):
    folder = REFERENCE / kind
    assert check_result(folder) == [], "every file as its provenance lists it, epochs 1..N once each"
    full = experiment_config("full").replace(generator=kind, runs_dir=str(tmp_path / "runs"))
    assert find_run(full) == folder, "found by the full profile's identity, as notebooks 03-06 find it"
    epochs = [record["epoch"] for record in read_metrics(folder)]
    assert epochs == list(range(1, len(epochs) + 1))


@pytest.mark.parametrize("kind", GENERATOR_KINDS)
def test_every_shipped_weights_file_loads_into_the_spec_class(kind):
    assert read_config(REFERENCE / kind)["generator"] == kind
    shipped = checkpoint_files(REFERENCE / kind)
    assert shipped, "a result ships the generator of its best and its last epoch"
    for epoch, path in shipped.items():
        state = torch.load(path, weights_only=True)
        assert state["epoch"] == epoch and {"G", "G_ema"} & set(state)
        G = SPEC_CLASSES[kind]()
        weights = state["G"] if "G" in state else state["G_ema"]
        G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, strict=True)
        images = G.eval()(torch.randn(2, G.latent_dim))
        assert images.shape == (2, 3, 64, 64) and 0 <= images.min() and images.max() <= 1, f"epoch {epoch}"


def test_the_reference_result_fits_in_40_mb():
    files = [path for path in REFERENCE.rglob("*") if path.is_file()]
    total = sum(path.stat().st_size for path in files)
    assert total <= 40 * 1000**2, f"{total / 1000**2:.1f} MB in {len(files)} files; export with a lower --max-grids"


def test_the_reference_observations_cover_every_judged_point():
    from report.observations import read_observations

    path = REFERENCE / "observations.md"
    if not path.is_file():
        pytest.skip("the reference result ships no observations.md")
    written = read_observations(path)  # a UserError for a file that breaks the format
    short = {point: len(written.get(point, "").split()) for point in (10, 12, 13, 14, 15, 16, 17, 18)}
    assert all(words >= 40 for words in short.values()), f"words per point: {short}"


def test_the_departures_schedule_is_the_recorded_rate_times_the_full_length():
    import json

    from report.front import front_matter
    from report.sources import schedule_estimate

    full = experiment_config("full")
    used = {kind: REFERENCE / kind for kind in GENERATOR_KINDS}
    estimate = schedule_estimate(used, full)
    for kind in GENERATOR_KINDS:
        training = json.loads((REFERENCE / kind / "provenance.json").read_text())["training"]
        hours = training["seconds"] / training["epochs"] * full.epochs / 3600
        assert f"{hours:.1f} h ({kind})" in estimate
    assert schedule_estimate({kind: None for kind in GENERATOR_KINDS}, full) == "", "runs trained here record no rate"
    row = {"point": "9", "short": ("what", "2000 epochs take {schedule}", "evidence")}
    table = front_matter({"intro": "", "departures": [row], "schedule": estimate}, {}, "latex")[-1]
    assert f"2000 epochs take {estimate}" in str(table.source) and "{schedule}" not in str(table.source)


def test_the_departures_averaging_evidence_is_the_median_of_the_last_five_epochs_scoring_both(tmp_path):
    from gan_helpers.runs.quality_records import append_quality
    from report.front import front_matter
    from report.sources import averaging_evidence

    for epoch, (g, g_ema) in enumerate([(90, 60), (40, 50), (100, 45), (60, 44), (80, 41), (70, 39)], start=1):
        append_quality(tmp_path, {"epoch": 10 * epoch, "model": "G", "swd": g})
        append_quality(tmp_path, {"epoch": 10 * epoch, "model": "G_ema", "swd": g_ema})
    append_quality(tmp_path, {"epoch": 70, "model": "G", "swd": 5.0})  # G alone: not compared
    evidence = averaging_evidence({"transposed": tmp_path, "upsampling": None})
    assert evidence.endswith("G_ema against G: 44.0 against 70.0 (transposed)")
    assert averaging_evidence({"transposed": None}) == "", "no shipped records, no numbers"
    row = {"point": "9", "short": ("what", "why", "{averaging}")}
    table = front_matter({"intro": "", "departures": [row], "averaging": evidence}, {}, "latex")[-1]
    assert "44.0 against 70.0" in str(table.source) and "{averaging}" not in str(table.source)


@pytest.mark.parametrize("kind", GENERATOR_KINDS)
def test_the_epoch_table_prints_the_records_of_every_strip_epoch(kind):
    import json

    from gan_helpers.runs.run_plots import history_epochs
    from gan_helpers.runs.summaries import epoch_table

    folder = REFERENCE / kind
    epochs = history_epochs(folder)
    lines = epoch_table(folder, epochs).splitlines()
    assert len(lines) == 2 + -(-len(epochs) // 2), "a title, a header and two blocks side by side"
    assert lines[1].split("|")[0].split() == ["epoch", "D(x)", "D(G(z))", "SWD", "G", "G_ema"]
    cells = [[block.split() for block in line.split("|")] for line in lines[2:]]
    printed = {int(block[0]): block[1:] for row in cells for block in row if block}
    assert sorted(printed) == epochs
    metrics = {r["epoch"]: r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())}
    records = [json.loads(line) for line in (folder / "quality.jsonl").read_text().splitlines()]
    swd = {(r["epoch"], r.get("model", "G")): r["swd"] for r in records}
    for epoch, (d_x, d_g_z, score, averaged) in printed.items():
        assert float(d_x) == pytest.approx(metrics[epoch]["D_x"], rel=5e-3)
        assert float(d_g_z) == pytest.approx(metrics[epoch]["D_G_z"], rel=5e-3)
        assert float(score) == pytest.approx(swd[epoch, "G"], rel=5e-3)
        if (epoch, "G_ema") in swd:
            assert float(averaged) == pytest.approx(swd[epoch, "G_ema"], rel=5e-3)
        else:
            assert averaged == "–", "an epoch before G_ema was kept shows a dash"


def test_a_provenance_without_a_usable_rate_gives_no_estimate(tmp_path, monkeypatch):
    from report import sources

    full = experiment_config("full")
    for training in ({"seconds": True, "epochs": True}, {"seconds": float("nan"), "epochs": 10}, {"seconds": -5.0, "epochs": 10},
                     {"seconds": 10 ** 400, "epochs": 10}, {"seconds": "3600", "epochs": 10}, {"seconds": 3600.0, "epochs": 0}):
        monkeypatch.setattr(sources, "read_provenance", lambda folder, training=training: {"training": training})
        assert sources.schedule_estimate({"transposed": tmp_path}, full) == "", training
    monkeypatch.setattr(sources, "read_provenance", lambda folder: {"training": {"seconds": 3600.0, "epochs": 40}})
    assert sources.schedule_estimate({"transposed": tmp_path}, full) == "50.0 h (transposed)"
