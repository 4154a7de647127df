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

from gan_helpers import locks, runs, shipped
from gan_helpers.cli import main
from gan_helpers.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.experiment import train
from gan_helpers.paths import PROJECT_ROOT
from gan_helpers.report import observations, render
from gan_helpers.report.literal import code_span, markdown_text
from gan_helpers.results import check_result, export_run, require_intact, sizes

HOSTILE = r"\input{/etc/hostname} \write18{touch PWNED} \openin\x=/etc/hostname \catcode`\@=11 <script>alert(1)</script> $$x$$"
needs_latex = pytest.mark.skipif(not all(shutil.which(p) for p in ("xelatex", "pandoc", "pdftotext")),
                                 reason="xelatex, pandoc or pdftotext is not installed")


def tiny(data: Path, runs_dir: Path, **changes) -> TrainConfig:
    values = dict(data=str(data), runs_dir=str(runs_dir), epochs=1, batch_size=2, sample_every=1, save_every=1,
                  max_images=4, fixed_noise=4, quality_samples=2, progress=False, augment=False)
    return TrainConfig(**{**values, **changes})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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
    code = f"import sys, time\nfrom gan_helpers import locks\nwith locks.{how}(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n"
    process = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    assert process.stdout.readline().strip() == "held"
    return process


# ---- 1. outside text is data ---------------------------------------------------------------------


def test_outside_text_becomes_markdown_that_names_no_tex_html_or_math():
    escaped = markdown_text(HOSTILE)
    assert not set(escaped) & set("\\<>$`{}~!@"), escaped  # every character that opens raw TeX, HTML, math or code
    assert markdown_text("*seen* at epoch 300") == "*seen* at epoch 300", "the writer's emphasis stays"
    assert code_span("a`b") == "``a`b``" and code_span("`x") == "`` `x ``" and code_span("a|b", in_table=True) == r"`a\|b`"


def test_observations_reach_the_cell_escaped(tmp_path):
    path = tmp_path / "observations.md"
    path.write_text(f"## Point 10\n{HOSTILE}\n")
    nb = new_notebook(cells=[new_markdown_cell("**Observations (Point 10).** Write what you see.")])
    observations.place_observations(nb, path)
    assert "Written for this result" in nb.cells[0].source
    assert "\\" not in nb.cells[0].source and "<script>" not in nb.cells[0].source and "$$" not in nb.cells[0].source


def _hostile_report() -> nbformat.NotebookNode:
    """A small merged notebook whose observations, summary table and data-set names are hostile."""
    from gan_helpers.history import summary_table

    nb = new_notebook(cells=[new_markdown_cell("# Notebook\n\n## Point 10\n\nText."),
                             new_markdown_cell("**Observations (Point 10).** Prompt.")])
    nb.metadata["lab_report"] = {"title": r"Title \input{/etc/hostname}", "author": "A", "course": "C", "date": "D",
                                 "language": "english", "profile": "smoke", "runs_source": r"result \input{/etc/hostname}"}
    summary = {k: 0 for k in ("epochs", "planned_epochs", "seconds", "seconds_per_epoch", "images", "batch_size", "lr_d",
                              "lr_g", "final_loss_D", "final_loss_G", "best_loss_D", "best_loss_D_epoch", "best_loss_G",
                              "best_loss_G_epoch", "end_gap", "end_ratio", "end_D_x", "end_D_G_z", "checkpoints")}
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
