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

import argparse
import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from gan_helpers import locks, runs
from gan_helpers.atomic import atomic_copy, atomic_save, atomic_write_text, fsync_folder, reporting_full_disk
from gan_helpers.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.evaluate import QUALITY_FILE, best_epoch, read_quality
from gan_helpers.models import build_generator, generate
from gan_helpers.paths import PROJECT_ROOT, ensure_folder, from_root, shown
from gan_helpers.provenance import (
    PROVENANCE_FILE, build_provenance, command_entry, data_key, epoch_problems, file_manifest, provenance_problems,
    read_provenance, read_provenance_input,
)

MAX_GRIDS = 60
FP16_CHECK_VECTORS = 8  # fixed latents on which the float16 weights' images are compared with float32's
WEIGHTS_DIR = "generator"
REQUIRED_FILES = ("config.json", "metrics.jsonl", QUALITY_FILE, "fixed_noise.pt", "reals.png", "evolution.gif")

__all__ = ["export_run", "shipped_generator", "result_checkpoints", "read_provenance", "matches", "check_result", "sizes",
           "require_intact"]


def choose_grids(epochs: list[int], best: int, max_grids: int = MAX_GRIDS) -> list[int]:
    """Every sample epoch, or at most `max_grids` spread evenly, always with the first, `best` and the last."""
    from gan_helpers.plots import pick_epochs

    epochs = sorted(epochs)
    if len(epochs) <= max_grids:
        return epochs
    chosen = pick_epochs(epochs, max_grids)
    if best in epochs and best not in chosen:
        chosen = sorted({*pick_epochs(epochs, max_grids - 1), best})
    return chosen


def half_weights(state: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """A state dict with floating tensors in float16 on the CPU; a UserError if a value overflows float16."""
    half = {k: v.detach().cpu().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous() for k, v in state.items()}
    for name, value in half.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise UserError(f"{what} has values in {name} beyond float16's range, so it cannot be shipped in float16; export another epoch.")
    return half


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def export_run(run_dir: str | Path, dest: str | Path, *, name: str | None = None, commands_file: str | Path | None = None,
               commands: Sequence[tuple[float, str]] = (), commit: str | None = None, max_grids: int = MAX_GRIDS) -> Path:
    """Write run `run_dir` as a shipped result into `dest` (e.g. ``results/reference/transposed``) and return `dest`.

    The best epoch is :func:`gan_helpers.evaluate.best_epoch` (the last
    checkpoint when the run has no quality records); everything after the
    last checkpoint is left out, so the result describes the weights it ships.
    `commands` (seconds, command line) add to those of `commands_file`
    (gan_helpers.provenance); `commit` overrides the project's git commit.
    """
    started = time.perf_counter()
    run_dir, dest = Path(run_dir), Path(dest)
    if max_grids < 3:
        raise UserError(f"--max-grids {max_grids} is too few: a result keeps at least the first, best and last grid; use 3 or more.")
    created = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]  # deepest first
    ensure_folder(dest.parent, "destination's folder")  # a path through a file, a read-only folder: one sentence
    try:
        with locks.hold_destination(dest, "this export"):  # a second export into `dest` stops here
            _remove_stale_staging(dest)
            return _export_held(run_dir, dest, name=name, commands_file=commands_file, commands=commands, commit=commit,
                                max_grids=max_grids, started=started)
    except BaseException:
        for folder in created:  # a failed export leaves no empty folders behind either
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _staging_folders(dest: Path) -> list[Path]:
    """The hidden folders in which exports into `dest` assemble the result (``.NAME.XXXXXXXX.partial``)."""
    return sorted(p for p in dest.parent.glob(f".{dest.name}.*.partial") if p.is_dir() and not p.is_symlink())


def _remove_stale_staging(dest: Path) -> None:
    """Delete what exports into `dest` killed midway left behind; call it only while holding `dest`'s lock."""
    for folder in _staging_folders(dest):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"Removed {shown(folder)}, left by an export that did not finish.")


def _export_held(run_dir: Path, dest: Path, *, name, commands_file, commands, commit, max_grids, started) -> Path:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UserError(f"{shown(dest)} is a file or a link, not a folder; export into a new folder.")
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} already exists and is not empty, and a result is never overwritten; export into a new folder or delete that one first.")
    config = TrainConfig.from_dict(runs.read_config(run_dir), complete=True).to_dict()
    saved = runs.checkpoints(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no checkpoints, so there are no weights to ship; train it for at least save_every epochs first.")
    last = max(saved)
    try:
        best, numbers = best_epoch(run_dir)
        rule = "lowest SWD, near copies breaking ties (gan_helpers.evaluate.best_epoch)"
    except UserError:
        best, numbers, rule = last, {}, "the last checkpoint: the run has no quality records"
    metrics = [m for m in runs.read_metrics(run_dir, strict=True) if m["epoch"] <= last]
    quality = [r for r in read_quality(run_dir) if r["epoch"] <= last]
    grids = {e: p for e, p in runs.samples(run_dir).items() if e <= last}
    shipped_grids = choose_grids(list(grids), best, max_grids)
    given = read_provenance_input(commands_file) if commands_file else {"commands": []}
    listed = given["commands"] + [command_entry(seconds, command) for seconds, command in commands]
    fixed_z = runs.load_fixed_noise(run_dir)  # checked before it is shipped

    staging = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.partial"
    with reporting_full_disk(dest):
        staging.mkdir()
        try:
            for folder in ("samples", WEIGHTS_DIR):
                (staging / folder).mkdir()
            for file in ("config.json", "fixed_noise.pt", "reals.png"):
                if (run_dir / file).is_file():
                    atomic_copy(run_dir / file, staging / file)
            atomic_write_text(staging / "metrics.jsonl", _jsonl(metrics))
            atomic_write_text(staging / QUALITY_FILE, _jsonl(quality))
            for epoch in shipped_grids:
                atomic_copy(grids[epoch], staging / "samples" / grids[epoch].name)
            from gan_helpers.animation import save_evolution

            save_evolution(staging, max_frames=max_grids)
            weights = {}
            for epoch in sorted({best, last}):
                G, state = runs.load_generator(saved[epoch])
                half = half_weights(state["G"], f"the generator of epoch {epoch}")
                path = staging / WEIGHTS_DIR / runs.epoch_name(epoch, "pt")
                atomic_save(half, path)
                z = fixed_z[:FP16_CHECK_VECTORS]
                difference = (generate(G, z) - generate(load_weights(path, config["generator"]), z)).abs().max()
                weights[path.name] = {"epoch": epoch, "max_pixel_difference_fp16": float(f"{difference:.3g}")}
            provenance = {
                **build_provenance(run_dir, config, metrics, {**given, "commands": listed}, name=name or dest.resolve().parent.name, commit=commit),
                "epochs": {"first": min(grids, default=None), "best": best, "last": last, "best_rule": rule, "best_numbers": numbers},
                "grids": {"sample_epochs": list(grids), "shipped": shipped_grids, "max_grids": max_grids},
                "weights": weights,
            }
            provenance["export_seconds"] = round(time.perf_counter() - started, 3)
            provenance["files"] = file_manifest(staging)
            atomic_write_text(staging / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")
            fsync_folder(staging)
            try:
                os.rename(staging, dest)  # replaces only an empty folder
            except OSError:
                raise UserError(f"{dest} was filled by something else during the export; export into a new folder.") from None
            fsync_folder(dest.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return dest


# ---- reading a result --------------------------------------------------------------------------


def sizes(result_dir: str | Path) -> dict[str, int]:
    """Bytes of every file in a result folder, by path relative to it."""
    result_dir = Path(result_dir)
    return {p.relative_to(result_dir).as_posix(): p.stat().st_size for p in sorted(result_dir.rglob("*")) if p.is_file()}


def result_checkpoints(result_dir: str | Path) -> dict[int, Path]:
    """The shipped generator weights by epoch, in epoch order (``generator/epoch-NNNNNN.pt``)."""
    return runs._epoch_files(Path(result_dir) / WEIGHTS_DIR, "pt")


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
    G = load_weights(weights[epoch], runs.read_config(result_dir)["generator"])
    return G.to(device), epoch


def matches(result_dir: str | Path, config: TrainConfig) -> str | None:
    """None when the result was trained with `config`'s identity (TrainConfig.identity); else one sentence naming the differences.

    Data folders are compared relative to the project, so a result exported
    on another machine matches the same folder here.
    """
    saved = runs.read_config(result_dir)
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
        kind = TrainConfig.from_dict(runs.read_config(result_dir), complete=True).generator
    except UserError as error:
        return [str(error)]
    problems = [f"{result_dir} lacks {name}." for name in REQUIRED_FILES if not (result_dir / name).is_file()]
    metrics = _jsonl_epochs(result_dir / "metrics.jsonl", problems)
    quality = _jsonl_epochs(result_dir / QUALITY_FILE, problems)
    weights = result_checkpoints(result_dir)
    problems += [reason for path in weights.values() if (reason := _weights_problem(path, kind))]
    problems += epoch_problems(provenance, metrics, quality, list(runs.samples(result_dir)), list(weights))
    try:
        runs.load_fixed_noise(result_dir)
    except UserError as error:
        problems.append(str(error))
    return problems + provenance_problems(result_dir, provenance, metrics)


# ---- command line (python -m gan_helpers export) -----------------------------------------------

HELP = "Export a run as a shipped result (results/NAME/GENERATOR): metrics, grids, GIF, float16 generator weights, provenance."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by training")
    parser.add_argument("dest", metavar="DEST", help="the new result folder, e.g. results/reference/transposed (must not hold files)")
    parser.add_argument("--name", help="the result's name in provenance.json (default: DEST's parent folder, e.g. reference)")
    parser.add_argument("--commands", metavar="FILE", help="provenance file: 'SECONDS COMMAND' lines (GNU time -f '%%e %%C') or JSON")
    parser.add_argument("--command", nargs=2, action="append", default=[], metavar=("SECONDS", "COMMAND"),
                        help="a command that produced the run, with its wall time (repeatable)")
    parser.add_argument("--commit", metavar="SHA", help="the project's git commit, where the tree here has no git")
    parser.add_argument("--max-grids", type=int, default=MAX_GRIDS, metavar="N",
                        help=f"ship at most N sample grids, spread evenly (default: {MAX_GRIDS})")


def run(args: argparse.Namespace) -> int:
    dest = export_run(args.run_dir, args.dest, name=args.name, commands_file=args.commands,
                      commands=[tuple(pair) for pair in args.command], commit=args.commit, max_grids=args.max_grids)
    found = sizes(dest)
    grids = {k: v for k, v in found.items() if k.startswith("samples/")}
    for name, size in found.items():
        if name not in grids:
            print(f"{size / 1024:10.1f} KiB  {name}")
    print(f"{sum(grids.values()) / 1024:10.1f} KiB  samples/ ({len(grids)} grids)")
    print(f"{sum(found.values()) / 2**20:10.2f} MiB  in all: {shown(dest)}")
    for problem in check_result(dest):
        print(f"note: {problem}")
    return 0
