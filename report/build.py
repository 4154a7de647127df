"""The whole report job (``python -m gan_helpers report``): execute the notebooks, merge them with the front matter, render the PDF.

    build("smoke")                    # execute, merge, render report/lab_report.pdf
    build("smoke", render_only=True)  # from the executed copies in build/smoke/
    python -m gan_helpers report [--profile smoke|quick|full] [--data DIR] [--render-only]

The executed notebooks land in ``build/<profile>/``; the merged notebook and
the files of the rendering in ``build/<profile>/report/``. The notebooks
read a shipped result in ``results/reference/`` where it was trained with
the profile's settings (:mod:`gan_helpers.runs.results`).

What the merge leaves out on purpose, and figures that would print badly,
are listed as notes when the build ends, so the notebooks' authors can see them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat

from gan_helpers.errors import UserError
from gan_helpers.storage import locks
from gan_helpers.storage.atomic import atomic_write_text
from gan_helpers.paths import PROJECT_ROOT, ensure_folder
from gan_helpers.paths import shown as _show
from gan_helpers.runs.experiment import experiment_config, resolve_profile
from gan_helpers.runs.parameter_sets import NOTEBOOKS, data_argument
from report import notebooks as nbrun
from report.notebooks import RUNNER_PARAMETERS
from report.cleaning import clean_notebook
from report.front import build_facts, load_departures, training_settings
from report.layout import layout_notes
from report.merge import merge
from report.reading import REPORT_DIR, load_config, point_locations, read_executed
from report.pdfcheck import page_count
from report.render import choose_renderer, render_pdf
from report.provenance import cpu_name
from report.sources import (
    averaging_evidence, count_images, describe_source, machine_in_words, observations_file, schedule_estimate, shipped_results,
    version_in_words,
)

PDF = REPORT_DIR / "lab_report.pdf"
BUILD_ROOT = PROJECT_ROOT / "build"  # one build per checkout at a time: its lock file is build/.lock
INTRO = (
    "This report answers the eighteen points of the DCGAN lab with the **{profile}** parameter set: the warm-up "
    "(point 6), the data (points 4 and 5), the discriminator and the transposed-convolution generator and their "
    "training (points 1–3 and 7–10), the upsampling generator (points 11 and 12), what a trained generator can do "
    "(points 13–17) and reflections (point 18). Every figure, table and number was computed when the report was "
    "built; the code of the networks, the training steps and loop, inversion and interpolation is printed where "
    "its point is answered."
)


def report_info(profile: str, executed: dict[str, nbformat.NotebookNode], config: dict | None = None, *,
                data: str | None = None, runs_source: str = "", departures: list[dict] | None = None,
                runs_folders: list[str] | None = None, schedule: str = "", averaging: str = "") -> dict:
    """Title page fields and the facts stated once up front: parameter set, data, runs, settings, device, date.

    `runs_source` says where the training figures come from (e.g. "trained
    here on cpu"); it is printed on the title page when given. `runs_folders`
    names where the runs are read from (default: the experiment's runs_dir). `schedule`, the
    experiment's whole length in hours at the measured rate, fills the departures' ``{schedule}``;
    `averaging`, G_ema's SWD against G's in the shipped records, their ``{averaging}``.
    """
    import torch

    config = config or load_config()
    experiment = experiment_config(profile, data=data or "")
    images = count_images(experiment.data)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else _cpu_name()
    now = _dt.datetime.now()
    facts = [
        ("Parameter set", profile),
        ("Data set", f"{Path(experiment.data).name} ({'folder missing' if images is None else f'{images} images'}"
                     f"{f'; the runs use the first {experiment.max_images}' if experiment.max_images else ''})"),
        *([("Training figures", runs_source)] if runs_source else []),
        ("Built on", f"{device}, torch {version_in_words(torch.__version__)}"),
        ("Built", f"{now:%Y-%m-%d %H:%M}{_commit()}"),
    ]
    run_folders = ", ".join(runs_folders or [experiment.runs_dir])  # for build.txt only: the PDF names no folders
    parameters = []
    for stem, nb in executed.items():
        used = {k: v for k, v in nb.metadata.get("papermill", {}).get("parameters", {}).items() if k not in RUNNER_PARAMETERS}
        if used:
            parameters.append((f"`{stem}`", ", ".join(f"`{k} = {v!r}`" for k, v in used.items())))
    return {**config, "date": config.get("date") or f"{now:%d %B %Y}", "profile": profile, "runs_source": runs_source,
            "intro": INTRO.format(profile=profile), "facts": facts, "settings": training_settings(experiment),
            "parameters": parameters, "departures": departures or [], "run_folders": run_folders, "schedule": schedule,
            "averaging": averaging}


def build(profile: str, data: str | None = None, *, render_only: bool = False, renderer: str = "auto",
          pdf: Path = PDF, runs_source: str = "") -> Path:
    """Execute the notebooks (unless `render_only`), merge them and render `pdf`; return its path."""
    with _one_build():
        return _build(profile, data, render_only=render_only, renderer=renderer, pdf=pdf, runs_source=runs_source)


@contextlib.contextmanager
def _one_build() -> Iterator[None]:
    """Hold the checkout's build folder for the whole build: two builds at once would share its executed
    notebooks and LaTeX files (and race for the PDF), so the second stops at once, naming the first."""
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locks.hold(BUILD_ROOT, "this build"))
        except locks.FolderBusy as busy:
            raise UserError(f"the report is being built by {busy.holder} in this checkout ({_show(BUILD_ROOT)}); "
                            f"wait until it finishes (or stop it) and build again (this build changed nothing).") from None
        yield


def _build(profile: str, data: str | None, *, render_only: bool, renderer: str, pdf: Path, runs_source: str) -> Path:
    started = time.perf_counter()
    renderer = choose_renderer(renderer)  # before an hour of notebooks, not after
    out = BUILD_ROOT / profile
    merged, notes = assemble(profile, out, data, execute=not render_only, fmt=renderer, runs_source=runs_source)
    build_dir = out / "report"
    build_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(build_dir / "build.txt", merged.metadata.pop("lab_build", ""))  # facts and notebook parameters
    atomic_write_text(build_dir / "lab_report.ipynb", nbformat.writes(merged))
    atomic_write_text(build_dir / "notes.txt", "".join(f"{n}\n" for n in notes))
    print(f"Rendering {_show(pdf)} with {'xelatex' if renderer == 'latex' else 'Chromium'} …", flush=True)
    pdf = render_pdf(merged, pdf, build_dir, renderer)
    for note in notes:
        print(f"note: {note}")
    pages = page_count(pdf)
    size = f"{pages} pages, " if pages else ""
    where = f"; {len(notes)} notes in {_show(build_dir / 'notes.txt')}" if notes else ""
    print(f"Report: {_show(pdf)} ({size}{pdf.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s{where}", flush=True)
    return pdf


def assemble(profile: str, out: Path, data: str | None = None, *, execute: bool = True, fmt: str = "latex",
             runs_source: str = "") -> tuple[nbformat.NotebookNode, list[str]]:
    """Execute the notebooks into `out` (unless not `execute`) and merge them: (the merged notebook, notes).

    Which shipped results the notebooks will read is found here, before any
    notebook runs, as the notebooks find them (:func:`report.sources.shipped_results`);
    the title page's "Training figures" line (unless `runs_source` is given)
    and the observation cells of a shipped result follow from it.
    """
    config = load_config()
    departures, notes = load_departures(profile=profile)
    experiment = experiment_config(profile, data=data or "")
    used = shipped_results(experiment)  # a result that is not as exported fails now, not after the notebooks
    if execute:
        sources = {stem: nbformat.read(nbrun.notebook_path(stem), as_version=4) for stem in NOTEBOOKS if nbrun.notebook_path(stem).is_file()}
        if len(sources) == len(NOTEBOOKS):
            point_locations({s: clean_notebook(nb) for s, nb in sources.items()})  # fail now, not after the run
        nbrun.ensure_default_data(profile, data)
        nbrun.execute(profile, out, data=data)
    executed = read_executed(out)
    folders = sorted({_show(folder.parent) if folder is not None else experiment.runs_dir for folder in used.values()})
    info = report_info(profile, executed, config, data=data, runs_source=runs_source or describe_source(used, experiment),
                       departures=departures, runs_folders=folders, schedule=schedule_estimate(used, experiment),
                       averaging=averaging_evidence(used))
    merged = merge(executed, info, fmt=fmt, notes=notes, observations=observations_file(used))
    merged.metadata["lab_build"] = build_facts(info)  # for build/PROFILE/report/build.txt, not the PDF
    notes += layout_notes(merged, captions=fmt == "latex")
    return merged, notes


def _cpu_name() -> str:
    """The CPU's model name and core count, e.g. "AMD EPYC 9B14, 2 cores"."""
    return f"{machine_in_words(cpu_name())}, {os.cpu_count()} cores"


def _commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return f", commit {result.stdout.strip()}" if result.returncode == 0 and result.stdout.strip() else ""


HELP = "Execute notebooks 01-06 with a parameter set and render the lab report (report/lab_report.pdf)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="", help="parameter set: smoke, quick or full (default: $PROFILE, else full on a GPU or when the shipped result fits it, quick otherwise)")
    parser.add_argument("--data", default=None, help="image folder replacing the experiment's data set (default: the parameter set's)")
    parser.add_argument("--render-only", action="store_true", help="skip execution; render from the executed notebooks in build/PROFILE/")
    parser.add_argument("--renderer", choices=["auto", "latex", "html"], default="auto", help="latex (xelatex), html (Chromium) or auto: latex when installed")
    parser.add_argument("--pdf", default=None, help="where to write the PDF (default: report/lab_report.pdf)")
    parser.add_argument("--runs-source", default="", help="the title page's line on where the training figures come from (default: computed)")


def run(args: argparse.Namespace) -> int:
    profile = resolve_profile(args.profile, args.data)
    data = data_argument(args.data) if args.data else None
    pdf = Path(args.pdf).expanduser().resolve() if args.pdf else PDF
    if args.pdf:  # a wrong path costs no wait: one sentence before any notebook runs
        ensure_folder(pdf.parent, "PDF's folder")
    build(profile, data, render_only=args.render_only, renderer=args.renderer, pdf=pdf, runs_source=args.runs_source)
    return 0
