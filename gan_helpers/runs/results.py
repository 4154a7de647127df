"""Shipped results: run folders, pruned to what a reader needs and small enough for git (results/README.md).

    results/<name>/<generator>/          e.g. results/reference/transposed
      config.json  metrics.jsonl  quality.jsonl  fixed_noise.pt  reals.png  provenance.json
      samples/epoch-NNNNNN.png …  samples/ema/epoch-NNNNNN.png …   fixed-noise grids of G and G_ema
      checkpoints/epoch-NNNNNN.pt …     {epoch, config, G[, G_ema][, D]} in float16: the best and the newest epoch

A shipped result is read by the same functions as any run folder
(:mod:`gan_helpers.runs.run_folders`, :func:`gan_helpers.runs.checkpoints.load_generator`).
What differs is where it lies: the lab looks for one in ``results/`` beside
the runs it trains, and never writes into it. ``provenance.json``, written
at export (:mod:`report.provenance`), says how it was made.

Two environment variables steer whether a result stands in for training, so
``make report``, the notebook runner and JupyterLab (which pass their
environment to the kernels) agree:

    LAB_SOURCE=auto      (the default) the shipped result for the full profile's settings when it fits, else train
    LAB_SOURCE=shipped   the shipped result, or an error saying why it cannot be used
    LAB_SOURCE=train     train (or reuse the runs in runs/) as if results/ did not exist
    LAB_RESULTS=DIR      where results live (default: the project's results/; tests point it elsewhere)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT, from_root, shown
from gan_helpers.runs import run_folders
from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.parameter_sets import profile_experiment
from gan_helpers.storage.locks import LOCK_FILE

SOURCE_VARIABLE = "LAB_SOURCE"
RESULTS_VARIABLE = "LAB_RESULTS"
SOURCES = ("auto", "shipped", "train")
REFERENCE = "reference"  # results/<REFERENCE>/<generator> is the result the lab uses
SPEC_PROFILE = "full"  # the profile whose settings are the spec's run
PROVENANCE_FILE = "provenance.json"  # written at export (report.provenance); its list of files keeps a result intact


def results_root() -> Path:
    """Where shipped results live: ``$LAB_RESULTS`` if set, else the project's ``results/``."""
    given = os.environ.get(RESULTS_VARIABLE, "").strip()
    return from_root(given) if given else PROJECT_ROOT / "results"


def resolve_source(source: str | None = None) -> str:
    """`source` if given, else ``$LAB_SOURCE``, else 'auto'; a UserError for anything but auto, shipped, train."""
    chosen = (source or "").strip() or os.environ.get(SOURCE_VARIABLE, "").strip() or "auto"
    if chosen not in SOURCES:
        raise UserError(f"{SOURCE_VARIABLE}={chosen!r} is not a source of runs; use one of {', '.join(SOURCES)}.")
    return chosen


def has_spec_settings(config: TrainConfig) -> bool:
    """Whether `config` trains with the full profile's settings and length (its data and generator aside).

    The length counts: `quick` trains the same experiment as `full` for a few epochs instead of
    2000, and a report of a few epochs is trained here, not read from a 2000-epoch result.
    """
    def settings(c: TrainConfig) -> dict:
        return {**{k: v for k, v in c.identity().items() if k not in ("data", "generator")}, "epochs": c.epochs}
    return settings(config) == settings(profile_experiment(SPEC_PROFILE))


def shipped_result(config: TrainConfig, source: str | None = None, *, say: Callable[[str], None] | None = print) -> Path | None:
    """The shipped result to read instead of training `config`'s run, or None to train (module docstring).

    With source 'auto', a result that does not fit is reported through `say`
    in one line; with 'shipped', a missing or unfitting result is a UserError.
    """
    source = resolve_source(source)
    if source == "train" or (source == "auto" and not has_spec_settings(config)):
        return None
    folder = results_root() / REFERENCE / config.generator
    if not folder.is_dir():
        if source == "shipped":
            raise UserError(f"{SOURCE_VARIABLE}=shipped, but there is no shipped result {shown(folder)}; export one "
                            f"(`python -m gan_helpers export RUN_DIR {shown(folder)}`) or set {SOURCE_VARIABLE}=train.")
        return None
    reason = matches(folder, config)
    if reason is None:
        return require_intact(folder)  # used only exactly as exported (provenance.json's files), never through a link
    if source == "shipped":
        raise UserError(f"{SOURCE_VARIABLE}=shipped, but {reason.rstrip('.')}; use those settings or set {SOURCE_VARIABLE}=train.")
    if say is not None:
        say(f"Not using the shipped result: {reason.rstrip('.')}; training here instead.")
    return None


def inside_results(path: str | Path) -> Path | None:
    """The results folder (``results/`` or ``$LAB_RESULTS``) that `path` lies in, else None: nothing writes there."""
    path, root = Path(path).resolve(), results_root().resolve()
    return root if path == root or root in path.parents else None


def inside_shipped(path: str | Path) -> Path | None:
    """The shipped result (a folder an export wrote: it holds provenance.json) or results folder (``results/``,
    ``$LAB_RESULTS``) that `path` lies in, else None: no writer of the lab writes into either."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if (folder / PROVENANCE_FILE).is_file():
            return folder
    return inside_results(path)


def work_dir(run_dir: str | Path) -> Path:
    """Where files computed from a run go: the run folder itself, or for a shipped result
    ``runs/shipped/<name>/<generator>`` beside the results folder, since nothing is written into results/."""
    run_dir = Path(run_dir)
    root = inside_results(run_dir)
    if root is None:
        return run_dir
    return root.parent / "runs" / "shipped" / run_dir.resolve().relative_to(root)


def matches(result_dir: str | Path, config: TrainConfig) -> str | None:
    """None when the result was trained with `config`'s identity (TrainConfig.identity); else one sentence naming the differences.

    Data folders are compared relative to the project, so a result exported
    on another machine matches the same folder here.
    """
    saved = run_folders.read_config(result_dir)
    ours = config.identity()
    theirs = {key: saved.get(key, "(not recorded)") for key in ours}
    root = read_provenance(result_dir).get("project_root", PROJECT_ROOT)
    theirs["data"] = data_key(str(theirs["data"]), root)
    ours["data"] = data_key(str(from_root(ours["data"])), PROJECT_ROOT)
    differing = [key for key in ours if theirs[key] != ours[key]]
    if not differing:
        return None

    def listing(values: dict) -> str:
        return ", ".join(f"{key} {values[key]!r}" for key in differing)
    return f"{shown(result_dir)} was trained with {listing(theirs)}, not {listing(ours)}."


def links_inside(result_dir: str | Path) -> list[Path]:
    """Symbolic links in a result folder (the folder itself included), which a result never holds and nothing follows."""
    result_dir = Path(result_dir)
    found = [result_dir] if result_dir.is_symlink() else []
    for folder, names, files in os.walk(result_dir, followlinks=False):
        found += [Path(folder) / name for name in sorted(names + files) if (Path(folder) / name).is_symlink()]
    return found


def require_intact(result_dir: str | Path) -> Path:
    """`result_dir`, checked to be exactly as exported; else a UserError on the first difference.

    The lab calls this when it picks a shipped result, so a result that was edited, damaged or given links is
    refused instead of read: a link anywhere in it, a file missing, added, or with another size or SHA-256 than
    provenance.json's list of files (the files are read as they are, never through a link).
    """
    result_dir = Path(result_dir)
    if links := links_inside(result_dir):
        raise UserError(f"{shown(links[0])} is a symbolic link, and a shipped result holds none (links are never followed); "
                        f"replace it by the file itself or restore the result from git.")
    recorded = read_provenance(result_dir).get("files")
    if not isinstance(recorded, dict):
        raise UserError(f"{shown(result_dir / 'provenance.json')} lists no files to check the result against; export the run again.")
    present = file_manifest(result_dir)
    for name in sorted(recorded.keys() | present.keys()):
        if recorded.get(name) != present.get(name):
            what = ("is missing" if name not in present else "is not listed in its provenance.json" if name not in recorded
                    else "differs from the file its provenance.json recorded at export")
            raise UserError(f"{shown(result_dir / name)} {what}, so the result is not as exported; restore it "
                            f"(`git checkout -- {shown(result_dir)}`) or export the run again.")
    return result_dir


def read_provenance(result_dir: str | Path) -> dict:
    """The result folder's provenance.json as a dict; a UserError if missing or not a JSON object."""
    path = Path(result_dir) / PROVENANCE_FILE
    if not os.path.lexists(path):
        raise UserError(f"{result_dir} has no {PROVENANCE_FILE}, so it is not a shipped result; export a run with "
                        f"`python -m gan_helpers export RUN_DIR {result_dir}`.")
    provenance = run_folders.read_json(path, "export the run again into an empty folder")
    if not isinstance(provenance, dict):
        raise UserError(f"{path} holds a JSON {type(provenance).__name__}, not an object; export the run again.")
    return provenance


def data_key(path: str, project_root: str | Path) -> str:
    """A data folder as compared between machines: relative to the project when inside it."""
    path = Path(path)
    if path.is_absolute():
        try:
            return path.relative_to(project_root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def file_manifest(folder: str | Path) -> dict[str, dict]:
    """Size and SHA-256 of every file in a result folder except provenance.json (and a lock file), by relative path."""
    folder = Path(folder)
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (PROVENANCE_FILE, LOCK_FILE)):
        found[path.relative_to(folder).as_posix()] = {
            "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return found
