"""Checkpoints and the fixed noise: written atomically, checked before they are trusted.

A checkpoint (``runs/NNNNN-tag/checkpoints/epoch-NNNNNN.pt``) holds state
dicts and plain values only, so ``torch.load(weights_only=True)`` reads it:

    epoch  config  G  G_ema  D  opt_G  opt_D  rng

(``G_ema``, the average of G's weights, where the run keeps one.)

:func:`load_training_state` is what a resume uses: it checks every part
against what this lab would build from the saved settings, so a damaged or
foreign file ends in one sentence naming the problem and the newest earlier
checkpoint that can be used instead, not in a traceback from deep inside.
Checkpoints are never overwritten. ``fixed_noise.pt``, the latent vectors
sampled at every sample epoch, is checked the same way by
:func:`load_fixed_noise`.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gan_helpers.errors import UserError
from gan_helpers.models import LATENT_DIM, Discriminator, build_generator
from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.runs.quality_records import QUALITY_FILE, read_quality
from gan_helpers.paths import shown
from gan_helpers.runs.run_folders import (
    _EPOCH_FILE, _RUN_NAME, checkpoint_files, create_run_dir, epoch_name, read_config, read_metrics, samples,
)
from gan_helpers.seeding import rng_state_problem
from gan_helpers.storage.json_lines import write_json_lines
from gan_helpers.storage.atomic import DiskFull, atomic_copy, atomic_save, atomic_write_text, link_or_copy

FULL_STATE = ("epoch", "config", "G", "D", "opt_G", "opt_D", "rng")  # and G_ema where the run keeps one


def save_checkpoint(run_dir: str | Path, epoch: int, state: dict) -> Path:
    """Write ``checkpoints/epoch-NNNNNN.pt`` atomically; an existing file is never overwritten.

    On a full disk the partial file is removed, earlier checkpoints stay as
    they were, and the UserError names the last complete checkpoint.
    """
    run_dir = Path(run_dir)
    path = run_dir / "checkpoints" / epoch_name(epoch, "pt")
    try:
        atomic_save(state, path, overwrite=False)
    except FileExistsError:
        raise UserError(f"{path} already exists and checkpoints are never overwritten; resume into a new run instead.") from None
    except DiskFull:
        earlier = [p for e, p in checkpoint_files(run_dir).items() if e < epoch]
        last = f"the last complete checkpoint is {earlier[-1]} (free some space, then resume from it)" if earlier else (
            "no checkpoint of this run is complete yet (free some space, then start again)")
        raise DiskFull(path, f"the disk is full while writing {path}; {last}.") from None
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint file, or the newest one of a run folder (any readable checkpoint, unchecked)."""
    return _load_checked(Path(path), map_location, lambda state: None if isinstance(state, dict) else "it does not hold a dict")


def load_training_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The full training state in a checkpoint file, or in a run folder's newest checkpoint, checked.

    Checked: every key of :data:`FULL_STATE` is there; the epoch matches the
    file name; the settings are complete and valid (a missing setting is an
    error, never today's default); the weights and optimizer states fit the
    networks those settings build; the RNG state can be restored. The file
    must sit in a run folder's ``checkpoints/``, where a resume continues.
    """
    path = Path(path)
    if path.is_file() and not (path.parent.name == "checkpoints" and _EPOCH_FILE.match(path.name)):
        raise UserError(f"{path} is not in a run folder's checkpoints/ folder; resume from a run folder or a checkpoint inside one.")
    return _load_checked(path, map_location, training_state_problem)


def load_generator(checkpoint: str | Path, device: str | torch.device = "cpu", *, average: bool | None = False
                   ) -> tuple[nn.Module, dict]:
    """The generator saved in a checkpoint (or a run's newest one), float32 in eval mode, with the checkpoint.

    The one way the lab loads a generator's weights: from a run's full
    checkpoint, a shipped result's pruned one (weights in float16) or a
    ``best/`` file alike. ``average=True`` loads G_ema, the average of G's
    weights, instead of G; ``average=None`` loads G where the checkpoint holds
    it, else G_ema (a shipped result's best epoch holds only the generator the
    report samples). Eval mode is the mode used for sampling: batch
    norm uses its running statistics, so an image depends on its own latent vector only.
    """
    state = _load_checked(Path(checkpoint), device, _generator_problem)
    part = "G_ema" if average or (average is None and "G" not in state) else "G"
    if part not in state:
        other = "G" if average else "G_ema"
        raise UserError(f"{checkpoint} holds {other} but not {part}; load {other} instead (average={not average}).")
    G = build_generator(state["config"]["generator"]).to(device)
    G.load_state_dict(state[part])  # float16 weights are copied into float32 parameters
    G.eval()
    return G, state


def load_fixed_noise(run_dir: str | Path) -> torch.Tensor:
    """The run's fixed latent vectors, checked to be a finite float tensor of shape (its ``fixed_noise`` setting,
    the generators' latent size). Loaded with ``weights_only=True``: a file holding anything but tensors is refused,
    never executed."""
    path = Path(run_dir) / "fixed_noise.pt"
    count, latent_dim = read_config(run_dir).get("fixed_noise"), LATENT_DIM
    fix = "restore the run's own file from a copy, or start a new run"
    if not path.is_file():
        raise UserError(f"{path} is missing, so the run's samples cannot continue; {fix}.")
    try:
        z = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, foreign, or a pickle of arbitrary objects
        raise UserError(f"{path} is not a file of plain tensors (it is damaged or holds other objects); {fix}.") from None
    if not (isinstance(z, torch.Tensor) and z.is_floating_point() and tuple(z.shape) == (count, latent_dim)):
        found = f"{z.dtype} tensor of shape {tuple(z.shape)}" if isinstance(z, torch.Tensor) else type(z).__name__
        raise UserError(f"{path} holds a {found}, not {count} latent vectors of length {latent_dim}; {fix}.")
    if not torch.isfinite(z).all():
        raise UserError(f"{path} holds values that are not finite numbers; {fix}.")
    return z.float()


def _load_checked(path: Path, map_location, problem: Callable[[object], str | None]) -> dict:
    """Load `path` (a run folder: its newest checkpoint) and raise a UserError if `problem` finds one."""
    if path.is_dir():
        saved = checkpoint_files(path)
        if not saved:
            raise UserError(f"{path} has no checkpoint, so it cannot be resumed (training stopped before its first "
                            f"checkpoint was complete); start a new run with the same settings (and delete this folder).")
        path = saved[max(saved)]
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; list a run's checkpoints/ folder to pick one.")
    state, reason = _try_load(path, map_location, problem)
    if reason is None:
        return state
    raise UserError(f"{path} cannot be used because {reason}; {_alternative(path, problem)}.")


def _try_load(path: Path, map_location, problem: Callable[[object], str | None]) -> tuple[object, str | None]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused an object: never load such a file unsafely
        return None, "it holds objects other than tensors and plain values"
    except Exception:
        return None, "it is truncated, damaged or not a checkpoint at all"
    reason = problem(state)
    if reason is None and isinstance(state, dict) and type(state.get("epoch")) is int:
        match = _EPOCH_FILE.match(path.name)
        if match and int(match.group(1)) != state["epoch"]:
            reason = f"it holds epoch {state['epoch']} under the name of epoch {int(match.group(1))}"
    return state, reason


def _alternative(path: Path, problem: Callable[[object], str | None]) -> str:
    """Name the newest earlier checkpoint of the same run that passes the same check."""
    match = _EPOCH_FILE.match(path.name)
    if path.parent.name == "checkpoints" and match:
        for epoch, other in reversed(checkpoint_files(path.parent.parent).items()):
            if epoch < int(match.group(1)) and _try_load(other, "cpu", problem)[1] is None:
                return f"the newest usable checkpoint before it is {other}: resume from that file"
    return "no earlier checkpoint of its run can be used instead, so start a new run"


def training_state_problem(state: object) -> str | None:
    """What makes `state` unusable for resuming training, as a clause; None if nothing does."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a checkpoint"
    missing = [key for key in FULL_STATE if key not in state]
    if missing:
        return f"it lacks {', '.join(missing)}, so it is not a full training checkpoint"
    if type(state["epoch"]) is not int or state["epoch"] < 0:
        return f"its epoch is {state['epoch']!r}, not a whole number"
    try:
        config = TrainConfig.from_dict(state["config"], complete=True)
    except UserError as error:
        return f"its settings are unusable ({str(error).rstrip('.')})"
    if reason := _generator_problem(state):
        return reason
    if "G_ema" in state and (reason := _weights_problem(state["G_ema"], _weight_shapes(config.generator), "averaged generator")):
        return reason
    if reason := _weights_problem(state["D"], _weight_shapes("discriminator"), "discriminator"):
        return reason
    for name, kind in (("opt_G", config.generator), ("opt_D", "discriminator")):
        if reason := _optimizer_problem(state[name], _parameter_shapes(kind)):
            return f"its {name} does not fit the network ({reason})"
    if reason := rng_state_problem(state["rng"]):
        return f"its RNG state cannot be restored ({reason})"
    return None


def _generator_problem(state: object) -> str | None:
    """Whether `state` holds generator weights (G, its average G_ema, or both) of the kind its settings name."""
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or not {"G", "G_ema"} & state.keys():
        return "it lacks the generator weights or their settings"
    kind = state["config"].get("generator")
    if kind not in GENERATOR_KINDS:
        return f"its settings name an unknown generator {kind!r}"
    for part in ("G", "G_ema"):
        if part not in state:
            continue
        reason = _weights_problem(state[part], _weight_shapes(kind), f"{kind} generator")
        others = [k for k in GENERATOR_KINDS if k != kind and not _weights_problem(state[part], _weight_shapes(k), "")]
        if reason and others:
            return f"its generator weights are those of the {others[0]} generator while its settings say {kind}"
        if reason:
            return reason
    return None


def _weights_problem(weights: object, expected: dict[str, tuple], what: str) -> str | None:
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return f"its {what} weights are not a dict of tensors"
    if weights.keys() != expected.keys():
        names = sorted(weights.keys() ^ expected.keys())
        return f"its {what} weights do not fit the network (for example {names[0]!r})"
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            return f"its {what} weights do not fit the network ({name} has shape {tuple(weights[name].shape)}, not {shape})"
    return None


def _optimizer_problem(saved: object, shapes: list[tuple]) -> str | None:
    """Whether an optimizer state dict covers exactly `shapes` (the network's parameters, in order)."""
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict) and isinstance(saved.get("param_groups"), list)):
        return "not an optimizer state"
    ids = [i for group in saved["param_groups"] if isinstance(group, dict) for i in group.get("params", [])]
    if len(ids) != len(shapes):
        return f"it covers {len(ids)} parameters, the network has {len(shapes)}"
    if ids != list(range(len(shapes))):
        return "its parameter numbering is damaged"
    position = {i: n for n, i in enumerate(ids)}
    for i, values in saved["state"].items():
        if i not in position or not isinstance(values, dict):
            return f"state for an unknown parameter {i!r}"
        for value in values.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and tuple(value.shape) != shapes[position[i]]:
                return f"a moment of shape {tuple(value.shape)} for a parameter of shape {shapes[position[i]]}"
    return None


@functools.cache
def _network(kind: str) -> nn.Module:
    """An uninitialised network on the meta device: its shapes, without memory or random draws."""
    with torch.device("meta"):
        return Discriminator() if kind == "discriminator" else build_generator(kind)


def _weight_shapes(kind: str) -> dict[str, tuple]:
    return {name: tuple(value.shape) for name, value in _network(kind).state_dict().items()}


def _parameter_shapes(kind: str) -> list[tuple]:
    return [tuple(p.shape) for p in _network(kind).parameters()]  # the order optimizers number them in


def fork_run(source_dir: str | Path, epoch: int, *, config: dict | None = None, runs_dir: Path | None = None,
             tag: str | None = None, full: bool = True) -> Path:
    """A new run folder holding `source_dir`'s history up to `epoch`, to continue training from there.

    It gets `config` (default: the settings saved in that checkpoint), the
    source's fixed noise and its history up to `epoch`: reals.png, the sample
    grids (G's and G_ema's), the metrics (epochs 1 to `epoch`, each once) and
    the quality records. A fork (`full`) also gets the checkpoints up to
    `epoch` (hard-linked where possible: they are never rewritten) and a
    FORKED_FROM file naming the checkpoint; a warm restart writes its own. The
    folder is made in `runs_dir` under `tag` (default: beside the source, under
    its tag). The source is only read. If the process dies midway, no new run
    folder appears (only a bare-number folder that may be deleted).
    """
    source_dir = Path(source_dir)
    origin = source_dir / "checkpoints" / epoch_name(epoch, "pt")
    if config is None:
        config = load_training_state(origin)["config"]  # a fork of a checkpoint that cannot be resumed is useless
    metrics = [m for m in read_metrics(source_dir, strict=True) if m["epoch"] <= epoch]
    if [m["epoch"] for m in metrics] != list(range(1, epoch + 1)):
        raise UserError(f"{shown(source_dir / 'metrics.jsonl')} does not hold epochs 1 to {epoch} once each, so the history "
                        f"cannot be continued; use an intact copy.")

    def history(run_dir: Path) -> None:
        if (source_dir / "reals.png").is_file():
            atomic_copy(source_dir / "reals.png", run_dir / "reals.png")
        for average in (False, True):
            for e, path in samples(source_dir, average=average).items():
                if e <= epoch:
                    target = run_dir / "samples" / ("ema" if average else "") / path.name
                    target.parent.mkdir(exist_ok=True)
                    atomic_copy(path, target)
        write_json_lines(run_dir / "metrics.jsonl", metrics)
        if os.path.lexists(source_dir / QUALITY_FILE):
            write_json_lines(run_dir / QUALITY_FILE, [r for r in read_quality(source_dir, model=None) if r["epoch"] <= epoch])
        if full:
            for e, path in checkpoint_files(source_dir).items():
                if e <= epoch:
                    link_or_copy(path, run_dir / "checkpoints" / path.name)
            atomic_write_text(run_dir / "FORKED_FROM", f"{origin}\n")

    match = _RUN_NAME.match(source_dir.name)
    tag = tag or (source_dir.name[match.end():] if match else source_dir.name)
    return create_run_dir(runs_dir or source_dir.parent, tag, config=config, fixed_noise=load_fixed_noise(source_dir),
                          fill=history)
