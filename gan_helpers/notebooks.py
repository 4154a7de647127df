"""Run the lab's notebooks with a parameter set (papermill), or prepare them for the smoke tests.

A parameter set is ``notebooks/params/<profile>.yaml``: one section per
notebook stem mapping parameter names to values. Every key is checked
against the names the notebook's ``parameters`` cell assigns before anything
runs, so a typo is an error rather than a silently ignored setting.

    python -m gan_helpers.notebooks run --profile quick [--data DIR] [--out DIR]
    python -m gan_helpers.notebooks inject --profile smoke --out build/smoke-notebooks
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import nbformat
import yaml

from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT
from gan_helpers.paths import shown as _show

NOTEBOOKS = ["01_warmup", "02_data", "03_dcgan", "04_upsampling", "05_latent", "06_reflections"]
PROFILES = ["smoke", "quick", "full"]
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
KERNEL = "python3"  # the kernel tools/setup.sh installs into the virtualenv
KERNELSPEC = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def default_profile() -> str:
    """'full' where a CUDA GPU is available, 'quick' otherwise."""
    import torch

    return "full" if torch.cuda.is_available() else "quick"


def resolve_profile(name: str | None = None) -> str:
    """The profile to use: `name`, else the PROFILE environment variable, else :func:`default_profile`.

    An empty string counts as not given (the Makefile passes ``--profile ""``).
    """
    name = (name or "").strip() or os.environ.get("PROFILE", "").strip() or default_profile()
    if not (PARAMS_DIR / f"{name}.yaml").is_file():
        known = ", ".join(sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))) or "none"
        raise UserError(f"there is no parameter set {name!r} (notebooks/params/{name}.yaml); use one of: {known}.")
    return name


def notebook_path(stem: str) -> Path:
    return NOTEBOOK_DIR / f"{stem}.ipynb"


def parameters_cell(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The notebook's one code cell tagged ``parameters``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise UserError(f"{name} must have exactly one code cell tagged 'parameters', not {len(cells)}; tag the cell of plain literals.")
    return cells[0]


def notebook_parameters(path: str | Path) -> dict[str, object]:
    """The names the ``parameters`` cell assigns, with their default values (plain literals)."""
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


def load_profile(name: str, notebooks: Sequence[str] | None = None) -> dict[str, dict]:
    """The parameter set `name` as {notebook stem: {parameter: value}}, every key checked.

    Sections for notebooks outside `notebooks` (default: all of them) are
    checked only for being a known notebook; a missing section means the
    notebook's own defaults.
    """
    path = PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"there is no parameter set {name!r} ({_show(path)}); use one of: {', '.join(PROFILES)}.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{_show(path)} is not valid YAML ({str(error).splitlines()[0]}).") from None
    if not isinstance(raw, dict):
        raise UserError(f"{_show(path)} must map notebook names (01_warmup, …) to their parameters.")
    unknown = [k for k in raw if k not in NOTEBOOKS]
    if unknown:
        raise UserError(f"{_show(path)} has a section {unknown[0]!r} that names no notebook{_did_you_mean(unknown[0], NOTEBOOKS)}; sections are: {', '.join(NOTEBOOKS)}.")
    wanted = list(notebooks) if notebooks is not None else NOTEBOOKS
    profile: dict[str, dict] = {}
    for stem in NOTEBOOKS:
        section = raw.get(stem) or {}
        if not isinstance(section, dict):
            raise UserError(f"section {stem} of {_show(path)} must map parameter names to values.")
        if stem in wanted:
            known = notebook_parameters(notebook_path(stem))
            for key in section:
                if key not in known:
                    raise UserError(
                        f"{_show(path)}: {stem} has no parameter {key!r}{_did_you_mean(key, known)} "
                        f"(its parameters are {', '.join(known) or 'none'}); fix or remove the key."
                    )
        profile[stem] = dict(section)
    return profile


def notebook_values(profile: str, stem: str, data: str | Path | None = None) -> dict[str, object]:
    """What papermill injects into `stem`: the profile's section, with `data` overriding where the notebook has one."""
    values = dict(load_profile(profile, [stem])[stem])
    if data is not None and "data" in notebook_parameters(notebook_path(stem)):
        values["data"] = data_argument(data)
    return values


def data_argument(data: str | Path) -> str:
    """A data folder given on the command line, as a notebook parameter: relative to the project root when inside it."""
    path = Path(data).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not path.is_dir():
        raise UserError(f"the data folder {data} does not exist; pass a folder of images with --data (or DATA=…).")
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def inject(profile: str, out_dir: str | Path, data: str | Path | None = None, notebooks: Sequence[str] | None = None) -> list[Path]:
    """Write parameterised copies of the notebooks into `out_dir` without running them (for nbval)."""
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
    otherwise (the CI sets Agg), so the executed copies carry them.
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
                )
        except PapermillExecutionError as error:
            message = _ANSI.sub("", str(error.evalue)).strip().splitlines()
            detail = f"{error.ename}: {message[0]}" if message else error.ename
            raise UserError(
                f"notebook {stem} failed in cell [{error.exec_count}] with {detail} "
                f"(the executed copy with the full traceback is {_show(output)})"
            ) from None
        print(f"[{number}/{len(stems)}] {stem} done in {_duration(time.perf_counter() - started)}", flush=True)
        executed.append(output)
    if len(stems) > 1:
        print(f"All {len(stems)} notebooks ran in {_duration(time.perf_counter() - total)}; executed copies in {_show(out_dir)}", flush=True)
    return executed


def ensure_default_data(profile: str, data: str | Path | None = None) -> None:
    """Build the default data set first when the parameter set uses it and it is incomplete (not for --data)."""
    if data is not None:
        return
    from gan_helpers.paths import DEFAULT_DATA, from_root

    used = set()
    for stem, values in load_profile(profile).items():
        default = notebook_parameters(notebook_path(stem)).get("data") if notebook_path(stem).is_file() else None
        if isinstance(values.get("data", default), str):
            used.add(from_root(values.get("data", default)).resolve())
    if DEFAULT_DATA.resolve() in used:
        from gan_helpers.stellarium import build_default_dataset, is_complete

        if not is_complete(DEFAULT_DATA):
            print(f"Building the default data set in {_show(DEFAULT_DATA)} (first time only) …", flush=True)
            build_default_dataset(DEFAULT_DATA)


# ---- helpers ----------------------------------------------------------------------------------

def _check_stems(notebooks: Sequence[str] | None) -> list[str]:
    stems = list(notebooks) if notebooks else list(NOTEBOOKS)
    for stem in stems:
        if stem not in NOTEBOOKS:
            raise UserError(f"{stem!r} is not one of the lab's notebooks{_did_you_mean(stem, NOTEBOOKS)}; they are {', '.join(NOTEBOOKS)}.")
    return [s for s in NOTEBOOKS if s in stems]  # always in lab order


def _all_values(profile: str, stems: list[str], data) -> dict[str, dict]:
    load_profile(profile, stems)  # every section checked before anything runs
    return {stem: notebook_values(profile, stem, data) for stem in stems}


def _out_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir = out_dir if out_dir.is_absolute() else Path.cwd() / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


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


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ---- command line -----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_helpers.notebooks", description="Execute or parameterise the lab notebooks.")
    sub = parser.add_subparsers(dest="action", required=True)
    for action, text in (("run", "execute the notebooks in order with papermill"),
                         ("inject", "write parameterised copies without executing them (for nbval)")):
        command = sub.add_parser(action, help=text, description=text)
        command.add_argument("--profile", default="", help="parameter set: smoke, quick or full (default: $PROFILE, else full on a GPU, quick otherwise)")
        command.add_argument("--data", default=None, help="image folder overriding every notebook's `data` parameter")
        command.add_argument("--out", default=None, help="output folder (default: build/PROFILE for run, build/PROFILE-notebooks for inject)")
        command.add_argument("--notebook", action="append", dest="notebooks", metavar="STEM", help="only this notebook (repeatable), e.g. 03_dcgan")
        if action == "run":
            command.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the terminal")
    return parser


def main(argv: list[str] | None = None) -> int:
    from gan_helpers.cli import guarded

    return guarded(_run, build_parser().parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    profile = resolve_profile(args.profile)
    if args.action == "inject":
        out = args.out or PROJECT_ROOT / "build" / f"{profile}-notebooks"
        for path in inject(profile, out, data=args.data, notebooks=args.notebooks):
            print(f"wrote {_show(path)}")
    else:
        out = args.out or PROJECT_ROOT / "build" / profile
        ensure_default_data(profile, args.data)
        execute(profile, out, data=args.data, notebooks=args.notebooks, log_output=args.log_output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
