"""Run folders on disk (STYLE.md "Runs on disk").

    runs/00007-galaxies64-transposed/
      config.json  metrics.jsonl  fixed_noise.pt  reals.png
      samples/epoch-000050.png …
      checkpoints/epoch-000050.pt …   (never overwritten; full state)

A checkpoint holds state dicts and plain values only, so
``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from torch import nn

from gan_helpers.errors import UserError

_RUN_NAME = re.compile(r"^(\d{5})-")
_EPOCH_FILE = re.compile(r"^epoch-(\d{6})\.(pt|png)$")


def epoch_name(epoch: int, suffix: str) -> str:
    return f"epoch-{epoch:06d}.{suffix}"


def create_run_dir(runs_dir: str | Path, tag: str) -> Path:
    """A new, empty run folder numbered one past the highest existing one."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _RUN_NAME.match(p.name))]
    number = max(numbers, default=-1) + 1
    while True:  # another process may take a number at the same time
        run_dir = runs_dir / f"{number:05d}-{tag}"
        try:
            run_dir.mkdir()
        except FileExistsError:
            number += 1
            continue
        (run_dir / "samples").mkdir()
        (run_dir / "checkpoints").mkdir()
        return run_dir


def write_config(run_dir: Path, config: dict) -> None:
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run folder (it has no config.json); pass a folder created by training.")
    return json.loads(path.read_text())


def append_metrics(run_dir: Path, stats: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(stats) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """One dict per finished epoch, in order."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(run_dir: Path, last_epoch: int) -> None:
    """Keep only epochs up to `last_epoch` (a resumed run rewrites what follows)."""
    kept = [m for m in read_metrics(run_dir) if m["epoch"] <= last_epoch]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in kept))


def checkpoints(run_dir: str | Path) -> dict[int, Path]:
    """Saved checkpoints by epoch, in epoch order."""
    return _epoch_files(Path(run_dir) / "checkpoints", "pt")


def samples(run_dir: str | Path) -> dict[int, Path]:
    """Saved fixed-noise sample grids by epoch, in epoch order."""
    return _epoch_files(Path(run_dir) / "samples", "png")


def _epoch_files(folder: Path, suffix: str) -> dict[int, Path]:
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            m = _EPOCH_FILE.match(path.name)
            if m and m.group(2) == suffix:
                found[int(m.group(1))] = path
    return dict(sorted(found.items()))


def save_checkpoint(run_dir: Path, epoch: int, state: dict) -> Path:
    """Write ``checkpoints/epoch-NNNNNN.pt``; an existing file is never overwritten.

    The state is written to a temporary name first and then hard-linked into
    place, which fails if the target exists and never leaves half a file
    under the final name if the machine stops mid-write.
    """
    path = run_dir / "checkpoints" / epoch_name(epoch, "pt")
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    try:
        os.link(partial, path)
    except FileExistsError:
        raise UserError(f"{path} already exists and checkpoints are never overwritten; resume into a new run instead.") from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint file, or the newest one of a run folder."""
    path = Path(path)
    if path.is_dir():
        saved = checkpoints(path)
        if not saved:
            raise UserError(f"{path} has no checkpoints yet; train it for at least save_every epochs first.")
        path = saved[max(saved)]
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; list a run's checkpoints/ folder to pick one.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # corrupt, truncated or not a checkpoint at all
        raise UserError(f"{path} could not be read as a checkpoint ({type(error).__name__}); pick another epoch.") from None


def find_runs(runs_dir: str | Path, generator: str | None = None) -> list[Path]:
    """Run folders under `runs_dir` (optionally of one generator kind), oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = []
    for path in sorted(runs_dir.iterdir()):
        if _RUN_NAME.match(path.name) and (path / "config.json").is_file():
            if generator is None or read_config(path).get("generator") == generator:
                found.append(path)
    return found


def load_generator(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The generator saved in a checkpoint (or a run's newest one), in eval mode, with the checkpoint.

    Eval mode is the mode used for sampling: batch norm uses its running
    statistics, so an image depends on its own latent vector only.
    """
    from gan_helpers.models import build_generator

    state = load_checkpoint(checkpoint, map_location=device)
    G = build_generator(state["config"]["generator"]).to(device)
    G.load_state_dict(state["G"])
    G.eval()
    return G, state
