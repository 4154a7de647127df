"""Run folders on disk (STYLE.md "Runs on disk").

    runs/00007-galaxies64-transposed/
      config.json  metrics.jsonl  fixed_noise.pt  reals.png
      samples/epoch-000050.png …
      checkpoints/epoch-000050.pt …   (never overwritten; full state)

Every file that holds state is written atomically (gan_helpers.storage.atomic), so a
run folder read after a crash holds each file's old or new contents, never
half. A run folder is built under its bare number (``00007``) and renamed to
``00007-<tag>`` only when complete; a bare-number folder is an interrupted
start and may be deleted. Checkpoints and the fixed noise are read and
checked in gan_helpers.runs.checkpoints. A shipped result is a run folder,
pruned (gan_helpers.runs.results), read by the same functions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from gan_helpers.storage.atomic import append_line, atomic_save, atomic_write_text, fsync_folder, reporting_full_disk
from gan_helpers.runs.config import setting_problem, with_absent
from gan_helpers.storage.json_lines import read_json_lines, write_json_lines
from gan_helpers.storage.regular import check_folder, open_regular_file
from gan_helpers.errors import UserError
from gan_helpers.paths import ensure_folder

_RUN_NAME = re.compile(r"^(\d{5})-")
_NUMBERED = re.compile(r"^(\d{5})(?:-|$)")  # run folders and numbers being claimed
_EPOCH_FILE = re.compile(r"^epoch-(\d{6})\.(pt|png)$")


def epoch_name(epoch: int, suffix: str) -> str:
    return f"epoch-{epoch:06d}.{suffix}"


# ---- creating run folders ------------------------------------------------------------------


def create_run_dir(runs_dir: str | Path, tag: str, *, config: dict | None = None, fixed_noise: torch.Tensor | None = None,
                   fill: Callable[[Path], None] | None = None) -> Path:
    """A new run folder ``NNNNN-<tag>``, numbered past every existing one; a number is never reused.

    The folder appears under its final name only once it holds ``samples/``,
    ``checkpoints/``, when given ``config.json`` and ``fixed_noise.pt``, and
    what `fill` writes into it (a fork's history), so a run folder never
    lacks its settings. Safe when several processes start runs at the same
    moment: each gets its own number.
    """
    runs_dir = Path(runs_dir)
    with reporting_full_disk(runs_dir):
        staging = _claim_number(runs_dir)
        try:
            (staging / "samples").mkdir()
            (staging / "checkpoints").mkdir()
            if config is not None:
                write_config(staging, config)
            if fixed_noise is not None:
                atomic_save(fixed_noise.detach().cpu(), staging / "fixed_noise.pt")
            if fill is not None:
                fill(staging)
            return _publish(staging, tag)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _claim_number(runs_dir: Path) -> Path:
    """Claim the next free number by creating a folder named just that number.

    ``mkdir`` fails if the name exists, so of several processes that pick the
    same number only one gets it. A claim is renamed to its run folder when
    done, so a claimed number is also checked against finished run folders.
    """
    ensure_folder(runs_dir, "runs folder")  # a path through a file or a read-only folder: one sentence
    numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _NUMBERED.match(p.name))]
    number = max(numbers, default=-1) + 1
    while True:
        claim = runs_dir / f"{number:05d}"
        try:
            claim.mkdir()
        except FileExistsError:
            number += 1
            continue
        if any(runs_dir.glob(f"{claim.name}-*")):  # finished by a process that claimed it before us
            claim.rmdir()
            number += 1
            continue
        return claim


def _publish(staging: Path, tag: str) -> Path:
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("_.") or "run"
    fsync_folder(staging)
    run_dir = staging.with_name(f"{staging.name}-{tag}")
    os.rename(staging, run_dir)  # the claim guarantees that no other process uses this number
    fsync_folder(run_dir.parent)
    return run_dir


def remove_partials(run_dir: str | Path) -> list[Path]:
    """Delete temporary ``*.partial`` files that writers killed mid-write left in a run folder.

    Call it only when no other process writes to this run folder (before a
    resume); a full disk is often full of exactly these.
    """
    run_dir = Path(run_dir)
    removed = []
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples", run_dir / "latents"):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name.endswith(".partial") and path.is_file():
                    path.unlink()
                    removed.append(path)
    return removed


# ---- settings ------------------------------------------------------------------------------


def write_config(run_dir: str | Path, config: dict) -> None:
    """Write ``config.json`` atomically: a crash leaves the old settings or the new ones."""
    atomic_write_text(Path(run_dir) / "config.json", json.dumps(config, indent=2) + "\n")


def read_config(run_dir: str | Path) -> dict:
    """The settings saved in ``run_dir/config.json``; a UserError if missing, not a JSON object, or a setting of the
    wrong type (a link or special file in its place included: gan_helpers.storage.regular).

    Settings added to the lab since the run was saved come back with the
    value that describes how it trained (:func:`gan_helpers.runs.config.with_absent`).
    """
    path = Path(run_dir) / "config.json"
    if not os.path.lexists(path):
        raise UserError(f"{run_dir} is not a run folder (it has no config.json); pass a folder created by training.")
    fix = "repair it, or copy the settings from a checkpoint's 'config'"
    config = read_json(path, fix)
    if not isinstance(config, dict):
        raise UserError(f"{path} holds a JSON {type(config).__name__}, not an object of settings; repair it or delete the run folder.")
    for name, value in config.items():
        problem = setting_problem(name, value)
        if problem:
            raise UserError(f"{path} gives {name} as {json.dumps(value)[:40]}, which is not {problem}; {fix}.")
    return with_absent(config)


def read_json(path: Path, fix: str) -> object:
    """The JSON value in file `path`, read as a regular file only (gan_helpers.storage.regular); a UserError naming
    the line that is not UTF-8 or not JSON, ending in `fix`."""
    with open_regular_file(path, "rb") as f:  # never through a link, never waiting on a FIFO
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise UserError(f"{path} line {line} is not UTF-8 text; {fix}.") from None
    except (json.JSONDecodeError, RecursionError) as error:
        where = f"line {error.lineno}" if isinstance(error, json.JSONDecodeError) else "its nesting"
        raise UserError(f"{path} is not valid JSON ({where}); {fix}.") from None


def find_runs(runs_dir: str | Path, generator: str | None = None) -> list[Path]:
    """Run folders under `runs_dir` (optionally of one generator kind), oldest first.

    A folder whose config.json cannot be read is skipped with a warning, so
    one damaged run does not hide all the others.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = []
    for path in sorted(runs_dir.iterdir()):
        if not (_RUN_NAME.match(path.name) and (path / "config.json").is_file()):
            continue
        try:
            config = read_config(path)
        except UserError as error:
            warnings.warn(f"skipping a run folder: {error}", stacklevel=2)
            continue
        if generator is None or config.get("generator") == generator:
            found.append(path)
    return found


# ---- metrics -------------------------------------------------------------------------------


def append_metrics(run_dir: str | Path, stats: dict) -> None:
    """Append one epoch's numbers as a JSON line, durably (see atomic.append_line)."""
    append_line(Path(run_dir) / "metrics.jsonl", json.dumps(stats))


def read_metrics(run_dir: str | Path, *, strict: bool = False) -> list[dict]:
    """One dict per finished epoch, in file order (gan_helpers.storage.json_lines).

    A cut-off last line is dropped, a bad line skipped and a known number
    (:data:`METRIC_NUMBERS`) of another type left out, each with a warning;
    with ``strict=True`` (for rewriting the file, which must not lose lines
    silently) a bad line or number is a UserError.
    """
    return read_json_lines(Path(run_dir) / "metrics.jsonl", _metrics_record, not_json=_NOT_METRICS, strict=strict,
                           fix="repair or delete that line, then try again", drop_cut_off=True)


# The numbers an epoch's record may hold; each is a number (NaN and infinity included: a loss that diverged) or null.
METRIC_NUMBERS = ("loss_D", "loss_G", "D_x", "D_G_z", "seconds", "lr_d", "lr_g")


_NOT_METRICS = "is not a JSON object with an integer epoch"


def _metrics_record(record) -> tuple[dict | None, str]:
    """One parsed line of metrics.jsonl as (record or None, what is wrong with it as a clause, or "")."""
    if not (isinstance(record, dict) and type(record.get("epoch")) is int):
        return None, _NOT_METRICS
    wrong = [key for key in METRIC_NUMBERS if record.get(key) is not None
             and (isinstance(record[key], bool) or not isinstance(record[key], (int, float)))]
    if not wrong:
        return record, ""
    said = " and ".join(f"{key} {json.dumps(record[key])[:40]}" for key in wrong)
    return ({k: v for k, v in record.items() if k not in wrong},
            f"has {said}, which {'is not a number' if len(wrong) == 1 else 'are not numbers'}")


def note_resume(run_dir: str | Path, line: str) -> None:
    """Add a line to the run's history of resumes (``resumes.txt``), durably."""
    append_line(Path(run_dir) / "resumes.txt", line)


def truncate_metrics(run_dir: str | Path, last_epoch: int) -> None:
    """Keep only epochs up to `last_epoch` (a resumed run rewrites what follows), atomically."""
    kept = [m for m in read_metrics(run_dir, strict=True) if m["epoch"] <= last_epoch]
    write_json_lines(Path(run_dir) / "metrics.jsonl", kept)


# ---- saved files by epoch ------------------------------------------------------------------


RUN_SUBFOLDERS = ("samples", "samples/ema", "checkpoints", "best")  # where training writes inside a run folder


def check_subfolders(run_dir: str | Path) -> None:
    """A UserError if a link or a file stands in place of a folder training writes to (:data:`RUN_SUBFOLDERS`)."""
    for name in RUN_SUBFOLDERS:
        check_folder(Path(run_dir) / name)


def checkpoint_files(run_dir: str | Path) -> dict[int, Path]:
    """Saved checkpoints by epoch, in epoch order (a shipped result's are pruned ones: gan_helpers.runs.results)."""
    return _epoch_files(Path(run_dir) / "checkpoints", "pt")


def checkpoint_for_epoch(run_dir: str | Path, epoch: int = -1) -> tuple[int, Path]:
    """The saved checkpoint of `epoch` in a run (-1: the last one saved), as (epoch, path)."""
    saved = checkpoint_files(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no checkpoints yet; train it for at least save_every epochs first.")
    if epoch == -1:
        epoch = max(saved)
    if epoch not in saved:
        raise UserError(f"{Path(run_dir).name} has no checkpoint for epoch {epoch}; choose one of {list(saved)} (or -1 for the last).")
    return epoch, saved[epoch]


def generator_files(run_dir: str | Path) -> dict[int, Path]:
    """Every epoch whose generators were kept, in epoch order: the checkpoints, and the ``best/`` files of
    best-scoring sample epochs between them (a checkpoint of the same epoch wins)."""
    return dict(sorted({**_epoch_files(Path(run_dir) / "best", "pt"), **checkpoint_files(run_dir)}.items()))


def samples(run_dir: str | Path, *, average: bool = False) -> dict[int, Path]:
    """Saved fixed-noise sample grids by epoch, in epoch order: G's, or with `average` G_ema's (``samples/ema/``)."""
    check_folder(Path(run_dir) / "samples")
    return _epoch_files(Path(run_dir) / "samples" / ("ema" if average else ""), "png")


def _epoch_files(folder: Path, suffix: str) -> dict[int, Path]:
    found = {}
    check_folder(folder)  # a link in place of samples/ or checkpoints/ is never followed
    if folder.is_dir():
        for path in folder.iterdir():
            m = _EPOCH_FILE.match(path.name)
            if m and m.group(2) == suffix:
                found[int(m.group(1))] = path
    return dict(sorted(found.items()))
