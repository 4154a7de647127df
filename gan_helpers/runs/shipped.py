"""A shipped result in place of training: when the lab reads ``results/reference/<generator>`` instead of a run.

Two environment variables steer it, so ``make report``, the notebook runner
and JupyterLab (which all pass their environment to the kernels) agree:

    LAB_SOURCE=auto      (the default) the shipped result for the full profile's settings when it fits, else train
    LAB_SOURCE=shipped   the shipped result, or an error saying why it cannot be used
    LAB_SOURCE=train     train (or reuse the runs in runs/) as if results/ did not exist
    LAB_RESULTS=DIR      where results live (default: the project's results/; tests point it elsewhere)

``auto`` considers the result only for the full profile's training settings
(any other profile, e.g. quick or smoke, trains as always) and uses it only
when :func:`gan_helpers.runs.results.matches` finds it trained with the very same
settings and data; otherwise one line says what differs and the lab trains.
A shipped result is read like a run folder (gan_helpers.runs.run_folders), and anything
computed from it is written under ``runs/``, never into ``results/``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from gan_helpers.runs import run_folders
from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT, from_root, shown
from gan_helpers.runs.run_folders import is_shipped

SOURCE_VARIABLE = "LAB_SOURCE"
RESULTS_VARIABLE = "LAB_RESULTS"
SOURCES = ("auto", "shipped", "train")
REFERENCE = "reference"  # results/<REFERENCE>/<generator> is the result the lab uses
SPEC_PROFILE = "full"  # the profile whose settings are the spec's run
OBSERVATIONS_FILE = "observations.md"  # results/<name>/observations.md: the written observations (report.observations)


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
    from gan_helpers.runs.parameter_sets import TRAIN, read_profile

    def settings(c: TrainConfig) -> dict:
        return {**{k: v for k, v in c.identity().items() if k not in ("data", "generator")}, "epochs": c.epochs}
    return settings(config) == settings(TrainConfig.from_dict(read_profile(SPEC_PROFILE)[TRAIN]))


def shipped_result(config: TrainConfig, source: str | None = None, *, say: Callable[[str], None] | None = print) -> Path | None:
    """The shipped result to use instead of training `config`'s run, or None to train (module docstring).

    With source 'auto', a result that does not fit is reported through `say`
    in one line; with 'shipped', a missing or unfitting result is a UserError.
    """
    from gan_helpers.runs.results import matches, require_intact

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


def shipped_results(config: TrainConfig, source: str | None = None, generators=GENERATOR_KINDS,
                    say: Callable[[str], None] | None = print) -> dict[str, Path | None]:
    """:func:`shipped_result` for each generator kind: ``{"transposed": Path or None, …}``."""
    return {kind: shipped_result(config.replace(generator=kind), source, say=say) for kind in generators}


def describe_source(used: dict[str, Path | None], config: TrainConfig) -> str:
    """Where the training figures come from, for the title page: the shipped result and its machine, or this one.

    Everything in it is read from the results' provenance.json or from this
    machine, e.g. "shipped result results/reference, trained on NVIDIA H100
    80GB HBM3 (cuda 12.4, driver 550.54.15, torch 2.5.1): transposed epoch 2000
    of 2000 (5.2 h of training), upsampling epoch 2000 of 2000 (6.1 h of training) (provenance.json)";
    the "of" is the experiment's length (the spec's 2000 for the full profile). Where the
    commands name the machines they ran on (a run resumed on several), those are named.
    """
    from gan_helpers.utils import duration
    from gan_helpers.runs.provenance import read_provenance, trained_on
    from gan_helpers.utils import pick_device

    parts = []
    shipped = {kind: folder for kind, folder in used.items() if folder is not None}
    for parent in sorted({folder.parent for folder in shipped.values()}):
        machines, epochs = {}, []
        for kind, folder in shipped.items():
            if folder.parent != parent:
                continue
            provenance = read_provenance(folder)
            env, training = provenance.get("environment", {}), provenance.get("training", {})
            keys = ("cuda", "driver", "torch") if env.get("device") == "cuda" else ("torch",)  # a CPU build of torch names a CUDA too
            versions = ", ".join(f"{key} {env[key]}" for key in keys if env.get(key))
            machines.setdefault(f"{trained_on(provenance)}{f' ({versions})' if versions else ''}", []).append(kind)
            epochs.append(f"{kind} epoch {training.get('epochs', '?')} of {config.epochs} "
                          f"({duration(float(training.get('seconds', float('nan'))))} of training)")
        where = "; ".join(f"{' and '.join(kinds) + ' ' if len(machines) > 1 else ''}trained on {machine}"
                          for machine, kinds in machines.items())
        parts.append(f"shipped result {shown(parent)}, {where}: {', '.join(epochs)} (provenance.json)")
    trained = [kind for kind, folder in used.items() if folder is None]
    if trained:
        device = pick_device(config.device)
        name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        parts.append(f"{' and '.join(trained) + ' ' if shipped else ''}trained here on {device.type}{name}")
    return "; ".join(parts)


def observations_file(used: dict[str, Path | None]) -> Path | None:
    """The written observations of the shipped result every generator comes from, if it has them, else None."""
    parents = {folder.parent if folder is not None else None for folder in used.values()}
    if len(parents) != 1 or None in parents:
        return None  # runs trained here, or from several results: no one set of observations describes them
    path = parents.pop() / OBSERVATIONS_FILE
    if path.is_symlink():
        raise UserError(f"{shown(path)} is a symbolic link, and a shipped result's observations are never read through one; "
                        f"put the text itself there.")
    return path if path.is_file() else None


@contextlib.contextmanager
def source_for_kernels(source: str) -> Iterator[None]:
    """``$LAB_SOURCE`` set to `source` meanwhile, so notebook kernels started now decide as the caller did."""
    saved = os.environ.get(SOURCE_VARIABLE)
    os.environ[SOURCE_VARIABLE] = source
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(SOURCE_VARIABLE, None)
        else:
            os.environ[SOURCE_VARIABLE] = saved


def work_dir(result_dir: str | Path) -> Path:
    """Where files computed from a shipped result go: ``runs/shipped/<name>/<generator>``.

    ``runs/`` is the folder beside the ``results/`` folder that holds the
    result (the project's own, for results/reference/transposed), so nothing
    is ever written into ``results/``, which git tracks.
    """
    result_dir = Path(result_dir).resolve()
    return result_dir.parents[2] / "runs" / "shipped" / result_dir.parent.name / result_dir.name


def load_shipped(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """A shipped result's generator from its weights file (or, given the folder, its last epoch), float32, eval mode.

    Returns it with ``{"epoch", "config", "G"}``, the shape of what
    :func:`gan_helpers.runs.shipped.load_generator` returns for a run's checkpoint.
    """
    from gan_helpers.runs.results import shipped_generator

    path = Path(path)
    folder = path if path.is_dir() else path.parent.parent
    match = run_folders._EPOCH_FILE.match(path.name)
    epoch = int(match.group(1)) if match and not path.is_dir() else max(run_folders.checkpoint_files(folder), default=None)
    G, epoch = shipped_generator(folder, epoch, device=device)
    return G, {"epoch": epoch, "config": run_folders.read_config(folder), "G": G.state_dict()}


def load_generator(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The generator of a checkpoint (or of a run's newest one) in eval mode, and what was loaded.

    A run's checkpoint: :func:`gan_helpers.runs.checkpoints.load_checkpoint_generator`, with the full training state. A shipped
    result's weights file (or folder: its last epoch): float32, with ``{"epoch", "config", "G"}`` (gan_helpers.runs.shipped).
    """
    path = Path(checkpoint)
    if is_shipped(path if path.is_dir() else path.parent.parent):
        return load_shipped(path, device)
    from gan_helpers.runs.checkpoints import load_checkpoint_generator as load_checkpointed

    return load_checkpointed(path, device)
