"""Hostile inputs, round three: no writer follows a link or writes through a special file.

The cases and their sentences are listed in tests/README.md ("Hostile inputs, round three").
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gan_helpers.errors import UserError
from gan_helpers.runs import run_folders
from report.export import export_run
from gan_helpers.storage import locks
from gan_helpers.storage.atomic import append_line, atomic_copy, atomic_write_text, link_or_copy
from gan_helpers.__main__ import main
from test_folders import finishes as finishes_unblocking

LINKED = "is a symbolic link, and the lab never reads or writes a file through one"
SPECIAL = "not a regular file"


def finishes(call: Callable[[], object], seconds: float = 20.0) -> object:
    """`call()`'s result (or its exception), or a test failure if it is still waiting after `seconds`."""
    return finishes_unblocking(call, [], seconds)


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the folder under attack, which must keep every byte."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text("line one\nline two\n")
    return path


def fake_run(tmp_path: Path) -> Path:
    """Enough of a run folder for a resume to reach its lock."""
    run_dir = tmp_path / "runs" / "00001-x"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    return run_dir


def untouched(victim: Path) -> None:
    assert victim.read_text() == "line one\nline two\n", "the file behind the link was changed"


# ---- writers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("write", [
    lambda p: append_line(p, "hostile"),
    lambda p: atomic_write_text(p, "hostile"),
    lambda p: atomic_copy(p.parent / "source.txt", p),
    lambda p: run_folders.note_resume(p.parent, "hostile"),
], ids=["append_line", "atomic_write", "atomic_copy target", "resumes.txt"])
def test_a_writer_refuses_a_link_in_place_of_its_file(tmp_path, victim, write):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "source.txt").write_text("new\n")
    target = folder / "resumes.txt"
    target.symlink_to(victim)
    with pytest.raises(UserError, match=f"resumes.txt {LINKED}; delete the link"):
        write(target)
    untouched(victim)
    assert target.is_symlink(), "the link stays as evidence"
    assert sorted(p.name for p in folder.iterdir()) == ["resumes.txt", "source.txt"], "no temporary file left"


def test_a_dangling_link_is_refused_and_creates_nothing_where_it_points(tmp_path):
    target = tmp_path / "metrics.jsonl"
    target.symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(UserError, match=LINKED):
        append_line(target, "{}")
    assert not (tmp_path / "elsewhere.txt").exists()


@pytest.mark.parametrize("write", [lambda p: append_line(p, "x"), lambda p: atomic_write_text(p, "x")],
                         ids=["append_line", "atomic_write"])
def test_a_writer_refuses_a_fifo_without_waiting(tmp_path, write):
    fifo = tmp_path / "metrics.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"metrics.jsonl is a FIFO \(named pipe\), not a regular file"):
        finishes(lambda: write(fifo))


def test_a_copy_never_reads_through_a_link_or_a_fifo(tmp_path, victim):
    (tmp_path / "linked.png").symlink_to(victim)
    os.mkfifo(tmp_path / "pipe.png")
    for name in ("linked.png", "pipe.png"):
        with pytest.raises(UserError, match=f"{name} (is a symbolic link|is a FIFO)"):
            finishes(lambda: atomic_copy(tmp_path / name, tmp_path / "copy.png"))
        with pytest.raises(UserError, match=f"{name} (is a symbolic link|is a FIFO)"):
            link_or_copy(tmp_path / name, tmp_path / "copy.png")
    assert not (tmp_path / "copy.png").exists()


# ---- locks --------------------------------------------------------------------------------------


def test_a_resume_refuses_a_lock_file_that_is_a_link_and_leaves_its_target(tmp_path, victim, capsys):
    run_dir = fake_run(tmp_path)
    (run_dir / locks.LOCK_FILE).symlink_to(victim)
    assert main(["train", "--resume", str(run_dir), "--note", "seen"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f".lock {LINKED}" in err and "(resuming changed nothing)." in err, err
    untouched(victim)
    assert not (run_dir / "resumes.txt").exists()


def test_a_lock_file_that_is_a_fifo_or_a_hard_link_is_refused(tmp_path, victim):
    folder = tmp_path / "run"
    folder.mkdir()
    os.mkfifo(folder / locks.LOCK_FILE)
    with pytest.raises(UserError, match=r"\.lock is a FIFO \(named pipe\), not a regular file.*\(evaluating changed nothing\)\."):
        finishes(lambda: locks.hold(folder, "evaluating").__enter__())
    (folder / locks.LOCK_FILE).unlink()
    os.link(victim, folder / locks.LOCK_FILE)
    with pytest.raises(UserError, match=r"\.lock has another name elsewhere \(a hard link\)"):
        with locks.hold(folder, "evaluating"):
            pass
    untouched(victim)


def test_an_export_refuses_a_linked_lock_beside_its_destination_and_keeps_the_link(tmp_path, victim):
    dest = tmp_path / "results" / "r" / "transposed"
    dest.parent.mkdir(parents=True)
    lock = locks.lock_path_beside(dest)
    lock.symlink_to(victim)
    with pytest.raises(UserError, match=rf"\.transposed\.lock {LINKED}.*\(this export changed nothing\)\."):
        export_run(fake_run(tmp_path), dest, commands=[(1.0, "train")], commit="abc")
    untouched(victim)
    assert lock.is_symlink() and not dest.exists()


def test_a_lock_file_swapped_for_a_link_while_held_is_not_removed(tmp_path, victim):
    dest = tmp_path / "out"
    lock = locks.lock_path_beside(dest)
    with locks.hold_destination(dest, "writing"):
        lock.unlink()
        lock.symlink_to(victim)
    assert lock.is_symlink(), "a link put in place of the lock file while it was held is left as evidence"
    untouched(victim)
    lock.unlink()
    with locks.hold_destination(dest, "writing"):
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists(), "an ordinary lock file beside a destination still goes when released"


def test_a_resume_note_that_is_not_utf8_is_one_sentence(tmp_path, capsys):
    run_dir = fake_run(tmp_path)
    note = b"seen \xff".decode("utf-8", "surrogateescape")  # what Python makes of the byte on the command line
    assert main(["train", "--resume", str(run_dir), "--note", note]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("the resume note holds a byte that is not UTF-8 text; write the note as plain text (UTF-8).")
    assert "Traceback" not in err and not (run_dir / "resumes.txt").exists() and not (run_dir / ".lock").exists()
    json.loads((run_dir / "config.json").read_text())


# ---- shipped text never reaches TeX raw -----------------------------------------------------------

# Each payload opens raw TeX, math, a TeX character code, a link that runs code or raw HTML when it reaches
# pandoc unescaped; `\openout` would write a file into the build folder.
PAYLOADS = (r"\input{/etc/passwd}", r"\immediate\openout\w=pwned.txt", "$x$", r"\catcode`\@=11", "^^5c",
            "[x](javascript:alert(1))", "<script>alert(1)</script>")
HOSTILE_TEXT = " ".join(PAYLOADS)


def hostile(marker: str) -> str:
    """A string holding every payload, tagged so the test can see that it reached the report (escaped)."""
    return f"Z{marker}Z {HOSTILE_TEXT}"


def hostile_result(tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of a shipped result whose every string field holds the payloads; its markers, one per field."""
    from dataclasses import fields

    from gan_helpers.runs.config import TrainConfig

    folder = tmp_path / "results" / r"evil\input{x}$x$" / "transposed"
    (folder / "checkpoints").mkdir(parents=True)
    markers = []

    def text(name: str) -> str:
        markers.append(name)
        return hostile(name)
    config = TrainConfig().to_dict()
    # Every free-text setting; a setting with fixed choices (generator, precision, device) holding anything else is
    # refused by read_config in one sentence before it could be shown.
    free = [f.name for f in fields(TrainConfig) if isinstance(config[f.name], str) and not f.metadata["choices"]]
    config.update({key: hostile(key) for key in free})
    config.update(epochs=2)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "loss_D": 1.0, "loss_G": 2.0, "D_x": 0.5,
                                                              "D_G_z": 0.4, "seconds": 1.0}) + "\n" for e in (1, 2)))
    numbers = {"swd": 1.0, **{f"swd_{s}": 1.0 for s in (64, 32, 16)}, "diversity_ratio": 0.5, "distinct_nearest": 3,
               "samples": 4, "nn_ratio_median": 1.0, "near_copies": 0}
    (folder / "quality.jsonl").write_text(json.dumps({"epoch": 1, "label": text("label"), **numbers}) + "\n")
    # The summary names no machine (the title page does, from report.sources); no string of provenance.json may break it.
    provenance = {"format": 2, "name": hostile("name"), "generator": "transposed", "source_run": hostile("source"),
                  "environment": {"device": hostile("device"), "device_name": hostile("devicename"), "source": "x"},
                  "commands": [{"command": hostile("command"), "seconds": 1.0, "machine": hostile("machine")}],
                  "training": {"resumes": [hostile("resume")]}, "data": {"path": hostile("data")}}
    (folder / "provenance.json").write_text(json.dumps(provenance))
    (folder.parent / "observations.md").write_text(f"## Point 10\n\n{text('observations')}\n")
    return folder, markers


def outside_code_spans(markdown: str) -> str:
    """`markdown` without its code spans, whose text Markdown shows literally (and pandoc sets as \\texttt)."""
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", " ", markdown, flags=re.S)


def test_every_string_of_a_shipped_result_reaches_the_report_as_text(tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from gan_helpers.runs.quality_records import quality_table, read_quality
    from gan_helpers.runs.config import TrainConfig
    from gan_helpers.runs.summaries import run_summary, summary_table
    from report import merge
    from report.sources import describe_source

    result, markers = hostile_result(tmp_path)
    tables = [summary_table([run_summary(result)]), quality_table(read_quality(result))]
    outputs = [new_output("display_data", data={"text/markdown": t, "text/plain": "table"}) for t in tables]
    notebook = new_notebook(cells=[new_markdown_cell("# DCGAN\n\n" + "\n\n".join(f"## Point {p} — x" for p in range(1, 19))),
                                   new_markdown_cell("**Observations (Point 10).** Prompt."),
                                   new_code_cell("", outputs=outputs)])
    source = describe_source({"transposed": result, "upsampling": None}, TrainConfig())  # the machine, from provenance.json
    info = {"title": "T", "author": "A", "course": "C", "date": "today", "language": "english", "profile": "smoke",
            "intro": "Intro.", "runs_source": hostile("titlesource") + " " + source, "facts": [("Data set", hostile("facts"))]}
    merged = merge.merge({"03_dcgan": notebook}, info, fmt="latex", observations=result.parent / "observations.md")
    markdown = "\n".join([c.source for c in merged.cells if c.cell_type == "markdown"] +
                         [o["data"]["text/markdown"] for c in merged.cells for o in c.get("outputs", [])
                          if "text/markdown" in o.get("data", {})])
    for marker in markers:
        assert f"Z{marker}Z" in markdown, f"the field tagged {marker} did not reach the report, so the test saw nothing"
    prose = outside_code_spans(markdown)
    for payload in (r"\input", r"\openout", "$x$", r"\catcode", "^^5c", "](javascript:", "<script>"):
        assert payload not in prose, f"{payload} reached the report's Markdown raw"
    latex = merged.metadata["lab_report"]["title_facts"]
    assert "ZtitlesourceZ" in latex and "Zfacts" in latex and "ZmachineZ" in latex
    for payload in (r"\input", r"\openout", "$x$", r"\catcode", "^^5c"):
        assert payload not in latex, f"{payload} reached the title page's LaTeX raw"
    if shutil.which("pandoc"):  # what pandoc makes of the Markdown is what xelatex reads
        tex = subprocess.run(["pandoc", "-f", "markdown", "-t", "latex"], input=markdown, capture_output=True,
                             text=True, check=True).stdout
        for payload in (r"\input{", r"\openout", "$x$", r"\catcode", "^^5c", "javascript:alert(1)}", "<script>"):
            assert payload not in tex.replace(r"\texttt{", ""), f"{payload} reached the .tex raw"


@pytest.mark.skipif(not all(shutil.which(p) for p in ("xelatex", "pandoc")), reason="xelatex or pandoc is not installed")
def test_a_hostile_result_renders_and_writes_no_file_into_the_build(tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from gan_helpers.runs.summaries import run_summary, summary_table
    from report import render

    result, _ = hostile_result(tmp_path)
    table = new_output("display_data", data={"text/markdown": summary_table([run_summary(result)]), "text/plain": "t"})
    merged = new_notebook(cells=[new_markdown_cell("# DCGAN"), new_code_cell("", outputs=[table])])
    merged.metadata["lab_report"] = {"title": "T", "author": "A", "course": "C", "date": "D", "language": "english",
                                     "profile": "smoke", "runs_source": "", "title_facts": ""}
    build = tmp_path / "build"
    render.render_pdf(merged, tmp_path / "out.pdf", build, "latex")
    assert not list(build.rglob("pwned*")) and not Path("pwned.txt").exists()
    tex = "\n".join(p.read_text(errors="replace") for p in build.rglob("*.tex"))
    assert r"\input{/etc/passwd}" not in tex and r"\openout" not in tex.replace(r"\textbackslash{}", "")


# ---- one report build at a time, and a PDF that is whole or the old one -----------------------------


def test_a_second_report_build_stops_at_once_naming_the_first(tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    from gan_helpers.paths import PROJECT_ROOT
    from report import build

    monkeypatch.setattr(build, "BUILD_ROOT", tmp_path / "build")
    (tmp_path / "build").mkdir()
    code = "import sys, time\nfrom gan_helpers.storage import locks\nwith locks.hold(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n"
    first = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "build")], stdout=subprocess.PIPE, text=True,
                             cwd=PROJECT_ROOT)
    try:
        assert first.stdout.readline().strip() == "held"
        pdf = tmp_path / "report.pdf"
        pdf.write_bytes(b"%PDF-1.5 the previous report %%EOF")
        started = time.perf_counter()
        with pytest.raises(UserError, match=rf"^the report is being built by process {first.pid} in this checkout .*"
                                            r"\(this build changed nothing\)\.$"):
            build.build("smoke", render_only=True, pdf=pdf)
        assert time.perf_counter() - started < 5, "the second build waited instead of stopping at once"
        assert pdf.read_bytes() == b"%PDF-1.5 the previous report %%EOF"
        assert sorted(p.name for p in (tmp_path / "build").iterdir()) == [".lock"]
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("made, replaced", [(b"%PDF-1.5 half a report", False), (b"", False),
                                            (b"%PDF-1.5 a whole report\n%%EOF\n", True)])
def test_the_pdf_is_replaced_only_by_a_whole_one(tmp_path, monkeypatch, made, replaced):
    from nbformat.v4 import new_notebook

    from report import render

    def fake_render(merged, build_dir):
        (build_dir / "lab_report.pdf").write_bytes(made)
        return build_dir / "lab_report.pdf"
    monkeypatch.setattr(render, "_render_latex", fake_render)
    pdf = tmp_path / "report" / "lab_report.pdf"
    pdf.parent.mkdir()
    pdf.write_bytes(b"%PDF-1.5 the previous report\n%%EOF\n")
    if replaced:
        assert render.render_pdf(new_notebook(), pdf, tmp_path / "build", "latex") == pdf
    else:
        with pytest.raises(UserError, match="lab_report.pdf was left as it was|produced no PDF"):
            render.render_pdf(new_notebook(), pdf, tmp_path / "build", "latex")
    assert pdf.read_bytes() == (made if replaced else b"%PDF-1.5 the previous report\n%%EOF\n")
    assert [p.name for p in pdf.parent.iterdir()] == ["lab_report.pdf"], "no temporary file is left beside the PDF"


# ---- notebook 05's inversion-loss figure on any data ------------------------------------------------


@pytest.mark.parametrize("first, second", [
    ([1.0, 0.1, 0.01, 0.005], [0.02, 0.02, 0.02]),   # a log panel, then a flat one on the shared axis
    ([0.02, 0.02, 0.02], [1.0, 0.1, 0.01, 0.005]),   # the flat one first
    ([0.5], [0.5]),                                   # a single step each
    ([0.3, 0.3, 0.3], [0.3, 0.3]),                   # constant losses
    ([0.0, 0.0], [1.0, 0.001]),                      # a perfect imitation beside a log panel
    ([float("nan"), 0.2], [0.2, 0.2]),               # a step with no number
], ids=["log-then-flat", "flat-then-log", "single-step", "constant", "zero", "nan"])
@pytest.mark.parametrize("legend", [False, True], ids=["figure-legend", "panel-legend"])
def test_the_inversion_loss_panels_draw_on_any_curves(first, second, legend):
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from gan_helpers.latent_plots import plot_inversion_losses

    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(6, 2))  # as notebook 05 draws them
    try:
        for ax, curve in zip(axes, (first, second)):
            plot_inversion_losses({"spec": SimpleNamespace(losses=curve[:-1], final_mse=curve[-1])}, ax=ax, legend=legend)
        fig.canvas.draw()
        low, high = axes[1].get_ylim()
        assert math.isfinite(low) and math.isfinite(high) and low < high
        assert [t for t in axes[0].yaxis.get_major_ticks() if t.label1.get_text()], "the y axis is labelled"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", ["samples", "checkpoints"])
def test_a_link_in_place_of_a_run_subfolder_is_never_followed(tmp_path, name):
    from gan_helpers.runs.config import TrainConfig
    from gan_helpers.runs.experiment import train
    from image_folders import write_image_folder

    data = write_image_folder(tmp_path / "tiny", 4)
    config = TrainConfig(data=str(data), runs_dir=str(tmp_path / "runs"), epochs=1, batch_size=2, max_images=4,
                         fixed_noise=2, quality_samples=0, save_every=1, progress=False)
    run_dir = train(config)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(run_dir / name), str(elsewhere))
    (run_dir / name).symlink_to(elsewhere)
    before = {p.name: p.read_bytes() for p in [*elsewhere.iterdir(), *run_dir.iterdir()] if p.is_file()}
    with pytest.raises(UserError, match=f"{name} is a symbolic link, and the lab never reads or writes a run's files through one"):
        train(resume=run_dir, epochs=2)
    after = {p.name: p.read_bytes() for p in [*elsewhere.iterdir(), *run_dir.iterdir()] if p.is_file()}
    assert after == before, "nothing written, through the link or beside it"
