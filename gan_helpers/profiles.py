"""Parameter sets: one experiment and each notebook's own knobs (``notebooks/params/<profile>.yaml``).

A profile file has one ``train:`` block of :class:`~gan_helpers.config.TrainConfig`
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

import ast
import difflib
import os
from pathlib import Path

from gan_helpers.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT, shown

NOTEBOOKS = ("01_warmup", "02_data", "03_dcgan", "04_upsampling", "05_latent", "06_reflections")
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
TRAIN = "train"  # the profile block that holds the experiment
# The profile block of notebook knobs used instead on a machine without CUDA: the
# full profile's CPU-heavy demonstrations (point 7's step trace, point 13's long
# inversions) shrink there, while its experiment stays the same.
WITHOUT_GPU = "without_gpu"
# Parameters the runner sets itself in every notebook that has them: which
# profile, and the data override (--data / DATA=).
RUNNER_PARAMETERS = ("profile", "data", "progress")


def profile_names() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def default_profile(data: str | Path | None = None) -> str:
    """'full' where a CUDA GPU is available or a shipped result stands in for its training, 'quick' otherwise.

    The shipped result (``results/reference``, gan_helpers.shipped) counts only
    when it fits the full profile's experiment on `data` for both generators.
    """
    import torch

    if torch.cuda.is_available():
        return "full"
    from gan_helpers.shipped import shipped_results

    config = experiment_config("full", data=data_argument(data) if data else "")
    return "full" if all(shipped_results(config, say=None).values()) else "quick"


def resolve_profile(name: str | None = None, data: str | Path | None = None) -> str:
    """The profile to use: `name`, else the PROFILE environment variable, else :func:`default_profile` for `data`.

    An empty string counts as not given (the Makefile passes ``--profile ""``).
    """
    name = (name or "").strip() or os.environ.get("PROFILE", "").strip() or default_profile(data)
    if not (PARAMS_DIR / f"{name}.yaml").is_file():
        raise UserError(f"there is no parameter set {name!r} (notebooks/params/{name}.yaml); use one of: {', '.join(profile_names()) or 'none'}.")
    return name


def notebook_path(stem: str) -> Path:
    return NOTEBOOK_DIR / f"{stem}.ipynb"


def parameters_cell(nb, name: str = "notebook"):
    """The notebook's one code cell tagged ``parameters``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise UserError(f"{name} must have exactly one code cell tagged 'parameters', not {len(cells)}; tag the cell of plain literals.")
    return cells[0]


def notebook_parameters(path: str | Path) -> dict[str, object]:
    """The names the ``parameters`` cell assigns, with their default values (plain literals)."""
    import nbformat  # here, not at import: jsonschema's validators take seconds to load, and --help needs none

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{shown(path)} does not exist; a parameter set names a notebook that is not there.")
    cell = parameters_cell(nbformat.read(path, as_version=4), shown(path))
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as error:
        raise UserError(f"the parameters cell of {shown(path)} is not valid Python ({error.msg}, line {error.lineno}).") from None
    found: dict[str, object] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(node.value) if node.value is not None else None
                except ValueError:
                    found[target.id] = None  # not a plain literal: the name still counts
    return found


def read_profile(name: str, gpu: bool | None = None) -> dict[str, dict]:
    """The raw parameter set: {"train": {...}, notebook stem: {...}}, its shape checked.

    Without a GPU (`gpu` None: whether CUDA is available) a notebook's
    ``without_gpu`` knobs replace its own.
    """
    import yaml

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
    replaced = raw.get(WITHOUT_GPU) or {}
    for stem, knobs in replaced.items():
        if stem not in NOTEBOOKS:
            raise UserError(f"section {WITHOUT_GPU} of {shown(path)} names {stem!r}, which is not a notebook{did_you_mean(stem, NOTEBOOKS)}.")
        if not isinstance(knobs, dict | None):
            raise UserError(f"section {WITHOUT_GPU}.{stem} of {shown(path)} must map names to values.")
    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    if not gpu:
        for stem, knobs in replaced.items():
            profile[stem].update(knobs or {})
    return profile


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
