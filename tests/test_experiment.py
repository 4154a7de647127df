"""One experiment, one way through: profiles, run identity, lab_runs, the command line."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gan_helpers.runs import experiment, parameter_sets, run_folders
from report import notebooks
from commands.train import add_config_arguments
from gan_helpers.__main__ import COMMANDS, build_parser, main
from gan_helpers.runs.config import TrainConfig, resumable, role
from gan_helpers.errors import UserError
from gan_helpers.runs.experiment import find_run, lab_run, lab_runs
from gan_helpers.paths import PROJECT_ROOT

ANALYSING = ("03_dcgan", "04_upsampling", "05_latent", "06_reflections")


def tiny(data, tmp_path, **changes) -> TrainConfig:
    values = dict(data=str(data), runs_dir=str(tmp_path / "runs"), epochs=1, batch_size=2, sample_every=1,
                  save_every=1, max_images=4, fixed_noise=4, quality_samples=2, progress=False, augment=False)
    return TrainConfig(**{**values, **changes})


def code_of(stem: str) -> str:
    nb = nbformat.read(notebooks.notebook_path(stem), as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("profile", parameter_sets.profile_names())
def test_every_profile_is_one_experiment_that_03_to_06_receive(profile):
    loaded = notebooks.load_profile(profile)  # every key checked
    config = experiment.experiment_config(profile)
    assert config.runs_dir == f"runs/{profile}"
    for stem in ANALYSING:
        assert "epochs" not in loaded[stem] and "runs_dir" not in loaded[stem], "training settings live in the train block only"
        assert notebooks.notebook_values(profile, stem)["profile"] == profile
        source = code_of(stem)
        assert "experiment_config(profile, data=data" in source, f"{stem}: DATA= reaches every notebook that finds the runs"
        assert "data" in notebooks.notebook_parameters(notebooks.notebook_path(stem))
        assert "lab_run(" in source or "lab_runs(" in source
        assert "find_runs" not in source, "notebooks never pick 'the newest run'"


def test_03_to_06_resolve_the_same_two_run_folders(tiny_data, tmp_path):
    config = tiny(tiny_data, tmp_path)
    from_03 = lab_run(config, "transposed")  # notebook 03
    from_04 = lab_runs(config)  # notebook 04 trains the upsampling run, finds 03's
    from_05, from_06 = lab_runs(config), lab_runs(config)  # 05 and 06 train nothing
    assert from_04["transposed"] == from_03
    assert from_04 == from_05 == from_06
    assert len(run_folders.find_runs(tmp_path / "runs")) == 2


def test_runs_differing_in_one_training_setting_are_never_confused(tiny_data, tmp_path):
    config = tiny(tiny_data, tmp_path)
    first = lab_run(config, "transposed")
    other = lab_run(config.replace(lr_d=2e-5), "transposed")
    assert other != first
    assert lab_run(config, "transposed") == first
    assert find_run(config.replace(generator="transposed", seed=1)) is None


def test_a_longer_schedule_continues_the_same_run(tiny_data, tmp_path):
    config = tiny(tiny_data, tmp_path)
    first = lab_run(config, "upsampling")
    longer = lab_run(config.replace(epochs=2), "upsampling")
    assert longer == first and max(run_folders.checkpoint_files(first)) == 2


def test_every_epoch_is_sampled_at_first_then_every_sample_every(tiny_data, tmp_path):
    from gan_helpers.runs.experiment import train

    run_dir = train(tiny(tiny_data, tmp_path, epochs=7, sample_every=3, save_every=10, sample_all_first=2))
    grids = sorted(int(p.stem.split("-")[1]) for p in (run_dir / "samples").glob("epoch-*.png"))
    assert grids == [0, 1, 2, 3, 6, 7], "epochs 1-2 (watched at first), every 3rd after, and the last"
    assert [r["epoch"] for r in run_folders.read_metrics(run_dir)] == list(range(1, 8))


def test_changing_the_train_block_changes_every_notebooks_experiment(tmp_path, monkeypatch):
    params = tmp_path / "params"
    params.mkdir()
    (params / "p.yaml").write_text("train:\n  epochs: 7\n  lr_d: 2.0e-5\n05_latent:\n  steps: 3\n")
    monkeypatch.setattr(parameter_sets, "PARAMS_DIR", params)
    config = experiment.experiment_config("p")
    assert (config.epochs, config.lr_d) == (7, 2e-5)
    (params / "p.yaml").write_text("train:\n  epochs: 9\n")
    assert experiment.experiment_config("p").epochs == 9


def test_a_batch_run_never_builds_the_slider_explorer():
    # nbclient can block forever on a cell that displays widgets (jupyter/nbclient#312)
    assert "interactive" in notebooks.notebook_parameters(notebooks.notebook_path("05_latent"))
    for profile in parameter_sets.profile_names():
        assert notebooks.notebook_values(profile, "05_latent")["interactive"] is False


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochz: 7\n", "unknown training setting"),
    ("train:\n  epochs: seven\n", "epochs must be a whole number"),
    ("03_dcgan:\n  epochs: 7\n", "training settings belong in the 'train' block"),
    ("05_latent:\n  profile: smoke\n", "the runner sets itself"),
    ("05_latent:\n  interactive: true\n", "the runner sets itself"),
    ("07_extra:\n  x: 1\n", "neither 'train', 'without_gpu' nor a notebook"),
])
def test_profile_mistakes_are_one_sentence(tmp_path, monkeypatch, text, message):
    params = tmp_path / "params"
    params.mkdir()
    (params / "p.yaml").write_text(text)
    monkeypatch.setattr(parameter_sets, "PARAMS_DIR", params)
    with pytest.raises(UserError, match=message):
        notebooks.load_profile("p")


def test_roles_define_identity_and_what_a_resume_may_change():
    config = TrainConfig()
    identity = config.identity()
    assert "epochs" not in identity and "device" not in identity and "save_every" not in identity
    assert {"lr_d", "lr_g", "seed", "generator", "precision", "batch_size", "data"} <= set(identity)
    assert resumable("lr_g") and resumable("epochs") and not resumable("seed")
    assert {role(f.name) for f in dataclasses.fields(TrainConfig)} == {"identity", "tunable", "schedule"}


@pytest.mark.parametrize("values, message", [
    ({"lr_g": "fast"}, "lr_g must be a number"),
    ({"zoom": float("nan")}, "zoom must be a finite number"),
    ({"epochs": True}, "epochs must be a whole number"),
    ({"precision": "fp16"}, "precision must be one of"),
])
def test_config_rejects_wrong_types_in_one_sentence(values, message):
    with pytest.raises(UserError, match=message):
        TrainConfig.from_dict(values)


def test_saved_settings_must_be_complete():
    saved = TrainConfig().to_dict()
    del saved["data"]
    with pytest.raises(UserError, match="lack data"):
        TrainConfig.from_dict(saved, complete=True)


def test_a_setting_added_later_reads_back_as_how_older_runs_trained(tmp_path):
    saved = TrainConfig().to_dict()
    del saved["lower_lr_d_below"]  # a run saved before point 10's rule existed
    assert TrainConfig.from_dict(saved, complete=True).lower_lr_d_below == 0.0
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert run_folders.read_config(tmp_path)["lower_lr_d_below"] == 0.0, "so such a run keeps its identity"


def test_flags_come_from_field_metadata_for_any_field_type():
    @dataclasses.dataclass
    class Knobs:
        rate: float | None = dataclasses.field(default=None, metadata={"help": "100% of it", "choices": None})
        mode: str = dataclasses.field(default="a", metadata={"help": "a mode", "choices": ("a", "b")})

    import argparse

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Knobs)
    assert parser.parse_args(["--rate", "0.5", "--mode", "b"]).rate == 0.5
    assert "100% of it" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c"])


@pytest.mark.parametrize("argv", [[name, "--help"] for name in COMMANDS] + [["notebooks", "run", "--help"], ["notebooks", "inject", "--help"]])
def test_every_subcommand_answers_help_from_another_folder(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    assert "usage: python -m gan_helpers" in capsys.readouterr().out


def test_train_help_runs_as_a_program_from_another_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gan_helpers", "train", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--precision {auto,bf16,fp32}" in result.stdout


def test_command_line_paths_mean_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "data16", "--runs-dir", "r", "--epochs", "1"]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "data16") in error and str(PROJECT_ROOT / "data16") not in error


def test_no_notebook_defines_a_function_or_class():
    for stem in parameter_sets.NOTEBOOKS:
        nb = nbformat.read(notebooks.notebook_path(stem), as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            defined = [n.name for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            assert not defined, f"{stem} defines {defined}"


def test_committed_notebooks_carry_full_language_metadata_and_no_outputs():
    for stem in parameter_sets.NOTEBOOKS:
        raw = json.loads(notebooks.notebook_path(stem).read_text())
        assert raw["metadata"]["language_info"]["file_extension"] == ".py"
        assert all(not c.get("outputs") and not c.get("execution_count") for c in raw["cells"] if c["cell_type"] == "code")


def test_a_subcommand_loads_only_its_own_module(tmp_path):
    """`python -m gan_helpers data --help` must not pay for importing torch through the train command."""
    code = ("import sys; from gan_helpers.__main__ import build_parser; build_parser(['data', '--help']); "
            "print('torch' in sys.modules, 'gan_helpers.runs.experiment' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr
