"""Shipped results: the export's files and sizes, float16 weights, provenance, refusal to overwrite, lookup by identity, checks."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from image_folders import write_image_folder

from gan_helpers.runs import results, checkpoints, run_folders
from report import export, provenance as provenance_module
from gan_helpers.runs.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import append_quality, read_quality
from gan_helpers.runs.experiment import find_run, train
from commands.train import warm_start
from gan_helpers.models import GENERATORS, Discriminator, build_generator, generate
from report.export import SHIPPED_TILES, choose_grids, export_run, ship_grid, sizes
from gan_helpers.runs.run_plots import grid_tiles, save_grid
from gan_helpers.runs.summaries import checkpoint_samples
from report.provenance import check_result, read_provenance_input

KINDS = ("transposed", "upsampling")
TOP_FILES = {"config.json", "metrics.jsonl", "quality.jsonl", "fixed_noise.pt", "reals.png", "provenance.json"}
COMMANDS = [(12.5, "make report PROFILE=smoke"), (3.25, "python -m gan_helpers evaluate runs/x")]


def tiny_config(data: Path, runs_dir: Path, kind: str) -> TrainConfig:
    return TrainConfig(data=str(data), runs_dir=str(runs_dir), generator=kind, epochs=2, batch_size=2, sample_every=1,
                       save_every=1, max_images=4, fixed_noise=2, quality_samples=2, progress=False, augment=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A 2-epoch CPU run of each generator whose quality records make epoch 1 the best (so best != last)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread spares OpenMP spin-waits on a shared machine
    root = tmp_path_factory.mktemp("results")
    data = write_image_folder(root / "tiny", 8)
    made = {}
    for kind in KINDS:
        config = tiny_config(data, root / "runs", kind)
        run_dir = train(config)
        for record in read_quality(run_dir):
            append_quality(run_dir, {**record, "swd": 1.0 if record["epoch"] == 1 else 100.0})
        made[kind] = (config, run_dir)
    yield {"root": root, "runs": made}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(trained) -> dict[str, Path]:
    """Each run exported as results/reference/<generator>, with two commands and a given commit."""
    return {kind: export_run(run_dir, trained["root"] / "results" / "reference" / kind, commands=COMMANDS, commit="abc1234")
            for kind, (_, run_dir) in trained["runs"].items()}


def copy_of(result_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(result_dir, tmp_path / "copy" / result_dir.name))


@pytest.mark.parametrize("kind", KINDS)
def test_export_holds_the_format_and_no_training_state(exported, kind):
    found = sizes(exported[kind])
    grids = {f"samples/{folder}epoch-{e:06d}.png" for e in (0, 1, 2) for folder in ("", "ema/")}
    weights = {"checkpoints/epoch-000001.pt", "checkpoints/epoch-000002.pt"}
    assert set(found) == TOP_FILES | grids | weights
    parameters = sum(v.numel() for v in build_generator(kind).state_dict().values())
    critic = sum(v.numel() for v in Discriminator().state_dict().values())
    best, last = (torch.load(exported[kind] / name, weights_only=True) for name in sorted(weights))
    assert set(best) == {"epoch", "config", "G"}, "the best epoch: the weights the report samples"
    assert set(last) == {"epoch", "config", "G", "D"}, "the newest epoch: G and D, to continue training from"
    assert found["checkpoints/epoch-000001.pt"] < 2.05 * parameters + 100_000, "float16: about two bytes a value"
    assert found["checkpoints/epoch-000002.pt"] < 2.05 * (parameters + critic) + 100_000, "no optimizer state"
    assert sum(found.values()) < 2.2 * (2 * parameters + critic) + 300_000
    assert not list(exported[kind].parent.glob(".*partial")), "no staging folder is left behind"


def test_the_command_prints_every_file_and_the_total(trained, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    dest = tmp_path / "results" / "cli" / "upsampling"
    args = parser.parse_args([str(trained["runs"]["upsampling"][1]), str(dest), "--command", "7", "make report", "--commit", "abc"])
    assert export.run(args) == 0
    printed = capsys.readouterr().out
    assert "checkpoints/epoch-000002.pt" in printed and "samples/ (6 grids)" in printed
    total = sum(sizes(dest).values()) / 2**20
    assert f"{total:.2f} MiB  in all" in printed
    assert "note:" not in printed, "a complete export has nothing to note"


@pytest.mark.parametrize("kind", KINDS)
def test_float16_weights_load_into_the_spec_class_and_sample_like_the_checkpoint(trained, exported, kind):
    run_dir = trained["runs"][kind][1]
    z = checkpoints.load_fixed_noise(run_dir)
    state = torch.load(run_folders.checkpoint_files(exported[kind])[2], map_location="cpu", weights_only=True)["G"]
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    G = build_generator(kind)
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    original, _ = checkpoints.load_generator(run_folders.checkpoint_files(run_dir)[2])
    assert (generate(G, z) - generate(original, z)).abs().max() < 2e-3
    G, loaded = checkpoints.load_generator(exported[kind])
    assert isinstance(G, GENERATORS[kind]) and not G.training and loaded["epoch"] == 2, "a folder means its newest checkpoint"
    assert all(p.dtype == torch.float32 for p in G.parameters())
    with pytest.raises(UserError, match="holds G but not G_ema"):
        checkpoints.load_generator(run_folders.checkpoint_files(exported[kind])[1], average=True)


def test_provenance_names_machine_commit_commands_and_choice(exported):
    provenance = provenance_module.read_provenance(exported["transposed"])
    assert provenance["commands"] == [{"command": c, "seconds": s} for s, c in COMMANDS]
    assert provenance["commands_seconds"] == 15.75
    assert provenance["commit"]["commit"] == "abc1234" and provenance["name"] == "reference"
    env = provenance["environment"]
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["device_name"]
    assert provenance["training"]["epochs"] == 2 and provenance["training"]["devices"] == {"cpu": 2}
    assert provenance["epochs"]["best"] == 1 and provenance["epochs"]["last"] == 2
    assert provenance["data"]["images"] == 4
    assert all(v < 2e-3 for w in provenance["weights"].values() for k, v in w.items() if k.startswith("max_pixel"))
    assert check_result(exported["transposed"]) == []


def test_provenance_files_in_gnu_time_and_json_form(tmp_path):
    lines = tmp_path / "commands.txt"
    lines.write_text("# made on the GPU\n3512.40 make report PROFILE=full\n\n12.1\tpython -m gan_helpers export a b\n")
    assert read_provenance_input(lines)["commands"] == [
        {"command": "make report PROFILE=full", "seconds": 3512.4}, {"command": "python -m gan_helpers export a b", "seconds": 12.1}]
    given = tmp_path / "provenance.json"
    given.write_text(json.dumps({"commands": [{"command": "make report", "seconds": 60}], "commit": "f00", "environment": {"device": "cuda"}}))
    assert read_provenance_input(given)["commit"] == "f00"
    given.write_text(json.dumps({"commands": [
        {"command": "python -m gan_helpers train --resume R --epochs 2000", "seconds": 5400, "machine": "Intel Xeon, 2 cores"},
        {"command": "python -m gan_helpers export R D", "seconds": 20}]}))
    assert read_provenance_input(given)["commands"] == [
        {"command": "python -m gan_helpers train --resume R --epochs 2000", "seconds": 5400.0, "machine": "Intel Xeon, 2 cores"},
        {"command": "python -m gan_helpers export R D", "seconds": 20.0}]
    given.write_text(json.dumps({"commands": [{"command": "make report", "seconds": 60, "machine": 3}]}))
    with pytest.raises(UserError, match="command 1 has a 'machine' that is not a description"):
        read_provenance_input(given)
    lines.write_text("make report 3600\n")
    with pytest.raises(UserError, match="line 1 is not a command with its wall time"):
        read_provenance_input(lines)


def test_an_existing_result_is_never_overwritten(trained, exported, tmp_path):
    before = sizes(exported["upsampling"])
    with pytest.raises(UserError, match="already exists and is not empty, and a result is never overwritten"):
        export_run(trained["runs"]["transposed"][1], exported["upsampling"])
    assert sizes(exported["upsampling"]) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_result(export_run(trained["runs"]["upsampling"][1], empty, commands=COMMANDS, commit="abc")) == []


def test_a_failed_export_leaves_nothing(trained, tmp_path):
    run_dir = Path(shutil.copytree(trained["runs"]["transposed"][1], tmp_path / "runs" / "00000-damaged"))
    (run_dir / "checkpoints" / "epoch-000002.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="epoch-000002.pt cannot be used because"):
        export_run(run_dir, tmp_path / "out" / "transposed")
    assert not (tmp_path / "out").exists(), "the folders the export created go too"


def test_run_lookup_finds_a_result_by_identity_after_the_runs_folder(trained, exported, tmp_path, monkeypatch):
    config, run_dir = trained["runs"]["transposed"]
    monkeypatch.setenv(results.RESULTS_VARIABLE, str(trained["root"] / "results"))
    assert find_run(config) == run_dir, "the runs folder first"
    elsewhere = config.replace(runs_dir=str(tmp_path / "runs"))
    assert find_run(elsewhere) == exported["transposed"], "then the results folder"
    assert find_run(elsewhere.replace(epochs=50, sample_every=5, save_every=10)) == exported["transposed"], "schedule is not identity"
    assert find_run(elsewhere.replace(lr_d=2e-5)) is None and find_run(elsewhere.replace(seed=3)) is None
    assert find_run(elsewhere.replace(generator="upsampling")) == exported["upsampling"]
    assert find_run(elsewhere.replace(data="data/galaxies64")) is None, "another data folder is another run"
    monkeypatch.setenv(results.RESULTS_VARIABLE, str(tmp_path / "none"))
    assert find_run(elsewhere) is None, "a results folder without results: the lab trains"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "none").exists(), "looking writes nothing"


def _repeat_metrics_line(folder: Path) -> None:
    lines = (folder / "metrics.jsonl").read_text().splitlines(keepends=True)
    (folder / "metrics.jsonl").write_text("".join(lines + lines[-1:]))


def _drop_best_grid(folder: Path) -> None:
    (folder / "samples" / "epoch-000001.png").unlink()


def _widen_weights(folder: Path) -> None:
    path = folder / "checkpoints" / "epoch-000002.pt"
    state = torch.load(path, weights_only=True)
    torch.save({**state, "G": {k: v.float() if v.is_floating_point() else v for k, v in state["G"].items()}}, path)


def _forget_commands(folder: Path) -> None:
    provenance = json.loads((folder / "provenance.json").read_text())
    (folder / "provenance.json").write_text(json.dumps({**provenance, "commands": [], "commands_seconds": 0}))


@pytest.mark.parametrize("plant, expected", [
    (_repeat_metrics_line, r"metrics.jsonl has epoch\(s\) \[2\] more than once"),
    (_drop_best_grid, r"samples/ lacks the grid of epoch\(s\) \[1\]"),
    (_widen_weights, r"epoch-000002.pt holds .* as torch.float32, not float16"),
    (_forget_commands, r"lists no commands"),
])
def test_check_result_finds_a_planted_inconsistency(exported, tmp_path, plant, expected):
    folder = copy_of(exported["upsampling"], tmp_path)
    assert check_result(folder) == []
    plant(folder)
    problems = check_result(folder)
    assert any(re.search(expected, p) for p in problems), problems


@pytest.mark.parametrize("last, expected", [(25, []), (30, ["the last sample grid is of epoch 20, though the run samples at epoch 30."])])
def test_a_run_stopped_between_sample_epochs_ends_after_its_last_grid(last, expected):
    config = TrainConfig(epochs=100, sample_every=10, save_every=10)
    recorded = {"epochs": {"best": 20, "last": last}, "grids": {"sample_epochs": [10, 20], "shipped": [10, 20]}}
    metrics = [{"epoch": e} for e in range(1, last + 1)]
    quality = [{"epoch": 10}, {"epoch": 20}]
    assert provenance_module.epoch_problems(recorded, config, metrics, quality, [10, 20], [20, last]) == expected


def test_tables_over_checkpoints_use_g_ema_where_a_shipped_epoch_holds_only_that(exported, tmp_path):
    result = copy_of(exported["transposed"], tmp_path)
    best = result / "checkpoints" / "epoch-000001.pt"
    state = torch.load(best, weights_only=True)
    state["G_ema"] = state.pop("G")  # what a result whose report samples G_ema ships for its best epoch
    torch.save(state, best)
    rows = checkpoint_samples(result, 12)
    assert [(epoch, weights) for epoch, weights, _ in rows] == [(1, "G_ema"), (2, "G")]
    G_ema, _ = checkpoints.load_generator(best, average=True)
    assert torch.equal(rows[0][2], generate(G_ema, checkpoints.load_fixed_noise(result)))
    with pytest.raises(UserError, match="holds G_ema but not G"):
        checkpoints.load_generator(best)


def test_a_shipped_grid_is_the_first_eight_images_of_the_runs_grid_under_its_label(tmp_path):
    images = torch.rand(12, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    save_grid(images, tmp_path / "run.png", label="epoch 3")
    ship_grid(tmp_path / "run.png", tmp_path / "shipped.png", "epoch 3, G_ema")
    assert torch.equal(grid_tiles(tmp_path / "shipped.png"), grid_tiles(tmp_path / "run.png", SHIPPED_TILES))
    with Image.open(tmp_path / "shipped.png") as shipped:
        assert shipped.text["label"] == "epoch 3, G_ema"
        assert shipped.width > 4 * shipped.height, "one row"
    assert (tmp_path / "shipped.png").stat().st_size < 0.8 * (tmp_path / "run.png").stat().st_size


def test_grid_subset_keeps_first_best_and_last_evenly():
    epochs = list(range(0, 2001, 10))
    chosen = choose_grids(epochs, 950, 60)
    assert len(chosen) == 60 and {0, 950, 2000} <= set(chosen) and set(chosen) <= set(epochs)
    chosen = choose_grids(epochs, 1230, 60)
    assert len(chosen) <= 60 and {0, 1230, 2000} <= set(chosen)
    gaps = [b - a for a, b in zip(chosen, chosen[1:])]
    assert max(gaps) <= 2 * min(gaps) + 20, "spread evenly"
    assert choose_grids([0, 5, 10], 5, 60) == [0, 5, 10]
    full = list(range(21)) + list(range(30, 2001, 10))  # the full profile's sample epochs
    chosen = choose_grids(full, 1230, 40)
    assert len(chosen) == 40 and {0, 1, 10, 100, 300, 1000, 1230, 2000} <= set(chosen), "the milestones the report shows"
    assert choose_grids(full, 1230, 3) == [0, 1230, 2000]


def test_a_copy_of_a_result_warm_restarts_for_one_epoch(trained, exported, tmp_path):
    source = copy_of(exported["upsampling"], tmp_path)
    run_dir = warm_start(source, epochs=3, runs_dir=str(tmp_path / "runs"))
    assert run_dir.parent == tmp_path / "runs" and sizes(source) == sizes(exported["upsampling"])
    assert [m["epoch"] for m in run_folders.read_metrics(run_dir)] == [1, 2, 3], "the result's history, then one more epoch"
    assert (run_dir / "resumes.txt").read_text().startswith(
        f"warm restart from {source} at epoch 2 on cpu: optimizer moments re-initialised, G_ema restarted from G")
    restart = torch.load(run_folders.checkpoint_files(run_dir)[2], weights_only=True)
    shipped = torch.load(run_folders.checkpoint_files(source)[2], weights_only=True)
    for net in ("G", "D"):
        assert all(torch.equal(restart[net][k].to(shipped[net][k].dtype), shipped[net][k]) for k in shipped[net]), f"{net} continues from the result"
    assert all(torch.equal(restart["G_ema"][k], restart["G"][k]) for k in restart["G"]), "G_ema restarted from G"
    assert restart["opt_G"]["state"] == {} and restart["opt_D"]["state"] == {}, "Adam moments start again"
    assert {3} <= set(run_folders.checkpoint_files(run_dir)) and [r["epoch"] for r in read_quality(run_dir, "G_ema")][-1] == 3
    train(resume=run_dir, epochs=4)  # from here on the restarted run resumes exactly, as any run
    assert [m["epoch"] for m in run_folders.read_metrics(run_dir)][-1] == 4
    with pytest.raises(UserError, match="is a shipped result, which is never trained into"):
        train(resume=exported["upsampling"], epochs=3)
