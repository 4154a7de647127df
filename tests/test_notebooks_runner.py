"""The notebook runner: parameter sets checked strictly, injected copies, profile choice, execution."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gan_helpers.runs import experiment, parameter_sets
from report import notebooks
from gan_helpers.__main__ import main
from gan_helpers.errors import UserError


def write_notebook(path: Path, parameters: str, *body: str) -> None:
    cells = [new_markdown_cell(f"# {path.stem}"), new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(source) for source in body]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A notebooks folder with 01_warmup and 02_data and a parameter set 'smoke' for them."""
    folder = tmp_path / "notebooks"
    (folder / "params").mkdir(parents=True)
    write_notebook(folder / "01_warmup.ipynb", 'steps = 100  # iterations\nlr = 0.1', "print(f'steps={steps} lr={lr}')")
    write_notebook(folder / "02_data.ipynb", 'data = "data/galaxies64"\nepochs: int = 5', "print(f'data={data} epochs={epochs}')")
    (folder / "params" / "smoke.yaml").write_text("01_warmup:\n  steps: 3\n02_data:\n  epochs: 1\n")
    monkeypatch.setattr(notebooks, "NOTEBOOK_DIR", folder)
    monkeypatch.setattr(parameter_sets, "PARAMS_DIR", folder / "params")
    return folder


def set_params(lab: Path, text: str) -> None:
    (lab / "params" / "smoke.yaml").write_text(text)


def test_parameters_cell_names_and_defaults(lab):
    assert notebooks.notebook_parameters(lab / "02_data.ipynb") == {"data": "data/galaxies64", "epochs": 5}


def test_profile_loads_with_every_notebook_present(lab):
    profile = notebooks.load_profile("smoke", ["01_warmup", "02_data"])
    assert profile["01_warmup"] == {"steps": 3}
    assert profile["02_data"] == {"epochs": 1}
    assert profile["06_reflections"] == {}  # no section: the notebook's defaults


def test_mistyped_key_is_one_clear_sentence(lab):
    set_params(lab, "02_data:\n  epoch: 1\n")
    with pytest.raises(UserError) as error:
        notebooks.load_profile("smoke", ["01_warmup", "02_data"])
    message = str(error.value)
    assert "02_data has no parameter 'epoch'" in message
    assert "did you mean 'epochs'" in message
    assert "\n" not in message


def test_unknown_section_is_an_error(lab):
    set_params(lab, "03_dcgn:\n  epochs: 1\n")
    with pytest.raises(UserError, match="section '03_dcgn' that is neither 'train', 'without_gpu' nor a notebook.*did you mean '03_dcgan'"):
        notebooks.load_profile("smoke", ["01_warmup", "02_data"])


def test_without_gpu_knobs_replace_the_notebooks_own_on_a_cpu_only(lab):
    set_params(lab, "01_warmup:\n  steps: 300\n  lr: 0.5\nwithout_gpu:\n  01_warmup:\n    steps: 40\n")
    assert notebooks.load_profile("smoke", ["01_warmup"], gpu=True)["01_warmup"] == {"steps": 300, "lr": 0.5}
    assert notebooks.load_profile("smoke", ["01_warmup"], gpu=False)["01_warmup"] == {"steps": 40, "lr": 0.5}


@pytest.mark.parametrize("gpu", [True, False])
def test_without_gpu_typos_are_errors_on_either_machine(lab, gpu):
    set_params(lab, "without_gpu:\n  01_warmup:\n    stepz: 40\n")
    with pytest.raises(UserError, match="01_warmup has no parameter 'stepz'.*did you mean 'steps'"):
        notebooks.load_profile("smoke", ["01_warmup"], gpu=gpu)
    set_params(lab, "without_gpu:\n  01_warmpu:\n    steps: 40\n")
    with pytest.raises(UserError, match="section without_gpu of .* names '01_warmpu', which is not a notebook.*'01_warmup'"):
        notebooks.load_profile("smoke", ["01_warmup"], gpu=gpu)


def test_a_notebook_needs_exactly_one_parameters_cell(lab):
    nb = nbformat.read(lab / "01_warmup.ipynb", as_version=4)
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, lab / "01_warmup.ipynb")
    with pytest.raises(UserError, match="exactly one code cell tagged 'parameters'"):
        notebooks.load_profile("smoke", ["01_warmup"])


def test_bad_keys_stop_execution_before_any_notebook_runs(lab, tmp_path, monkeypatch):
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append(a))
    set_params(lab, "01_warmup:\n  steps: 3\n02_data:\n  epochz: 1\n")
    with pytest.raises(UserError, match="epochz"):
        notebooks.execute("smoke", tmp_path / "out", notebooks=["01_warmup", "02_data"])
    assert calls == []


def test_inject_writes_parameterised_copies_without_running_them(lab, tmp_path):
    data = tmp_path / "images"
    data.mkdir()
    written = notebooks.inject("smoke", tmp_path / "out", data=data, notebooks=["01_warmup", "02_data"])
    assert [p.name for p in written] == ["01_warmup.ipynb", "02_data.ipynb"]
    for path, expected, absent in ((written[0], ["steps = 3"], "data ="), (written[1], ["epochs = 1", f'data = "{data}"'], None)):
        nb = nbformat.read(path, as_version=4)
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        injected = tags.index(["injected-parameters"])
        assert tags[injected - 1] == ["parameters"]  # right after the defaults, so it overrides them
        source = nb.cells[injected].source
        for line in expected:
            assert line in source
        if absent:  # --data only reaches notebooks that have a data parameter
            assert absent not in source
        assert nb.metadata.kernelspec.name == "python3"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_data_must_exist(lab, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        notebooks.inject("smoke", tmp_path / "out", data=tmp_path / "nowhere", notebooks=["02_data"])


def test_default_profile_follows_the_gpu(monkeypatch, tmp_path):
    import torch

    monkeypatch.setenv("LAB_RESULTS", str(tmp_path))  # no shipped result to stand in for training
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert experiment.default_profile() == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert experiment.default_profile() == "quick"


def test_default_profile_without_a_gpu_is_full_when_run_lookup_finds_shipped_results(monkeypatch):
    import torch

    from gan_helpers.paths import PROJECT_ROOT
    from gan_helpers.runs.results import results_root

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    seen = []

    def finds(shipped, trained=()):
        def find_run(config):
            seen.append((config.epochs, config.data))
            if config.generator in shipped:
                return results_root() / "reference" / config.generator
            return PROJECT_ROOT / "runs" / "full" / f"00000-x-{config.generator}" if config.generator in trained else None
        return find_run
    monkeypatch.setattr(experiment, "find_run", finds({"transposed", "upsampling"}))
    assert experiment.default_profile() == "full"
    assert seen[-1] == (experiment.experiment_config("full").epochs, experiment.experiment_config("full").data)
    monkeypatch.setattr(experiment, "find_run", finds({"transposed"}))  # half a result: the lab trains, so quick
    assert experiment.default_profile() == "quick"
    monkeypatch.setattr(experiment, "find_run", finds({"transposed"}, {"upsampling"}))  # a run found first may train on
    assert experiment.default_profile() == "quick"


def test_profile_choice_empty_means_automatic(lab, monkeypatch):
    for name in ("quick", "full"):
        (lab / "params" / f"{name}.yaml").write_text("")
    monkeypatch.setattr(experiment, "default_profile", lambda data=None: "quick")
    monkeypatch.delenv("PROFILE", raising=False)
    assert experiment.resolve_profile("") == "quick"
    assert experiment.resolve_profile(None) == "quick"
    monkeypatch.setenv("PROFILE", "full")
    assert experiment.resolve_profile("") == "full"
    assert experiment.resolve_profile("smoke") == "smoke"  # an explicit choice wins over $PROFILE
    with pytest.raises(UserError, match="no parameter set 'huge'.*full, quick, smoke"):
        experiment.resolve_profile("huge")


def test_cli_inject_and_its_errors(lab, tmp_path, capsys):
    out = tmp_path / "injected"
    assert main(["notebooks", "inject", "--profile", "smoke", "--out", str(out), "--notebook", "01_warmup"]) == 0
    assert (out / "01_warmup.ipynb").is_file()
    set_params(lab, "01_warmup:\n  step: 3\n")
    assert main(["notebooks", "inject", "--profile", "smoke", "--out", str(out), "--notebook", "01_warmup"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "'step'" in err and "\n" not in err


def test_execute_runs_in_order_with_inline_figures_and_names_a_failure(lab, tmp_path, monkeypatch, capsys):
    """One real run (two kernel starts): figures survive MPLBACKEND=Agg, a failure is one sentence."""
    monkeypatch.setenv("MPLBACKEND", "Agg")  # what the CI exports
    write_notebook(lab / "01_warmup.ipynb", "steps = 100",
                   "import matplotlib.pyplot as plt\nplt.plot([0, steps])\nplt.show()\nprint('steps', steps)")
    write_notebook(lab / "02_data.ipynb", "epochs = 5", "raise ValueError(f'bad epochs {epochs}')")
    out = tmp_path / "executed"
    with pytest.raises(UserError) as error:
        notebooks.execute("smoke", out, notebooks=["02_data", "01_warmup"])
    message = str(error.value)
    assert "notebook 02_data failed" in message and "ValueError: bad epochs 1" in message
    assert str(out / "02_data.ipynb") in message and "\n" not in message
    first = nbformat.read(out / "01_warmup.ipynb", as_version=4)  # ran first: lab order, not argument order
    outputs = [o for c in first.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("steps 3" in o.get("text", "") for o in outputs)
    printed = capsys.readouterr().out
    assert printed.index("[1/2] 01_warmup") < printed.index("[2/2] 02_data")
    assert "01_warmup done in" in printed
