"""``python -m gan_helpers notebooks``: run the lab's notebooks with a parameter set (papermill), or prepare them for the smoke tests.

A parameter set is ``notebooks/params/<profile>.yaml`` (see
:mod:`gan_helpers.runs.parameter_sets`); every key is checked before anything runs
(:func:`load_profile`).
Each notebook receives its own knobs plus, where its ``parameters`` cell has
them, ``profile`` (so 03–06 all build the same experiment), ``data`` (only
when ``--data`` is given) and ``progress = False`` (no progress bars in
executed copies).

    python -m gan_helpers notebooks run --profile quick [--data DIR] [--out DIR]
    python -m gan_helpers notebooks inject --profile smoke --out build/smoke-notebooks
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


from gan_helpers.errors import UserError
from gan_helpers.formatting import duration
from gan_helpers.paths import PROJECT_ROOT, ensure_folder
from gan_helpers.paths import shown as _show, DEFAULT_DATA, from_root
from gan_helpers.runs.experiment import experiment_config, resolve_profile
from gan_helpers.runs.parameter_sets import NOTEBOOKS, TRAIN, data_argument, did_you_mean, profile_names, read_profile
from gan_helpers.datasets.manifest import is_complete
from commands.data import build_default_dataset

KERNEL = "python3"  # the kernel tools/setup.sh installs into the virtualenv
KERNELSPEC = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}
# Figures in executed copies (the report's source) come as PNG, for screens and the HTML rendering, and as
# PDF, which the LaTeX rendering takes: line plots stay vector graphics, and images (drawn with
# interpolation="nearest") are resampled without smoothing to FIGURE_DPI, so since the template never
# enlarges a figure every raster prints at FIGURE_DPI or more (the report's floor is 200 ppi).
FIGURE_DPI = 240
FIGURE_ARGUMENTS = [
    "--InlineBackend.figure_formats=png", "--InlineBackend.figure_formats=pdf",
    f"--InlineBackend.print_figure_kwargs={{'bbox_inches': 'tight', 'dpi': {FIGURE_DPI}}}",
]
# The kernel papermill starts listens on the loopback interface only (jupyter_client's default ip, 127.0.0.1);
# ipykernel 7 warns at every start that such a kernel runs over TCP without encryption, six times a report.
KERNEL_ARGUMENTS = [*FIGURE_ARGUMENTS, "--IPKernelApp.log_level=ERROR"]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
# Parameters the runner sets itself in every notebook that has them: which
# profile, the data override (--data / DATA=), and False for the two switches
# that only make sense with a person at the notebook: progress bars and widgets.
# (A batch run never builds the slider explorer: nbclient can block forever on
# a cell that displays widgets, jupyter/nbclient#312.)
RUNNER_PARAMETERS = ("profile", "data", "progress", "interactive")


def notebook_path(stem: str) -> Path:
    return NOTEBOOK_DIR / f"{stem}.ipynb"


def parameters_cell(nb, name: str = "notebook"):
    """The notebook's one code cell tagged ``parameters``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise UserError(f"{name} must have exactly one code cell tagged 'parameters', not {len(cells)}; tag the cell of plain literals.")
    return cells[0]


def notebook_parameters(path: str | Path) -> dict[str, object]:
    """The names the ``parameters`` cell assigns, with their default values (plain literals)."""
    import nbformat  # here, not at import: jsonschema's validators take seconds to load, and --help needs none

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{_show(path)} does not exist; a parameter set names a notebook that is not there.")
    cell = parameters_cell(nbformat.read(path, as_version=4), _show(path))
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as error:
        raise UserError(f"the parameters cell of {_show(path)} is not valid Python ({error.msg}, line {error.lineno}).") from None
    found: dict[str, object] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(node.value) if node.value is not None else None
                except ValueError:
                    found[target.id] = None  # not a plain literal: the name still counts
    return found


def load_profile(name: str, notebooks=None, gpu: bool | None = None) -> dict[str, dict]:
    """The parameter set `name`, every key checked: {"train": {...}, stem: {parameter: value}}.

    Notebook sections outside `notebooks` (default: all) are checked only for
    naming a notebook; a missing section means the notebook's own defaults.
    `gpu` as in :func:`~gan_helpers.runs.parameter_sets.read_profile`.
    """
    profile = read_profile(name, gpu)
    experiment_config(name)  # the train block, validated
    wanted = list(notebooks) if notebooks is not None else NOTEBOOKS
    both = (read_profile(name, gpu=True), read_profile(name, gpu=False))  # a typo among the knobs of either machine is found on both
    for stem in NOTEBOOKS:
        keys = {key for knobs in both for key in knobs[stem]}
        if stem not in wanted or not keys:
            continue
        known = notebook_parameters(notebook_path(stem))
        for key in sorted(keys):
            if key in RUNNER_PARAMETERS:
                raise UserError(f"notebooks/params/{name}.yaml: {stem} sets {key!r}, which the runner sets itself; remove the key.")
            if key not in known:
                raise UserError(
                    f"notebooks/params/{name}.yaml: {stem} has no parameter {key!r}{did_you_mean(key, known)} "
                    f"(its parameters are {', '.join(k for k in known if k not in RUNNER_PARAMETERS) or 'none'}); "
                    f"training settings belong in the '{TRAIN}' block."
                )
    return profile


def notebook_values(profile: str, stem: str, data: str | Path | None = None, progress: bool = False) -> dict[str, object]:
    """What papermill injects into `stem`: its knobs plus the runner's own parameters where the notebook has them."""
    values = dict(load_profile(profile, [stem])[stem])
    known = notebook_parameters(notebook_path(stem))
    runner = {"profile": profile, "progress": progress, "interactive": False}
    if data is not None:
        runner["data"] = data_argument(data)
    values.update({k: v for k, v in runner.items() if k in known})
    return values


def inject(profile: str, out_dir: str | Path, data: str | Path | None = None, notebooks: Sequence[str] | None = None) -> list[Path]:
    """Write parameterised copies of the notebooks into `out_dir` without running them (for nbval)."""
    import nbformat
    import papermill

    stems = _check_stems(notebooks)
    values = _all_values(profile, stems, data)
    out_dir = _out_dir(out_dir)
    written = []
    for stem in stems:
        output = out_dir / f"{stem}.ipynb"
        with _quiet_papermill():
            papermill.execute_notebook(
                notebook_path(stem), output, parameters=values[stem], prepare_only=True, kernel_name=KERNEL, progress_bar=False
            )
        nb = nbformat.read(output, as_version=4)
        nb.metadata["kernelspec"] = KERNELSPEC  # nbval starts the kernel the copy names
        nbformat.write(nb, output)
        written.append(output)
    return written


def execute(
    profile: str,
    out_dir: str | Path,
    data: str | Path | None = None,
    notebooks: Sequence[str] | None = None,
    log_output: bool = False,
) -> list[Path]:
    """Execute the notebooks in order into `out_dir`; stop at the first failure with one sentence.

    Every key of the parameter set is checked before the first notebook
    starts. The kernel is the virtualenv's ``python3`` and runs in the
    notebooks folder; figures are shown inline even when MPLBACKEND says
    otherwise (the CI sets Agg), so the executed copies carry them, as PNG
    and PDF (:data:`FIGURE_ARGUMENTS`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    stems = _check_stems(notebooks)
    values = _all_values(profile, stems, data)
    out_dir = _out_dir(out_dir)
    executed = []
    total = time.perf_counter()
    for number, stem in enumerate(stems, 1):
        output = out_dir / f"{stem}.ipynb"
        print(f"[{number}/{len(stems)}] {stem} ({profile}) …", flush=True)
        started = time.perf_counter()
        try:
            with _inline_figures(), _quiet_papermill():
                papermill.execute_notebook(
                    notebook_path(stem), output, parameters=values[stem], kernel_name=KERNEL,
                    cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=log_output,
                    # (passed on to nbclient) widgets in the executed copy display when it is opened in JupyterLab
                    store_widget_state=True,
                    extra_arguments=KERNEL_ARGUMENTS,  # (to nbclient, for the kernel's command line)
                )
        except PapermillExecutionError as error:
            message = _ANSI.sub("", str(error.evalue)).strip().splitlines()
            detail = f"{error.ename}: {message[0]}" if message else error.ename
            raise UserError(
                f"notebook {stem} failed in cell [{error.exec_count}] with {detail} "
                f"(the executed copy with the full traceback is {_show(output)})"
            ) from None
        print(f"[{number}/{len(stems)}] {stem} done in {duration(time.perf_counter() - started)}", flush=True)
        executed.append(output)
    if len(stems) > 1:
        print(f"All {len(stems)} notebooks ran in {duration(time.perf_counter() - total)}; executed copies in {_show(out_dir)}", flush=True)
    return executed


def ensure_default_data(profile: str, data: str | Path | None = None) -> None:
    """Build the default data set first when the experiment uses it and it is incomplete (not for --data)."""
    if data is not None:
        return

    if from_root(experiment_config(profile).data).resolve() == DEFAULT_DATA.resolve():
        if not is_complete(DEFAULT_DATA):
            print(f"Building the default data set in {_show(DEFAULT_DATA)} (first time only) …", flush=True)
            build_default_dataset(DEFAULT_DATA)


# ---- helpers ----------------------------------------------------------------------------------

def _check_stems(notebooks: Sequence[str] | None) -> list[str]:
    stems = list(notebooks) if notebooks else list(NOTEBOOKS)
    for stem in stems:
        if stem not in NOTEBOOKS:
            raise UserError(f"{stem!r} is not one of the lab's notebooks{did_you_mean(stem, NOTEBOOKS)}; they are {', '.join(NOTEBOOKS)}.")
    return [s for s in NOTEBOOKS if s in stems]  # always in lab order


def _all_values(profile: str, stems: list[str], data) -> dict[str, dict]:
    load_profile(profile, stems)  # every section checked before anything runs
    return {stem: notebook_values(profile, stem, data) for stem in stems}


def _out_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return ensure_folder(out_dir if out_dir.is_absolute() else Path.cwd() / out_dir, "output folder")


@contextlib.contextmanager
def _inline_figures() -> Iterator[None]:
    """Let the kernel (which inherits this environment) use the inline backend."""
    saved = os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    """Silence papermill's own parameter warnings: its parser trips over quotes in comments
    ("Unable to parse line", then a false "unknown parameter"), and load_profile checks keys properly."""
    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---- command line (python -m gan_helpers notebooks run|inject) ----------------------------------

HELP = "Execute the lab notebooks with a parameter set (run), or write parameterised copies for nbval (inject)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("run", "execute the notebooks in order with papermill"),
                         ("inject", "write parameterised copies without executing them (for nbval)")):
        command = actions.add_parser(action, help=text, description=text)
        command.add_argument("--profile", default="", help="parameter set: " + ", ".join(profile_names()) + " (default: $PROFILE, else full on a GPU or when the shipped result fits it, quick otherwise)")
        command.add_argument("--data", default=None, help="image folder replacing the experiment's data set")
        command.add_argument("--out", default=None, help="output folder (default: build/PROFILE for run, build/PROFILE-notebooks for inject)")
        command.add_argument("--notebook", action="append", dest="notebooks", metavar="STEM", help="only this notebook (repeatable), e.g. 03_dcgan")
        if action == "run":
            command.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the terminal")


def run(args: argparse.Namespace) -> int:
    profile = resolve_profile(args.profile, args.data)
    if args.action == "inject":
        out = args.out or PROJECT_ROOT / "build" / f"{profile}-notebooks"
        for path in inject(profile, out, data=args.data, notebooks=args.notebooks):
            print(f"wrote {_show(path)}")
    else:
        out = _out_dir(args.out or PROJECT_ROOT / "build" / profile)  # a bad path fails before the data set is built
        ensure_default_data(profile, args.data)
        execute(profile, out, data=args.data, notebooks=args.notebooks, log_output=args.log_output)
    return 0
