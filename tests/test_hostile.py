"""Hostile inputs, round two: outside text never runs as TeX, one writer per folder, shipped results read-only
and checked, one sentence for every path error, no litter, a stop that keeps every finished epoch.

The cases and their expected sentences are listed in tests/README.md ("Hostile inputs, round two").
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from image_folders import write_image_folder
from nbformat.v4 import new_markdown_cell, new_notebook, new_output, new_code_cell

from gan_helpers.runs import run_folders, results as shipped
from report import sources
from gan_helpers.storage import locks
from gan_helpers.__main__ import main
from gan_helpers.runs.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.runs.experiment import find_run, train
from gan_helpers.paths import PROJECT_ROOT
from report import observations, render
from report.observations import markdown_text
from commands.evaluate import evaluate_run
from gan_helpers.runs.results import require_intact
from report.export import export_run, sizes
from report.provenance import check_result

HOSTILE = r"\input{/etc/hostname} \write18{touch PWNED} \openin\x=/etc/hostname \catcode`\@=11 <script>alert(1)</script> $$x$$"
needs_latex = pytest.mark.skipif(not all(shutil.which(p) for p in ("xelatex", "pandoc", "pdftotext")),
                                 reason="xelatex, pandoc or pdftotext is not installed")


def tiny(data: Path, runs_dir: Path, **changes) -> TrainConfig:
    values = dict(data=str(data), runs_dir=str(runs_dir), epochs=1, batch_size=2, sample_every=1, save_every=1,
                  max_images=4, fixed_noise=4, quality_samples=2, progress=False, augment=False)
    return TrainConfig(**{**values, **changes})


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock file's (which holds the process id of whoever holds the lock)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != locks.LOCK_FILE}


def one_sentence(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """A trained 2-epoch run (a checkpoint each epoch) and its export, built once for the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hostile")
    data = write_image_folder(root / "tiny", 8)
    run_dir = train(tiny(data, root / "runs", epochs=2))
    result = export_run(run_dir, root / "results" / "reference" / "transposed", commands=[(1.0, "train")], commit="abc")
    yield {"root": root, "data": data, "run": run_dir, "result": result}
    torch.set_num_threads(threads)


def copy_run(made: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made["run"], tmp_path / "runs" / made["run"].name))


def holder(folder: Path, beside: bool = False) -> subprocess.Popen:
    """Another process holding `folder`'s lock until it is killed (it prints 'held' once it has it)."""
    how = "hold_destination" if beside else "hold"
    code = f"import sys, time\nfrom gan_helpers.storage import locks\nwith locks.{how}(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n"
    process = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    assert process.stdout.readline().strip() == "held"
    return process


# ---- 1. outside text is data ---------------------------------------------------------------------


def test_outside_text_becomes_markdown_that_names_no_tex_html_or_math():
    escaped = markdown_text(HOSTILE)
    assert not set(escaped) & set("\\<>$`{}~!@"), escaped  # every character that opens raw TeX, HTML, math or code
    assert markdown_text("*seen* at epoch 300") == "*seen* at epoch 300", "the writer's emphasis stays"


def test_observations_reach_the_cell_escaped(tmp_path):
    path = tmp_path / "observations.md"
    path.write_text(f"## Point 10\n{HOSTILE}\n")
    nb = new_notebook(cells=[new_markdown_cell("**Observations (Point 10).** Write what you see.")])
    observations.place_observations(nb, path)
    assert "Written for this result" in nb.cells[0].source
    assert "\\" not in nb.cells[0].source and "<script>" not in nb.cells[0].source and "$$" not in nb.cells[0].source


def _hostile_report() -> nbformat.NotebookNode:
    """A small merged notebook whose observations, summary table and data-set names are hostile."""
    from gan_helpers.runs.summaries import summary_table

    nb = new_notebook(cells=[new_markdown_cell("# Notebook\n\n## Point 10\n\nText."),
                             new_markdown_cell("**Observations (Point 10).** Prompt.")])
    nb.metadata["lab_report"] = {"title": r"Title \input{/etc/hostname}", "author": "A", "course": "C", "date": "D",
                                 "language": "english", "profile": "smoke", "runs_source": r"result \input{/etc/hostname}"}
    summary = {k: 0 for k in ("epochs", "planned_epochs", "seconds", "seconds_per_epoch", "images", "batch_size", "lr_d",
                              "lr_g", "final_loss_D", "final_loss_G", "end_gap", "end_ratio", "end_D_x", "end_D_G_z", "checkpoints")}
    summary.update(run="00001-x", generator="transposed", device="cpu", problems=[HOSTILE],
                   data="data/`$$x$$`\\input{/etc/hostname}|<b>x</b>")
    nb.cells.append(new_code_cell("", outputs=[new_output("display_data", data={"text/markdown": summary_table([summary]),
                                                                               "text/plain": "table"})]))
    return nb


@needs_latex
def test_the_pdf_shows_hostile_text_literally_and_reads_no_file(tmp_path):
    folder = tmp_path / "results" / "evil"
    folder.mkdir(parents=True)
    (folder / "observations.md").write_text(f"## Point 10\n\n{HOSTILE}\n\n```{{=latex}}\n\\input{{/etc/hostname}}\n```\n")
    nb = _hostile_report()
    observations.place_observations(nb, folder / "observations.md")
    pdf = render.render_pdf(nb, tmp_path / "out.pdf", tmp_path / "build", "latex")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert r"\input{/etc/hostname}" in flat and r"\write18{touch PWNED}" in flat and "<script>alert(1)</script>" in flat
    assert "$$x$$" in flat and r"\catcode" in flat and r"\openin" in flat
    hostname = Path("/etc/hostname").read_text().strip()
    assert hostname not in flat.replace(r"\input{/etc/hostname}", ""), "the contents of /etc/hostname reached the PDF"
    assert not (tmp_path / "build" / "PWNED").exists() and not Path("PWNED").exists()


def test_xelatex_runs_paranoid_and_without_shell_escape(tmp_path):
    assert render.XELATEX_ENV == {"openin_any": "p", "openout_any": "p", "shell_escape": "f"}
    assert "-no-shell-escape" in render.XELATEX_FLAGS


@needs_latex
def test_raw_tex_that_reaches_xelatex_still_reads_and_writes_no_outside_file(tmp_path):
    tex = tmp_path / "t.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\immediate\\write18{touch PWNED}"
                   "\\newwrite\\w\\immediate\\openout\\w=/tmp/lab-hostile-out.txt\\immediate\\closeout\\w"
                   "\\input{/etc/hostname}\\end{document}\n")
    with pytest.raises(UserError, match="xelatex could not typeset"):
        render._xelatex(tex)
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "runsystem(touch PWNED)...disabled" in log
    assert not (tmp_path / "PWNED").exists() and not Path("/tmp/lab-hostile-out.txt").exists()


# ---- 2. one writer per folder --------------------------------------------------------------------


def test_a_second_writer_of_a_run_stops_at_once_naming_the_holder(made, tmp_path):
    run_dir = copy_run(made, tmp_path)
    before = snapshot(run_dir)
    other = holder(run_dir)
    try:
        for attempt in (lambda: train(resume=run_dir, epochs=3),
                        lambda: evaluate_run(run_dir, samples=2)):
            with pytest.raises(UserError, match=rf"{run_dir.name} is in use by process {other.pid}, which is writing into it"):
                attempt()
        assert snapshot(run_dir) == before, "the refused writer changed nothing"
    finally:
        other.kill()
        other.wait()
    # kill -9 leaves the lock file, never a stale lock
    train(resume=run_dir, epochs=3)
    assert [m["epoch"] for m in run_folders.read_metrics(run_dir)] == [1, 2, 3]


def test_a_run_folder_from_before_the_locks_resumes_and_exports_without_the_lock_file(made, tmp_path):
    run_dir = copy_run(made, tmp_path)
    assert (run_dir / locks.LOCK_FILE).is_file(), "training left its lock file (the lock itself went with the process)"
    (run_dir / locks.LOCK_FILE).unlink()  # as a run trained before this change
    train(resume=run_dir, epochs=3)
    result = export_run(run_dir, tmp_path / "results" / "r" / "transposed", commands=[(1.0, "train")], commit="abc")
    assert not any(".lock" in name for name in sizes(result)) and check_result(result) == []
    assert not (tmp_path / "results" / "r" / ".transposed.lock").exists(), "an export's lock file goes with it"


def test_a_second_export_or_prepare_into_one_destination_stops_at_once(made, tmp_path):
    from gan_helpers.datasets.prepare import prepare_folder

    dest = tmp_path / "results" / "new" / "transposed"
    dest.parent.mkdir(parents=True)
    other = holder(dest, beside=True)
    try:
        with pytest.raises(UserError, match=rf"transposed is in use by process {other.pid}.*this export changed nothing"):
            export_run(made["run"], dest, commands=[(1.0, "train")], commit="abc")
        assert not dest.exists()
    finally:
        other.kill()
        other.wait()
    out = tmp_path / "prepared"
    other = holder(out, beside=True)
    try:
        with pytest.raises(UserError, match=rf"prepared is in use by process {other.pid}.*this prepare changed nothing"):
            prepare_folder(made["data"], out, progress=False)
        assert not out.exists()
    finally:
        other.kill()
        other.wait()
    prepare_folder(made["data"], out, progress=False)
    assert not (tmp_path / ".prepared.lock").exists() and (out / "manifest.csv").is_file()


# ---- 3. shipped results are read-only and checked ----------------------------------------------------


def test_evaluate_of_a_result_leaves_every_byte_and_writes_only_outside(made, tmp_path, capsys):
    before = snapshot(made["result"])
    assert main(["evaluate", str(made["result"]), "--samples", "2"]) == 0
    assert "is a shipped result, which nothing changes: the numbers are printed only" in capsys.readouterr().out
    assert main(["evaluate", str(made["result"]), "--output", str(made["result"] / "quality.jsonl")]) == 2
    assert "nothing writes into shipped results" in one_sentence(capsys.readouterr().err)
    assert main(["evaluate", str(made["result"]), "--evolution"]) == 2
    assert "drop --evolution" in one_sentence(capsys.readouterr().err)
    assert main(["evaluate", str(made["result"]), "--samples", "2", "--output", str(tmp_path / "q" / "quality.jsonl")]) == 0
    assert len((tmp_path / "q" / "quality.jsonl").read_text().splitlines()) == len(run_folders.checkpoint_files(made["result"]))
    assert snapshot(made["result"]) == before


def _changed_copy(made: dict, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made["result"], tmp_path / "results" / "reference" / "transposed"))


@pytest.mark.parametrize("change, named", [
    (lambda r: (r / "quality.jsonl").write_text((r / "quality.jsonl").read_text() + "\n"), "quality.jsonl differs from the file"),
    (lambda r: (r / "samples" / "extra.png").write_bytes(b"x"), "samples/extra.png is not listed in its provenance.json"),
    (lambda r: (r / "reals.png").unlink(), "reals.png is missing"),
    (lambda r: ((r / "reals.png").unlink(), (r / "reals.png").symlink_to("/etc/hostname")), "reals.png is a symbolic link"),
])
def test_every_use_of_a_changed_result_is_refused_naming_the_file(made, tmp_path, monkeypatch, capsys, change, named):
    result = _changed_copy(made, tmp_path)
    assert require_intact(result) == result
    change(result)
    monkeypatch.setenv(shipped.RESULTS_VARIABLE, str(tmp_path / "results"))
    config = TrainConfig.from_dict(run_folders.read_config(made["run"])).replace(runs_dir=str(tmp_path / "runs"))
    with pytest.raises(UserError, match=named):
        find_run(config)  # the result has the run's identity, so the lab would read it
    assert main(["evaluate", str(result), "--print-only"]) == 2
    assert named in one_sentence(capsys.readouterr().err)
    assert check_result(result), "check_result reports it too"


def test_a_linked_observations_file_is_refused(made, tmp_path):
    result = _changed_copy(made, tmp_path)
    (result.parent / "observations.md").symlink_to("/etc/hostname")
    with pytest.raises(UserError, match="observations.md is a symbolic link"):
        sources.observations_file({"transposed": result})


# ---- 4. one sentence for every path error ----------------------------------------------------------


@pytest.fixture
def afile(tmp_path) -> Path:
    (tmp_path / "afile").write_text("a regular file\n")
    return tmp_path / "afile"


def commands_given(made: dict, where: Path) -> dict[str, list[str]]:
    """Every command that takes a path to write to, with that path `where`."""
    return {
        "train --runs-dir": ["train", "--data", str(made["data"]), "--runs-dir", str(where), "--epochs", "1", "--batch-size", "2",
                             "--max-images", "4", "--quality-samples", "0", "--no-progress", "--no-augment"],
        "prepare SRC DST": ["prepare", str(made["data"]), str(where), "--no-progress"],
        "export RUN DST": ["export", str(made["run"]), str(where / "transposed")],
        "evaluate --output": ["evaluate", str(made["run"]), "--samples", "2", "--output", str(where / "q.jsonl")],
        "report --pdf": ["report", "--profile", "smoke", "--render-only", "--pdf", str(where / "r.pdf")],
        "notebooks run --out": ["notebooks", "run", "--profile", "smoke", "--data", str(made["data"]), "--out", str(where)],
        "data --dst": ["data", "--dst", str(where), "--no-progress"],
        "crawl QUERY DST": ["crawl", "red fox", str(where), "--delay", "0"],
    }


@pytest.mark.parametrize("command", ["train --runs-dir", "prepare SRC DST", "export RUN DST", "evaluate --output",
                                     "report --pdf", "notebooks run --out", "data --dst", "crawl QUERY DST"])
def test_a_path_through_a_regular_file_is_one_sentence(made, afile, command, capsys):
    assert main(commands_given(made, afile / "sub")[command]) == 2
    sentence = one_sentence(capsys.readouterr().err)
    assert "afile, which is a file" in sentence or "afile is a file" in sentence, sentence


@pytest.mark.parametrize("command", ["train --runs-dir", "prepare SRC DST", "export RUN DST", "notebooks run --out",
                                     "data --dst", "crawl QUERY DST"])
def test_a_file_where_a_folder_belongs_is_one_sentence(made, afile, command, capsys):
    argv = commands_given(made, afile)[command]
    if command == "export RUN DST":
        argv[-1] = str(afile)
    assert main(argv) == 2
    sentence = one_sentence(capsys.readouterr().err)
    assert "is a file" in sentence and "afile" in sentence, sentence
    assert afile.read_text() == "a regular file\n"


@pytest.mark.parametrize("command", ["train --runs-dir", "prepare SRC DST", "export RUN DST", "evaluate --output",
                                     "report --pdf", "notebooks run --out", "crawl QUERY DST"])
def test_a_read_only_folder_is_one_sentence(made, tmp_path, command, monkeypatch, capsys):
    locked = tmp_path / "readonly"
    locked.mkdir()
    locked.chmod(0o555)
    real_access = os.access
    # root may write anywhere whatever the mode, so for root the folder's refusal is simulated where it is asked
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked else real_access(path, mode, **kw))
    try:
        assert main(commands_given(made, locked)[command]) == 2
        sentence = one_sentence(capsys.readouterr().err)
        assert "readonly is read-only" in sentence and "give a folder you may write into" in sentence, sentence
        assert not any(locked.iterdir())
    finally:
        locked.chmod(0o755)


# ---- 5. no litter, true messages -------------------------------------------------------------------


def test_a_killed_exports_staging_folder_goes_with_the_next_export_and_git_ignores_it(made, tmp_path, capsys):
    dest = tmp_path / "results" / "x" / "transposed"
    stale = dest.parent / ".transposed.0123abcd.partial"
    (stale / "samples").mkdir(parents=True)
    export_run(made["run"], dest, commands=[(1.0, "train")], commit="abc")
    assert not stale.exists() and "left by an export that did not finish" in capsys.readouterr().out
    assert sorted(p.name for p in dest.parent.iterdir()) == ["transposed"]
    ignored = subprocess.run(["git", "check-ignore", "results/.transposed.0123abcd.partial/", "results/reference/.transposed.lock"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == ["results/.transposed.0123abcd.partial/", "results/reference/.transposed.lock"]


def test_a_run_that_fails_in_its_first_epoch_leaves_no_folder(made, tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    assert main(commands_given(made, runs_dir)["train --runs-dir"] + ["--lr-g", "1e9", "--lr-d", "1e9"]) == 2
    sentence = one_sentence(capsys.readouterr().err)
    assert "was removed, as it held no finished epoch" in sentence, sentence
    assert not any(runs_dir.iterdir())


def test_a_run_killed_before_its_first_checkpoint_says_to_start_anew(made, tmp_path, capsys):
    run_dir = copy_run(made, tmp_path)
    for path in (run_dir / "checkpoints").iterdir():
        path.unlink()
    (run_dir / "checkpoints" / ".epoch-000001.pt.0123abcd.partial").write_bytes(b"half")  # killed while saving
    assert main(["train", "--resume", str(run_dir), "--epochs", "3"]) == 2
    sentence = one_sentence(capsys.readouterr().err)
    assert "has no checkpoint, so it cannot be resumed" in sentence and "start a new run" in sentence
    config = TrainConfig.from_dict(run_folders.read_config(run_dir)).replace(runs_dir=str(run_dir.parent))
    new = train(config)  # following the hint works
    assert new != run_dir and max(run_folders.checkpoint_files(new)) == config.epochs


def test_an_edited_generator_in_config_json_is_refused_naming_the_key(made, tmp_path):
    run_dir = copy_run(made, tmp_path)
    path = run_dir / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "generator": "upsampling"}, indent=2))
    before = snapshot(run_dir)
    with pytest.raises(UserError, match=r"config.json says generator 'upsampling', but the run's checkpoints were trained "
                                        r"with generator 'transposed', which a resume cannot change"):
        train(resume=run_dir, epochs=3)
    assert snapshot(run_dir) == before


# ---- 2 and 6: a second training process, and a stop that loses no finished epoch -----------------------


def test_a_second_resume_is_refused_and_sigterm_stops_at_the_epoch_end_with_a_checkpoint(made, tmp_path):
    """A run trains in another process; `train --resume` of it meanwhile stops with one sentence; `kill -TERM`
    then ends the run at the end of the running epoch with a checkpoint of it, from which it resumes."""
    runs_dir = tmp_path / "runs"
    command = [sys.executable, "-m", "gan_helpers", "train", "--data", str(made["data"]), "--runs-dir", str(runs_dir),
               "--epochs", "500", "--batch-size", "2", "--max-images", "16", "--save-every", "1000", "--sample-every", "1000",
               "--quality-samples", "0", "--no-progress", "--no-augment", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not [f for f in runs_dir.glob("0*/metrics.jsonl") if f.read_text()]:
            time.sleep(0.2)  # until epoch 1 is finished: the stop comes in the middle of a later one
        run_dir = next(runs_dir.glob("0*-*"))
        assert not run_folders.checkpoint_files(run_dir), "no scheduled checkpoint before the stop"
        second = subprocess.run([sys.executable, "-m", "gan_helpers", "train", "--resume", str(run_dir), "--epochs", "600"],
                                capture_output=True, text=True, cwd=tmp_path, timeout=240)
        assert second.returncode == 2 and f"is in use by process {process.pid}" in one_sentence(second.stderr)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=240)
    assert process.returncode == 130, (out, err)
    epochs = [m["epoch"] for m in run_folders.read_metrics(run_dir)]
    last = epochs[-1]
    assert epochs == list(range(1, last + 1)) and 1 <= last < 500, "each epoch once, in order"
    assert max(run_folders.checkpoint_files(run_dir)) == last, "the checkpoint is the last finished epoch"
    assert f"stopped after epoch {last}, saved as a checkpoint" in err and "--resume" in err and "Traceback" not in err
    train(resume=run_dir, epochs=last + 1)
    assert [m["epoch"] for m in run_folders.read_metrics(run_dir)] == list(range(1, last + 2))
