"""``python -m gan_helpers export``: a run as a shipped result (results/NAME/GENERATOR)."""

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

from gan_helpers.runs.results import PROVENANCE_FILE, file_manifest
from gan_helpers.runs.quality_records import QUALITY_FILE, best_epoch, favoured_model, read_quality
from gan_helpers.runs.config import TrainConfig
from gan_helpers.storage.json_lines import write_json_lines
from gan_helpers.errors import UserError
from gan_helpers.storage.atomic import atomic_copy, atomic_save, atomic_write_text, fsync_folder, reporting_full_disk
from gan_helpers.paths import ensure_folder, shown
from gan_helpers.models import generate
from gan_helpers.runs import run_folders, checkpoints
from gan_helpers.storage import locks
from gan_helpers.plots import MILESTONE_EPOCHS, milestone_epochs, pick_epochs
from gan_helpers.runs.run_plots import grid_tiles, save_grid
from report.provenance import build_provenance, check_result, command_entry, read_provenance_input


MAX_GRIDS = 60
# A shipped grid holds the first images of the run's grid, in one row: the report shows at most 8 of them (the
# results figure; the history strip shows 4), and a grid of 8 is about a fifth of a run's grid of 36 or 64, which
# keeps an export within the repository's budget (results/README.md).
SHIPPED_TILES = 8


def choose_grids(epochs: list[int], best: int, max_grids: int = MAX_GRIDS) -> list[int]:
    """Every sample epoch, or at most `max_grids`: the first, `best`, the last, the milestones the
    report shows (:func:`gan_helpers.plots.milestone_epochs`), and the rest spread evenly."""
    epochs = sorted(epochs)
    if len(epochs) <= max_grids:
        return epochs
    keep = [epochs[0], *([best] if best in epochs else []), epochs[-1]]
    keep += [e for e in milestone_epochs(epochs, len(MILESTONE_EPOCHS) + 1) if e not in keep]
    keep = set(keep[:max_grids])
    rest = [e for e in epochs if e not in keep]
    return sorted(keep | set(pick_epochs(rest, max_grids - len(keep)) if max_grids > len(keep) else []))


def ship_grid(source: Path, dest: Path, label: str) -> None:
    """Write the first :data:`SHIPPED_TILES` images of the sample grid `source` as one labelled row to `dest`
    (the same images, labelled as training labels them: gan_helpers.runs.run_loop)."""
    save_grid(grid_tiles(source, SHIPPED_TILES), dest, nrow=SHIPPED_TILES, label=label)


def half_weights(state: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """A state dict with floating tensors in float16 on the CPU; a UserError if a value overflows float16."""
    half = {k: v.detach().cpu().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous() for k, v in state.items()}
    for name, value in half.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise UserError(f"{what} has values in {name} beyond float16's range, so it cannot be shipped in float16; export another epoch.")
    return half


FP16_CHECK_VECTORS = 8  # fixed latents on which the float16 weights' images are compared with float32's


def pruned_parts(best: int, last: int, model: str) -> dict[int, tuple[str, ...]]:
    """What each shipped checkpoint holds: the best epoch the weights the report samples (`model`), the last
    epoch G and D, from which training can be warm-restarted (`train --warm-start`, commands/train.py)."""
    parts = {best: (model,), last: ("G", "D")}
    if best == last:
        parts[last] = tuple(dict.fromkeys(("G", "D", model)))
    return parts


def ship_weights(source: Path, path: Path, parts: tuple[str, ...], z: torch.Tensor) -> dict:
    """Write `parts` of checkpoint `source` (and its epoch and config) in float16 to `path`; returns, per
    generator, the largest pixel difference its float16 weights make on the latents `z`."""
    state = checkpoints.load_checkpoint(source)
    missing = [part for part in parts if part not in state]
    if missing:
        raise UserError(f"{source} lacks {', '.join(missing)}, which the result ships; export another run or epoch.")
    pruned = {"epoch": state["epoch"], "config": state["config"],
              **{part: half_weights(state[part], f"{part} of epoch {state['epoch']}") for part in parts}}
    atomic_save(pruned, path)
    record = {"epoch": state["epoch"], "holds": list(parts)}
    for part in parts:
        if part != "D":
            exact, _ = checkpoints.load_generator(source, average=part == "G_ema")
            shipped, _ = checkpoints.load_generator(path, average=part == "G_ema")
            record[f"max_pixel_difference_fp16_{part}"] = float(f"{(generate(exact, z) - generate(shipped, z)).abs().max():.3g}")
    return record


def export_run(run_dir: str | Path, dest: str | Path, *, name: str | None = None, commands_file: str | Path | None = None,
               commands: Sequence[tuple[float, str]] = (), commit: str | None = None, max_grids: int = MAX_GRIDS) -> Path:
    """Write run `run_dir` as a shipped result into `dest` (e.g. ``results/reference/transposed``) and return `dest`.

    The best epoch is :func:`gan_helpers.runs.quality_records.best_epoch` (the last
    checkpoint when the run has no quality records); everything after the
    last checkpoint is left out, so the result describes the weights it ships.
    `commands` (seconds, command line) add to those of `commands_file`
    (report.provenance); `commit` overrides the project's git commit.
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


def _remove_stale_staging(dest: Path) -> None:
    """Delete the hidden folders (``.NAME.XXXXXXXX.partial``) in which exports into `dest` killed midway assembled the
    result; call it only while holding `dest`'s lock."""
    for folder in sorted(p for p in dest.parent.glob(f".{dest.name}.*.partial") if p.is_dir() and not p.is_symlink()):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"Removed {shown(folder)}, left by an export that did not finish.")


def _export_held(run_dir: Path, dest: Path, *, name, commands_file, commands, commit, max_grids, started) -> Path:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UserError(f"{shown(dest)} is a file or a link, not a folder; export into a new folder.")
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} already exists and is not empty, and a result is never overwritten; export into a new folder or delete that one first.")
    config = TrainConfig.from_dict(run_folders.read_config(run_dir), complete=True).to_dict()
    saved = run_folders.checkpoint_files(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no checkpoints, so there are no weights to ship; train it for at least save_every epochs first.")
    last = max(saved)
    kept = {e: p for e, p in run_folders.generator_files(run_dir).items() if e <= last}
    model = favoured_model(run_dir)
    try:
        best, numbers = best_epoch(run_dir, model=model)
        rule = f"lowest SWD of {model}, near copies breaking ties (gan_helpers.runs.quality_records.best_epoch)"
    except UserError:
        best, numbers, rule = last, {}, "the last checkpoint: the run has no quality records"
    best = best if best <= last else last
    metrics = [m for m in run_folders.read_metrics(run_dir, strict=True) if m["epoch"] <= last]
    quality = [r for r in read_quality(run_dir, model=None) if r["epoch"] <= last]
    grids = {e: p for e, p in run_folders.samples(run_dir).items() if e <= last}
    shipped_grids = choose_grids(list(grids), best, max_grids)
    averaged = {e: p for e, p in run_folders.samples(run_dir, average=True).items() if e in shipped_grids}
    given = read_provenance_input(commands_file) if commands_file else {"commands": []}
    listed = given["commands"] + [command_entry(seconds, command) for seconds, command in commands]
    fixed_z = checkpoints.load_fixed_noise(run_dir)  # checked before it is shipped

    staging = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.partial"
    with reporting_full_disk(dest):
        staging.mkdir()
        try:
            for folder in ("samples", "checkpoints", *(["samples/ema"] if averaged else [])):
                (staging / folder).mkdir()
            for file in ("config.json", "fixed_noise.pt", "reals.png"):
                if (run_dir / file).is_file():
                    atomic_copy(run_dir / file, staging / file)
            write_json_lines(staging / "metrics.jsonl", metrics)
            write_json_lines(staging / QUALITY_FILE, quality)
            for epoch in shipped_grids:
                ship_grid(grids[epoch], staging / "samples" / grids[epoch].name, f"epoch {epoch}")
            for epoch, path in averaged.items():
                ship_grid(path, staging / "samples" / "ema" / path.name, f"epoch {epoch}, G_ema")
            weights = {}
            for epoch, parts in pruned_parts(best, last, model).items():
                path = staging / "checkpoints" / run_folders.epoch_name(epoch, "pt")
                weights[path.name] = ship_weights(kept[epoch], path, parts, fixed_z[:FP16_CHECK_VECTORS])
            provenance = {
                **build_provenance(run_dir, config, metrics, {**given, "commands": listed}, name=name or dest.resolve().parent.name, commit=commit),
                "epochs": {"first": min(grids, default=None), "best": best, "best_model": model, "last": last,
                           "best_rule": rule, "best_numbers": numbers},
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


def sizes(result_dir: str | Path) -> dict[str, int]:
    """Bytes of every file in a result folder, by path relative to it."""
    result_dir = Path(result_dir)
    return {p.relative_to(result_dir).as_posix(): p.stat().st_size for p in sorted(result_dir.rglob("*")) if p.is_file()}


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
