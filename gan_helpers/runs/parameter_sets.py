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
TrainConfig here, a notebook knob against the names the notebook's
``parameters`` cell assigns (:func:`report.notebooks.load_profile`). A typo
is an error naming the key, never a silently ignored setting. Which profile
a notebook gets by default is :func:`gan_helpers.runs.experiment.resolve_profile`.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
import yaml

from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT, shown
from gan_helpers.runs.config import TrainConfig

NOTEBOOKS = ("01_warmup", "02_data", "03_dcgan", "04_upsampling", "05_latent", "06_reflections")
PARAMS_DIR = PROJECT_ROOT / "notebooks" / "params"
TRAIN = "train"  # the profile block that holds the experiment

# The profile block of notebook knobs used instead on a machine without CUDA: the
# full profile's CPU-heavy demonstrations (point 7's step trace, point 13's long
# inversions) shrink there, while its experiment stays the same.
WITHOUT_GPU = "without_gpu"


def profile_names() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def read_profile(name: str, gpu: bool | None = None) -> dict[str, dict]:
    """The raw parameter set: {"train": {...}, notebook stem: {...}}, its shape checked.

    Without a GPU (`gpu` None: whether CUDA is available) a notebook's
    ``without_gpu`` knobs replace its own.
    """
    path = PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"there is no parameter set {name!r} ({shown(path)}); use one of: {', '.join(profile_names()) or 'none'}.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{shown(path)} is not valid YAML ({str(error).splitlines()[0]}).") from None
    if not isinstance(raw, dict):
        raise UserError(f"{shown(path)} must map '{TRAIN}' and notebook names (01_warmup, …) to their settings.")
    sections = (TRAIN, *NOTEBOOKS)
    for key, section in raw.items():
        if key not in (*sections, WITHOUT_GPU):
            raise UserError(f"{shown(path)} has a section {key!r} that is neither '{TRAIN}', '{WITHOUT_GPU}' nor a notebook"
                            f"{did_you_mean(key, (*sections, WITHOUT_GPU))}.")
        if not isinstance(section, dict | None):
            raise UserError(f"section {key} of {shown(path)} must map names to values.")
    profile = {key: dict(raw.get(key) or {}) for key in sections}
    without_gpu = not (torch.cuda.is_available() if gpu is None else gpu)
    for stem, knobs in (raw.get(WITHOUT_GPU) or {}).items():
        if stem not in NOTEBOOKS:
            raise UserError(f"section {WITHOUT_GPU} of {shown(path)} names {stem!r}, which is not a notebook{did_you_mean(stem, NOTEBOOKS)}.")
        if not isinstance(knobs, dict | None):
            raise UserError(f"section {WITHOUT_GPU}.{stem} of {shown(path)} must map names to values.")
        if without_gpu:
            profile[stem].update(knobs or {})
    return profile


def profile_experiment(name: str) -> TrainConfig:
    """The experiment of the parameter set `name`: its ``train:`` block over TrainConfig's defaults, every key checked."""
    try:
        return TrainConfig.from_dict(read_profile(name)[TRAIN])
    except UserError as error:
        raise UserError(f"notebooks/params/{name}.yaml, block '{TRAIN}': {error}") from None


def data_argument(data: str | Path) -> str:
    """A data folder given on the command line (relative to the current folder), as a notebook parameter."""
    path = Path(data).expanduser()
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not path.is_dir():
        raise UserError(f"the data folder {data} does not exist; pass a folder of images with --data (or DATA=…).")
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
