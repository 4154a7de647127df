"""Parameter sets: one experiment and each notebook's own knobs (``notebooks/params/<profile>.yaml``).

A profile file has one ``train:`` block of :class:`~gan_helpers.runs.config.TrainConfig`
fields, the experiment that notebooks 03–06 all train and analyse, and one
block per notebook holding only that notebook's own knobs::

    train:
      runs_dir: runs/quick
      max_images: 48
      epochs: 15
    05_latent:
      steps: 30
    without_gpu:        # knobs that replace the ones above on a machine without CUDA
      03_dcgan:
        first_steps: 40

Every key is checked before anything runs: a training setting against
TrainConfig, a notebook knob against the names the notebook's ``parameters``
cell assigns. A typo is an error naming the key, never a silently ignored
setting.
"""

from __future__ import annotations

import os
from pathlib import Path

from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.runs.results import shipped_result
from gan_helpers.errors import UserError
from gan_helpers.runs.parameter_sets import (
    NOTEBOOKS, RUNNER_PARAMETERS, TRAIN, data_argument, did_you_mean, notebook_parameters, notebook_path,
    profile_names, read_profile,
)


def default_profile(data: str | Path | None = None) -> str:
    """'full' where a CUDA GPU is available or a shipped result stands in for its training, 'quick' otherwise.

    The shipped result (``results/reference``, gan_helpers.runs.results) counts only
    when it fits the full profile's experiment on `data` for both generators.
    """
    import torch

    if torch.cuda.is_available():
        return "full"
    config = experiment_config("full", data=data_argument(data) if data else "")
    return "full" if all(shipped_result(config.replace(generator=kind), say=None) for kind in GENERATOR_KINDS) else "quick"


def resolve_profile(name: str | None = None, data: str | Path | None = None) -> str:
    """The profile to use: `name`, else the PROFILE environment variable, else :func:`default_profile` for `data`.

    An empty string counts as not given (the Makefile passes ``--profile ""``).
    """
    name = (name or "").strip() or os.environ.get("PROFILE", "").strip() or default_profile(data)
    if name not in profile_names():
        raise UserError(f"there is no parameter set {name!r} (notebooks/params/{name}.yaml); use one of: {', '.join(profile_names()) or 'none'}.")
    return name


def experiment_config(profile: str, *, data: str = "", **overrides) -> TrainConfig:
    """The profile's experiment: its ``train:`` block over TrainConfig's defaults.

    `data` (when not empty) replaces the data folder, as ``DATA=`` does;
    `overrides` change settings that do not make a different run (e.g.
    ``progress``), and anything else on purpose.
    """
    block = read_profile(resolve_profile(profile))[TRAIN]
    try:
        config = TrainConfig.from_dict(block)
    except UserError as error:
        raise UserError(f"notebooks/params/{profile}.yaml, block '{TRAIN}': {error}") from None
    if data:
        overrides["data"] = data
    return config.replace(**overrides)


def load_profile(name: str, notebooks=None, gpu: bool | None = None) -> dict[str, dict]:
    """The parameter set `name`, every key checked: {"train": {...}, stem: {parameter: value}}.

    Notebook sections outside `notebooks` (default: all) are checked only for
    naming a notebook; a missing section means the notebook's own defaults.
    `gpu` as in :func:`read_profile`.
    """
    profile = read_profile(name, gpu)
    experiment_config(name)  # the train block, validated
    wanted = list(notebooks) if notebooks is not None else NOTEBOOKS
    both = (read_profile(name, gpu=True), read_profile(name, gpu=False))  # a typo among the knobs of either machine is found on both
    for stem in NOTEBOOKS:
        keys = {key for knobs in both for key in knobs[stem]}
        if stem not in wanted or not keys:
            continue
        known = notebook_parameters(notebook_path(stem))
        for key in sorted(keys):
            if key in RUNNER_PARAMETERS:
                raise UserError(f"notebooks/params/{name}.yaml: {stem} sets {key!r}, which the runner sets itself; remove the key.")
            if key not in known:
                raise UserError(
                    f"notebooks/params/{name}.yaml: {stem} has no parameter {key!r}{did_you_mean(key, known)} "
                    f"(its parameters are {', '.join(k for k in known if k not in RUNNER_PARAMETERS) or 'none'}); "
                    f"training settings belong in the '{TRAIN}' block."
                )
    return profile


def notebook_values(profile: str, stem: str, data: str | Path | None = None, progress: bool = False) -> dict[str, object]:
    """What papermill injects into `stem`: its knobs plus the runner's own parameters where the notebook has them."""
    values = dict(load_profile(profile, [stem])[stem])
    known = notebook_parameters(notebook_path(stem))
    runner = {"profile": profile, "progress": progress}
    if data is not None:
        runner["data"] = data_argument(data)
    values.update({k: v for k, v in runner.items() if k in known})
    return values


