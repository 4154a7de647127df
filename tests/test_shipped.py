"""A shipped result in place of training: found like a run, read like a run, live inversion, observations, the report.

The result is made here, in a temporary folder, from a 2-epoch CPU run of
each generator with the full profile's settings on 8 tiny images; LAB_RESULTS
points the lab at it, so the project's results/ is never read or written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
import torch
from image_folders import write_image_folder
from nbformat.v4 import new_markdown_cell, new_notebook

from gan_helpers.runs import checkpoints, experiment, results, run_folders
from report import sources
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import append_quality, read_quality
from gan_helpers.runs.summaries import run_summary, samples_at
from gan_helpers.latent import invert
from gan_helpers.runs.latent_files import choose_checkpoint, save_latent
from gan_helpers.models import GENERATORS, generate
from gan_helpers.paths import PROJECT_ROOT
from gan_helpers.runs.parameter_sets import NOTEBOOKS
from gan_helpers.runs.experiment import experiment_config
from report.observations import place_observations, read_observations
from report.export import export_run, sizes
from report.notebooks import KERNEL, NOTEBOOK_DIR, load_profile
from report.provenance import check_result
from report.sources import machine_in_words, version_in_words
from gan_helpers.speed import pick_device

KINDS = ("transposed", "upsampling")
OBSERVATIONS = """# Observations: reference

Text before the first section is not printed.

## Point 13 — inversion
The imitation of A keeps the bright centre.

## Point 14
Coordinate 78 changes brightness.

## Point 9
No cell asks for this.
"""


def full_settings(data: Path, runs_dir: Path, kind: str = "transposed"):
    """The full profile's experiment on tiny data: the settings a shipped reference result is compared with."""
    return experiment_config("full", data=str(data)).replace(generator=kind, runs_dir=str(runs_dir), progress=False)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Runs of both generators with the full profile's settings (2 epochs, epoch 1 rated best), exported as results/reference."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("shipped")
    data = write_image_folder(root / "tiny", 8)
    made = {"root": root, "data": data, "runs": {}, "results": {}}
    for kind in KINDS:
        config = full_settings(data, root / "runs", kind).replace(epochs=2, sample_every=1, save_every=1, quality_samples=2)
        run_dir = experiment.train(config)
        for record in read_quality(run_dir):  # epoch 1 best, so the best and last weights differ
            append_quality(run_dir, {**record, "swd": 1.0 if record["epoch"] == 1 else 100.0})
        made["runs"][kind] = run_dir
        made["results"][kind] = export_run(run_dir, root / "results" / "reference" / kind, commands=[(60.0, "make report")], commit="abc1234")
    (root / "results" / "reference" / "observations.md").write_text(OBSERVATIONS)
    yield made
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def lab_results(made, monkeypatch) -> Path:
    """Every test reads results from the temporary folder."""
    monkeypatch.setenv(results.RESULTS_VARIABLE, str(made["root"] / "results"))
    return made["root"] / "results"


def copied_results(made, tmp_path: Path, monkeypatch) -> Path:
    """A copy of the results folder that LAB_RESULTS points at, for tests that change it."""
    copy = Path(shutil.copytree(made["root"] / "results", tmp_path / "results"))
    monkeypatch.setenv(results.RESULTS_VARIABLE, str(copy))
    return copy


# ---- finding a result ----------------------------------------------------------------------------


def test_a_result_with_the_experiments_identity_is_read_instead_of_training(made, tmp_path, capsys):
    config = full_settings(made["data"], tmp_path / "runs")
    assert experiment.lab_runs(config) == made["results"]
    printed = capsys.readouterr().out
    assert printed == "", "a result is read as it is, without a word"
    assert experiment.find_run(config.replace(generator="upsampling")) == made["results"]["upsampling"]
    assert sources.shipped_results(config) == made["results"], "the report names what the notebooks find"
    assert not (tmp_path / "runs").exists(), "nothing is trained or written in runs_dir"


def test_a_run_in_the_runs_folder_comes_before_the_result(made, capsys):
    config = full_settings(made["data"], made["root"] / "runs")  # where the exported runs were trained
    assert experiment.find_run(config) == made["runs"]["transposed"]
    assert experiment.lab_run(config.replace(epochs=2), "upsampling") == made["runs"]["upsampling"]
    assert "Reusing" in capsys.readouterr().out
    assert sources.shipped_results(config) == {"transposed": None, "upsampling": None}, "trained here, not shipped"


def test_other_profiles_train_and_ignore_results_silently(made, capsys):
    for profile in ("quick", "smoke"):
        config = experiment_config(profile, data=str(made["data"]))
        assert sources.shipped_results(config) == {"transposed": None, "upsampling": None}
    assert capsys.readouterr().out == "", "quick and smoke train as always, without a word about results/"


def test_without_a_gpu_a_result_for_both_generators_makes_full_the_default_profile(made, tmp_path, monkeypatch, capsys):
    from gan_helpers.runs.experiment import default_profile

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_profile(made["data"]) == "full"
    assert default_profile(write_image_folder(tmp_path / "other", 8)) == "quick"  # DATA= another folder: trained here
    copy = copied_results(made, tmp_path, monkeypatch)
    shutil.rmtree(copy / "reference" / "upsampling")
    assert default_profile(made["data"]) == "quick", "half a result: the lab trains, so quick"
    monkeypatch.setenv(results.RESULTS_VARIABLE, "none")
    assert default_profile(made["data"]) == "quick"
    assert capsys.readouterr().out == "", "choosing the profile says nothing"


def test_other_data_or_settings_mean_training(made, tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(experiment, "train", lambda config=None, **_: trained.append(config) or tmp_path / "trained")
    other_data = full_settings(write_image_folder(tmp_path / "other", 8), tmp_path / "runs")
    assert experiment.lab_run(other_data, "transposed") == tmp_path / "trained"
    assert experiment.lab_run(full_settings(made["data"], tmp_path / "runs").replace(lr_d=2e-5), "upsampling") == tmp_path / "trained"
    assert [(c.generator, c.lr_d) for c in trained] == [("transposed", 1e-5), ("upsampling", 2e-5)]
    assert capsys.readouterr().out == ""


def test_lab_results_pointing_to_a_folder_without_results_forces_training(made, tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(experiment, "train", lambda config=None, **_: trained.append(config) or tmp_path / "trained")
    monkeypatch.setenv(results.RESULTS_VARIABLE, "none")  # as `make report PROFILE=full LAB_RESULTS=none` sets it
    assert results.results_root() == PROJECT_ROOT / "none" and not results.results_root().exists()
    config = full_settings(made["data"], tmp_path / "runs")
    assert experiment.lab_runs(config) == {"transposed": tmp_path / "trained", "upsampling": tmp_path / "trained"}
    assert [c.generator for c in trained] == ["transposed", "upsampling"]
    assert sources.shipped_results(config) == {"transposed": None, "upsampling": None}


def test_a_result_is_never_trained_into(made):
    with pytest.raises(UserError, match="is a shipped result, which is never trained into; continue its training in a new run"):
        experiment.train(resume=made["results"]["transposed"], epochs=3)


# ---- reading a result like a run ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_run_helpers_read_curves_grids_and_checkpoints_of_a_result(made, kind):
    result, run_dir = made["results"][kind], made["runs"][kind]
    assert {e: p.relative_to(result).as_posix() for e, p in run_folders.checkpoint_files(result).items()} == {
        1: "checkpoints/epoch-000001.pt", 2: "checkpoints/epoch-000002.pt"}, "a result is a run folder, pruned"
    pruned, full = (torch.load(run_folders.checkpoint_files(folder)[2], weights_only=True) for folder in (result, run_dir))
    assert set(pruned) == {"epoch", "config", "G", "D"} and {"opt_G", "opt_D", "rng"} <= set(full)
    assert all(v.dtype == torch.float16 for v in pruned["G"].values() if v.is_floating_point())
    assert [m["epoch"] for m in run_folders.read_metrics(result)] == [1, 2] and list(run_folders.samples(result)) == [0, 1, 2]
    assert [r["epoch"] for r in read_quality(result)] == [0, 1, 2]

    G, state = checkpoints.load_generator(run_folders.checkpoint_files(result)[2])
    assert isinstance(G, GENERATORS[kind]) and not G.training and state["epoch"] == 2 and state["config"]["generator"] == kind
    assert all(p.dtype == torch.float32 for p in G.parameters())
    assert checkpoints.load_generator(result)[1]["epoch"] == 2, "a folder means its last epoch, as for a run"
    assert "D" in checkpoints.load_generator(run_folders.checkpoint_files(run_dir)[2])[1], "a run's checkpoint still gives the full state"
    if kind == "transposed":  # 36 images a call: once is enough
        fakes = samples_at(result, 1)
        assert fakes.shape == (36, 3, 64, 64) and (fakes - samples_at(run_dir, 1)).abs().max() < 2e-3

    epoch, path, why = choose_checkpoint(result)
    assert (epoch, path.name) == (1, "epoch-000001.pt") and why["lowest_swd"] == 1.0, "the best epoch its provenance names"
    assert choose_checkpoint(result, 2)[:2] == (2, run_folders.checkpoint_files(result)[2])
    with pytest.raises(UserError, match=r"has no checkpoint for epoch 0; choose one of \[1, 2\]"):
        choose_checkpoint(result, 0)

    summary, original = run_summary(result), run_summary(run_dir)
    assert summary["run"] == result.name and original["run"] == run_dir.name
    assert summary["checkpoints"] == 2
    assert {k: summary[k] for k in ("epochs", "final_loss_D", "end_gap", "problems")} == {
        k: original[k] for k in ("epochs", "final_loss_D", "end_gap", "problems")}


def test_the_best_epoch_of_a_result_is_chosen_from_its_records_as_for_a_run(made, tmp_path):
    result = Path(shutil.copytree(made["results"]["transposed"], tmp_path / "reference" / "transposed"))
    epoch, path, why = choose_checkpoint(result)
    assert (epoch, path) == (1, result / "checkpoints" / "epoch-000001.pt") and why["model"] == "G"
    assert json.loads((result / "provenance.json").read_text())["epochs"]["best"] == 1, "the epoch the export chose"
    for record in read_quality(result):  # the records decide, as for any run folder
        append_quality(result, {**record, "swd": 100.0 if record["epoch"] == 1 else 1.0})
    assert choose_checkpoint(result)[0] == 2


def test_live_inversion_from_the_float16_weights_saves_under_runs(made):
    result = made["results"]["upsampling"]
    before = sizes(result)
    epoch, checkpoint, _ = choose_checkpoint(result)
    G, _ = checkpoints.load_generator(checkpoint)
    target = generate(G, torch.randn(1, 128, generator=torch.Generator().manual_seed(1)))[0]
    found = invert(G, target, steps=6, lr=0.01, reduction="sum", seed=0, frames=3)
    assert found.final_mse < found.losses[0]
    path = save_latent(found, result, epoch, "A-train0")
    assert path == made["root"] / "runs" / "shipped" / "reference" / "upsampling" / "latents" / "epoch-000001-A-train0.pt"
    assert torch.equal(torch.load(path, weights_only=True)["z"], found.z) and path.with_suffix(".png").is_file()
    assert sizes(result) == before and check_result(result) == [], "nothing is written into results/"


# ---- title page and observations ---------------------------------------------------------------


def test_the_title_page_line_is_computed_from_provenance_or_this_machine(made, tmp_path, monkeypatch):
    config = full_settings(made["data"], tmp_path)
    line = sources.describe_source(sources.shipped_results(config), config)
    machine = json.loads((made["results"]["transposed"] / "provenance.json").read_text())["environment"]["device_name"]
    assert line.startswith(f"the shipped result reference, trained on {machine_in_words(machine)} (")
    assert f"torch {version_in_words(torch.__version__)}): transposed 2 of {config.epochs} epochs (" in line
    assert f", upsampling 2 of {config.epochs} epochs (" in line
    assert line.endswith(" s of training)") and line.count("trained on") == 1, "one machine trained both"
    assert "results/" not in line and "provenance.json" not in line and "+" not in line, "words, not paths or build tags"
    here = pick_device(config.device)
    name = f" ({torch.cuda.get_device_name(here)})" if here.type == "cuda" else ""
    assert sources.describe_source({"transposed": None, "upsampling": None}, config) == f"trained here on {here.type}{name}"
    assert sources.describe_source({**sources.shipped_results(config), "upsampling": None}, config).endswith(
        f"; upsampling trained here on {here.type}{name}")

    results = copied_results(made, tmp_path, monkeypatch)
    gpu = {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "cuda": "12.4", "torch": "2.5.1+cu124"}
    for kind in KINDS:
        path = results / "reference" / kind / "provenance.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "environment": gpu}))
    assert "trained on NVIDIA H100 80GB HBM3 (CUDA 12.4, torch 2.5.1): transposed" in sources.describe_source(
        sources.shipped_results(config), config)

    for kind in KINDS:  # a run resumed on two machines names both, in the order its commands ran
        path = results / "reference" / kind / "provenance.json"
        given = json.loads(path.read_text())
        given["commands"] = [{"command": "train", "seconds": 60, "machine": "AMD EPYC with AVX-512 bf16"},
                             {"command": "train --resume", "seconds": 60, "machine": "Intel Xeon with AMX"},
                             {"command": "train --resume", "seconds": 60, "machine": "AMD EPYC with AVX-512 bf16"}]
        path.write_text(json.dumps(given))
    assert "trained on AMD EPYC and Intel Xeon (CUDA 12.4, torch 2.5.1): transposed" \
        in sources.describe_source(sources.shipped_results(config), config), "the machines, without their CPU flags"


def test_observations_file_sections_and_errors(tmp_path):
    path = tmp_path / "observations.md"
    path.write_text(OBSERVATIONS)
    assert read_observations(path) == {13: "The imitation of A keeps the bright centre.", 14: "Coordinate 78 changes brightness.",
                                       9: "No cell asks for this."}
    path.write_text("## Point 10\na\n\n## Point 10\nb\n")
    with pytest.raises(UserError, match="two sections for point 10"):
        read_observations(path)
    path.write_text("## Point 10\na\n\n## Training\nb\n")
    with pytest.raises(UserError, match="a section '## Training'; every '## ' heading must be '## Point N'"):
        read_observations(path)


def lab_notebooks() -> dict[str, nbformat.NotebookNode]:
    """Notebooks with every point's heading and observation cells for points 10, 13 and 14."""
    layout = {"01_warmup": [1, 2, 3, 4, 5, 6], "02_data": [7, 8, 9], "03_dcgan": [10, 11, 12],
              "04_upsampling": [], "05_latent": [13, 14, 15, 16, 17], "06_reflections": [18]}
    found = {}
    for stem, points in layout.items():
        cells = [new_markdown_cell(f"# Title of {stem}")]
        for point in points:
            cells.append(new_markdown_cell(f"## Point {point} — answer"))
            if point in (10, 13, 14):
                cells.append(new_markdown_cell(f"**Observations (Point {point}).** *To be written by whoever looked.* What to look at: x."))
        found[stem] = new_notebook(cells=cells)
    return found


def test_observations_fill_their_cells_and_others_keep_the_prompt(made):
    from report.merge import merge

    info = {"title": "T", "author": "", "course": "", "date": "today", "language": "english", "profile": "full",
            "intro": "Intro.", "facts": []}
    path = made["root"] / "results" / "reference" / "observations.md"
    notes = []
    merged = merge(lab_notebooks(), info, notes=notes, observations=path)
    cells = {int(c.source.split("Point ")[1].split(")")[0]): c.source for c in merged.cells if c.source.startswith("**Observations")}
    assert cells[13] == "**Observations (Point 13).** *Written for this result, from its figures.*\n\nThe imitation of A keeps the bright centre."
    assert cells[14].endswith("Coordinate 78 changes brightness.") and "To be written" in cells[10]
    assert any("point 10:" in n and "keeps the prompt" in n for n in notes)
    assert any("point 9 has no observations cell" in n for n in notes)
    untouched = merge(lab_notebooks(), info)
    assert all("To be written" in c.source for c in untouched.cells if c.source.startswith("**Observations"))
    assert sources.observations_file(made["results"]) == path
    assert sources.observations_file({**made["results"], "upsampling": None}) is None, "not for runs trained here"


def test_observations_may_quote_only_values_their_notebook_computed():
    from nbformat.v4 import new_code_cell, new_output

    from report.observations import unquoted_numbers

    def chapter(title, printed, observed):
        code = new_code_cell("print(...)", outputs=[new_output("stream", name="stdout", text=printed)])
        return [new_markdown_cell(f"# {title}"), code, new_markdown_cell(f"**Observations (Point {observed[0]}).** {observed[1]}")]

    merged = new_notebook(cells=chapter("03", "best SWD 42.94 at epoch 240; D(G(z)) 0.0403; lr 1e-05\n", (10, (
        "SWD 42.9 at epoch 240 (42.94 rounds to it), D(G(z)) 0.040 and lr 1e-5; 12 % of the steps, 0.37 at epoch 20, "
        "and 16.2 at step 50."))) + chapter("05", "MSE 0.0321, |z| 22.5\n", (13, "MSE 0.0321, |z| 22.3; 42.94 is another notebook's")))
    assert unquoted_numbers(merged) == [(10, "12"), (10, "0.37"), (10, "16.2"), (13, "22.3"), (13, "42.94")]
    merged.cells[1].outputs[0].text += "12.3 % and 0.371 and 16.16\n"
    assert unquoted_numbers(merged) == [(13, "22.3"), (13, "42.94")], "a value quoted as rounded matches"


# ---- the report from a shipped result ----------------------------------------------------------


def test_notebook_05_runs_from_the_result_and_merges_into_the_report(made, tmp_path, monkeypatch):
    """Notebook 05 (smoke's knobs, the full profile's experiment on the tiny data) executed against the result:
    nothing trained, latents under runs/shipped, then merged with the title line and the observations.

    The two nearest-neighbour figures (128 samples each, half the notebook's time on 2 cores) are left out.
    """
    import papermill

    from report.build import assemble

    config = experiment_config("full", data=str(made["data"]))
    for kind in KINDS:  # the kernel looks up its runs as here, with the same LAB_RESULTS: never a 2000-epoch run
        assert experiment.find_run(config.replace(generator=kind)) == made["results"][kind]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "executed"
    out.mkdir()
    values = {**load_profile("smoke")["05_latent"], "profile": "full", "data": str(made["data"]), "progress": False, "interactive": False}
    notebook = nbformat.read(NOTEBOOK_DIR / "05_latent.ipynb", as_version=4)
    notebook.cells = [c for c in notebook.cells if "show_nearest_pairs(" not in c.source]
    nbformat.write(notebook, tmp_path / "05_latent.ipynb")
    papermill.execute_notebook(str(tmp_path / "05_latent.ipynb"), str(out / "05_latent.ipynb"), parameters=values,
                               kernel_name=KERNEL, cwd=str(NOTEBOOK_DIR), progress_bar=False)
    for stem in NOTEBOOKS:
        if stem != "05_latent":
            shutil.copy(NOTEBOOK_DIR / f"{stem}.ipynb", out / f"{stem}.ipynb")

    printed = "".join(o.get("text", "") for c in nbformat.read(out / "05_latent.ipynb", as_version=4).cells for o in c.get("outputs", []))
    assert "nothing is trained here" in printed and "transposed: G of epoch 1 (eval mode" in printed
    for kind in KINDS:
        latents = made["root"] / "runs" / "shipped" / "reference" / kind / "latents"
        assert {p.name for p in latents.glob("*.pt")} >= {"epoch-000001-outside-grace_hopper.pt"}
        assert check_result(made["results"][kind]) == []

    merged, notes = assemble("full", out, str(made["data"]), execute=False)
    assert merged.metadata.lab_report["runs_source"].startswith("the shipped result reference, trained on ")
    text = "\n".join(c.source for c in merged.cells)
    facts = merged.metadata.lab_report["title_facts"]
    assert "the shipped result reference" in facts and "Training runs" not in facts, "the title page names the result in words"
    assert "results/" not in facts and "notebooks/params" not in facts, "and no paths"
    assert "The imitation of A keeps the bright centre." in text and "Coordinate 78 changes brightness." in text
    assert "No cell asks for this." not in text and any("point 9 has no observations cell" in n for n in notes)
