"""Shipped results: run folders, pruned to what a reader needs and small enough for git (results/README.md).

    results/<name>/<generator>/          e.g. results/reference/transposed
      config.json  metrics.jsonl  quality.jsonl  fixed_noise.pt  reals.png  provenance.json
      samples/epoch-NNNNNN.png …  samples/ema/epoch-NNNNNN.png …   fixed-noise grids of G and G_ema
      checkpoints/epoch-NNNNNN.pt …     {epoch, config, G[, G_ema][, D]} in float16: the best and the newest epoch

A shipped result is read by the same functions as any run folder, and found
the same way: :func:`gan_helpers.runs.experiment.find_run` looks for a run
with the experiment's identity in its runs folder first, then in the results
folder, a runs folder that is only read. A result is used only as exported
(:func:`require_intact`), and nothing is written into it: files computed from
it go to :func:`work_dir`. ``provenance.json``, written at export
(:mod:`report.provenance`), says how it was made.

``LAB_RESULTS=DIR`` moves the results folder (default: the project's
``results/``); a folder without results there, e.g. ``LAB_RESULTS=none``,
makes the lab train as if no result shipped. ``make report`` and JupyterLab
pass it on to the notebooks' kernels.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT, from_root, shown
from gan_helpers.runs import run_folders
from gan_helpers.storage.locks import LOCK_FILE

RESULTS_VARIABLE = "LAB_RESULTS"
REFERENCE = "reference"  # results/<REFERENCE>/<generator> is the result the lab uses
PROVENANCE_FILE = "provenance.json"  # written at export (report.provenance); its list of files keeps a result intact


def results_root() -> Path:
    """Where shipped results live: ``$LAB_RESULTS`` if set, else the project's ``results/``."""
    given = os.environ.get(RESULTS_VARIABLE, "").strip()
    return from_root(given) if given else PROJECT_ROOT / "results"


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


def file_manifest(folder: str | Path) -> dict[str, dict]:
    """Size and SHA-256 of every file in a result folder except provenance.json (and a lock file), by relative path."""
    folder = Path(folder)
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (PROVENANCE_FILE, LOCK_FILE)):
        found[path.relative_to(folder).as_posix()] = {
            "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return found
