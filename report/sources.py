"""Where the report's training figures come from: a shipped result the notebooks find, or this machine.

The notebooks find their runs with :func:`gan_helpers.runs.experiment.find_run`,
and so does :func:`shipped_results`, before any notebook runs; the title page
says it in words (:func:`describe_source`) and a shipped result's written
observations (:func:`observations_file`) go into the report with it.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import torch

from gan_helpers.datasets import loading, manifest, prepare
from gan_helpers.errors import UserError
from gan_helpers.paths import from_root, shown
from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.runs.experiment import find_run
from gan_helpers.runs.results import inside_results, read_provenance
from gan_helpers.runs.quality_records import read_quality, record_model
from report.provenance import trained_on
from gan_helpers.formatting import duration, finite_number
from gan_helpers.speed import pick_device

OBSERVATIONS_FILE = "observations.md"  # results/<name>/observations.md: the written observations (report.observations)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


def count_images(folder: str | Path) -> int | None:
    """Images training reads from `folder`: those of the prepared set (or its cached prepared copy),
    else the image files in it; None when the folder is not there."""
    folder = from_root(folder)
    if not folder.is_dir():
        return None
    try:
        if loading.is_prepared(folder):
            return len(loading.image_paths(folder))
        cached = prepare.CACHE_ROOT / prepare.cache_key(folder.resolve())
        if (cached / manifest.MANIFEST).is_file():
            return len(loading.image_paths(cached))
    except Exception:  # an odd folder: fall back to counting files
        pass
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


_FLAGS = re.compile(r"\s*\((?=[^()]*\b(?:AVX|AMX|SSE|bf16|FMA))[^()]*\)|\s+with\s+(?:AVX|AMX|SSE)[\w\s.,-]*?(?=\s+and\s|$)",
                    re.IGNORECASE)


def machine_in_words(name: str) -> str:
    """A machine's name as a reader wants it: the model, without CPU instruction-set flags such as
    "(AVX-512 bf16, AMX)" or "with AMX", which say how the code ran, not what the result is."""
    return " ".join(_FLAGS.sub("", name).split())


def version_in_words(version: str) -> str:
    """A library version without its build tag: "2.5.1+cu124" -> "2.5.1"."""
    return str(version).split("+", 1)[0]


def shipped_results(config: TrainConfig, generators=GENERATOR_KINDS) -> dict[str, Path | None]:
    """The shipped result that :func:`find_run` finds for each generator kind, else None (trained here):
    ``{"transposed": Path or None, …}``; a result that is not as exported is refused now, in one sentence."""
    found = {kind: find_run(config.replace(generator=kind)) for kind in generators}
    return {kind: folder if folder is not None and inside_results(folder) else None for kind, folder in found.items()}


def describe_source(used: dict[str, Path | None], config: TrainConfig) -> str:
    """Where the training figures come from, for the title page, in words: the shipped result and its machine, or this one.

    Everything in it is read from the results' provenance.json or from this
    machine, e.g. "the shipped result reference, trained on NVIDIA H100
    80GB HBM3 (CUDA 12.4, torch 2.5.1): transposed 2000 of 2000 epochs (5.2 h of
    training), upsampling 2000 of 2000 epochs (6.1 h of training)"; the second
    number is the experiment's length (the spec's 2000 for the full profile). Where
    the commands name the machines they ran on (a run resumed on several), those
    are named. No paths, CPU flags or build tags: the title page says what, not where.
    """
    parts = []
    shipped = {kind: folder for kind, folder in used.items() if folder is not None}
    for parent in sorted({folder.parent for folder in shipped.values()}):
        machines, epochs = {}, []
        for kind, folder in shipped.items():
            if folder.parent != parent:
                continue
            provenance = read_provenance(folder)
            env, training = provenance.get("environment", {}), provenance.get("training", {})
            keys = ("cuda", "torch") if env.get("device") == "cuda" else ("torch",)  # a CPU build of torch names a CUDA too
            versions = ", ".join(f"{'CUDA' if key == 'cuda' else key} {version_in_words(env[key])}" for key in keys if env.get(key))
            machines.setdefault(f"{machine_in_words(trained_on(provenance))}{f' ({versions})' if versions else ''}", []).append(kind)
            epochs.append(f"{kind} {training.get('epochs', '?')} of {config.epochs} epochs "
                          f"({duration(float(training.get('seconds', float('nan'))))} of training)")
        where = "; ".join(f"{' and '.join(kinds) + ' ' if len(machines) > 1 else ''}trained on {machine}"
                          for machine, kinds in machines.items())
        parts.append(f"the shipped result {parent.name}, {where}: {', '.join(epochs)}")
    trained = [kind for kind, folder in used.items() if folder is None]
    if trained:
        device = pick_device(config.device)
        name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        parts.append(f"{' and '.join(trained) + ' ' if shipped else ''}trained here on {device.type}{name}")
    return "; ".join(parts)


def schedule_estimate(used: dict[str, Path | None], config: TrainConfig) -> str:
    """How long the experiment's whole length takes at the rate each shipped run measured, in words, e.g.
    "25 h (transposed) and 21 h (upsampling)": recorded training seconds over epochs, from provenance.json;
    empty where no run comes from a shipped result."""
    estimates = []
    for kind, folder in used.items():
        training = read_provenance(folder).get("training", {}) if folder is not None else {}
        seconds, epochs = finite_number(training.get("seconds")), finite_number(training.get("epochs"))
        if seconds is not None and epochs is not None and seconds > 0 and epochs >= 1:  # a provenance is data
            estimates.append(f"{duration(seconds / epochs * config.epochs)} ({kind})")
    return " and ".join(estimates)


AVERAGING_EPOCHS = 5  # the sample epochs over which G_ema and G are compared: the last five that score both


def averaging_evidence(used: dict[str, Path | None]) -> str:
    """G_ema's median SWD against G's over the last five sample epochs that score both, per shipped run, in words,
    e.g. "median SWD of the last 5 sample epochs, G_ema against G: 31.7 against 46.7 (transposed)"; empty where
    no shipped run scores G_ema."""
    found = []
    for kind, folder in used.items():
        records = read_quality(folder, model=None) if folder is not None else []
        scores = {}
        for record in records:
            swd = finite_number(record.get("swd"))
            if swd is not None:
                scores.setdefault(record["epoch"], {})[record_model(record)] = swd
        both = [epoch_scores for _, epoch_scores in sorted(scores.items()) if {"G", "G_ema"} <= set(epoch_scores)]
        last = both[-AVERAGING_EPOCHS:]
        if last:
            found.append(f"{statistics.median(s['G_ema'] for s in last):.1f} against "
                         f"{statistics.median(s['G'] for s in last):.1f} ({kind})")
    return f"median SWD of the last {AVERAGING_EPOCHS} sample epochs, G_ema against G: {'; '.join(found)}" if found else ""


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
