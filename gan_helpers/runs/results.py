"""Shipped results: a training run reduced to what a reader needs, small enough for git (results/README.md).

    results/<name>/<generator>/
      config.json  metrics.jsonl  quality.jsonl  fixed_noise.pt  reals.png  evolution.gif  provenance.json
      samples/epoch-000000.png …       fixed-noise grids: every sample epoch, or an even subset (first, best, last kept)
      generator/epoch-000950.pt …      the generator's weights in float16, best and last epoch

:func:`export_run` writes such a folder from a run folder; full training
checkpoints stay behind. The folder appears complete or not at all (it is
assembled under a hidden name and renamed), and an existing non-empty
folder is never overwritten. Notebooks and the report read a result with
:func:`shipped_generator`, :func:`result_checkpoints` and :func:`matches`;
:func:`check_result` lists what is inconsistent in one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from gan_helpers.runs import run_folders, checkpoints
from gan_helpers.runs.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import QUALITY_FILE
from gan_helpers.models import build_generator
from gan_helpers.paths import PROJECT_ROOT, from_root, shown
from gan_helpers.runs.provenance import (
    PROVENANCE_FILE, data_key, epoch_problems, file_manifest, provenance_problems, read_provenance,
)

FP16_CHECK_VECTORS = 8  # fixed latents on which the float16 weights' images are compared with float32's
WEIGHTS_DIR = "generator"
REQUIRED_FILES = ("config.json", "metrics.jsonl", QUALITY_FILE, "fixed_noise.pt", "reals.png", "evolution.gif")

# ---- reading a result --------------------------------------------------------------------------


def sizes(result_dir: str | Path) -> dict[str, int]:
    """Bytes of every file in a result folder, by path relative to it."""
    result_dir = Path(result_dir)
    return {p.relative_to(result_dir).as_posix(): p.stat().st_size for p in sorted(result_dir.rglob("*")) if p.is_file()}


def result_checkpoints(result_dir: str | Path) -> dict[int, Path]:
    """The shipped generator weights by epoch, in epoch order (``generator/epoch-NNNNNN.pt``)."""
    return run_folders._epoch_files(Path(result_dir) / WEIGHTS_DIR, "pt")


def load_weights(path: str | Path, kind: str) -> nn.Module:
    """A float32 generator of `kind` in eval mode holding the float16 weights in `path`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        G = build_generator(kind)
        G.load_state_dict(state)  # copies into G's float32 parameters
    except Exception:
        raise UserError(f"{path} does not hold weights of the {kind} generator; export the run again.") from None
    return G.float().eval()


def shipped_generator(result_dir: str | Path, epoch: int | None = None, *,
                      device: str | torch.device = "cpu") -> tuple[nn.Module, int]:
    """The result's generator (float32, eval mode) and its epoch; `epoch` None means the best epoch."""
    require_intact(result_dir)  # weights, config and provenance exactly as exported, no links
    weights = result_checkpoints(result_dir)
    if epoch is None:
        epoch = read_provenance(result_dir).get("epochs", {}).get("best")
    if epoch not in weights:
        raise UserError(f"{result_dir} ships the generator of epoch(s) {sorted(weights) or 'none'}, not {epoch}; pick one of those.")
    G = load_weights(weights[epoch], run_folders.read_config(result_dir)["generator"])
    return G.to(device), epoch


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


def _jsonl_epochs(path: Path, problems: list[str]) -> list[dict]:
    records = []
    if not path.is_file():
        return records
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and type(record.get("epoch")) is int:
            records.append(record)
        else:
            problems.append(f"{path.name} line {number} is not a JSON object with an integer epoch.")
    return records


def _weights_problem(path: Path, kind: str) -> str | None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return f"{WEIGHTS_DIR}/{path.name} cannot be read with torch.load(weights_only=True)."
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        return f"{WEIGHTS_DIR}/{path.name} is not a state dict of tensors."
    wide = sorted(k for k, v in state.items() if v.is_floating_point() and v.dtype != torch.float16)
    if wide:
        return f"{WEIGHTS_DIR}/{path.name} holds {wide[0]} as {state[wide[0]].dtype}, not float16."
    try:
        load_weights(path, kind)
    except UserError:
        return f"{WEIGHTS_DIR}/{path.name} does not load into the {kind} generator."
    return None


def links_inside(result_dir: str | Path) -> list[Path]:
    """Symbolic links in a result folder (the folder itself included), which a result never holds and nothing follows."""
    result_dir = Path(result_dir)
    found = [result_dir] if result_dir.is_symlink() else []
    for folder, names, files in os.walk(result_dir, followlinks=False):
        found += [Path(folder) / name for name in sorted(names + files) if (Path(folder) / name).is_symlink()]
    return found


def first_difference(result_dir: str | Path) -> str | None:
    """One sentence on the first way `result_dir` is not what its provenance.json recorded at export, or None.

    A link anywhere in it, a file missing, added, or with another size or SHA-256 than provenance.json's
    list of files; the files are read as they are, never through a link.
    """
    result_dir = Path(result_dir)
    if links := links_inside(result_dir):
        return (f"{shown(links[0])} is a symbolic link, and a shipped result holds none (links are never followed); "
                f"replace it by the file itself or restore the result from git")
    provenance = read_provenance(result_dir)
    recorded = provenance.get("files")
    if not isinstance(recorded, dict):
        return f"{shown(result_dir / PROVENANCE_FILE)} lists no files to check the result against; export the run again"
    present = file_manifest(result_dir)
    for name in sorted(recorded.keys() | present.keys()):
        if recorded.get(name) != present.get(name):
            what = ("is missing" if name not in present else "is not listed in its provenance.json" if name not in recorded
                    else "differs from the file its provenance.json recorded at export")
            return (f"{shown(result_dir / name)} {what}, so the result is not as exported; restore it "
                    f"(`git checkout -- {shown(result_dir)}`) or export the run again")
    return None


def require_intact(result_dir: str | Path) -> Path:
    """`result_dir`, after checking that it is exactly as exported (:func:`first_difference`); a UserError otherwise.

    Every use of a shipped result (the lab's runs, the report, loading its weights) calls this first, so a
    result that was edited, damaged or given links is refused instead of read.
    """
    problem = first_difference(result_dir)
    if problem is not None:
        raise UserError(f"{problem}.")
    return Path(result_dir)


def check_result(result_dir: str | Path) -> list[str]:
    """Consistency problems of a result folder, one sentence each; an empty list when it is sound."""
    result_dir = Path(result_dir)
    if links := links_inside(result_dir):
        return [f"{shown(link)} is a symbolic link, and a shipped result holds none." for link in links]
    try:
        provenance = read_provenance(result_dir)
        kind = TrainConfig.from_dict(run_folders.read_config(result_dir), complete=True).generator
    except UserError as error:
        return [str(error)]
    problems = [f"{result_dir} lacks {name}." for name in REQUIRED_FILES if not (result_dir / name).is_file()]
    metrics = _jsonl_epochs(result_dir / "metrics.jsonl", problems)
    quality = _jsonl_epochs(result_dir / QUALITY_FILE, problems)
    weights = result_checkpoints(result_dir)
    problems += [reason for path in weights.values() if (reason := _weights_problem(path, kind))]
    problems += epoch_problems(provenance, metrics, quality, list(run_folders.samples(result_dir)), list(weights))
    try:
        checkpoints.load_fixed_noise(result_dir)
    except UserError as error:
        problems.append(str(error))
    return problems + provenance_problems(result_dir, provenance, metrics)


# ---- command line (python -m gan_helpers export) -----------------------------------------------

