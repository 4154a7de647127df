"""Parameter sets on disk: notebooks/params/*.yaml and the notebooks' parameters cells."""

from __future__ import annotations
import ast
import difflib
from gan_helpers.paths import PROJECT_ROOT, shown
from pathlib import Path
from gan_helpers.errors import UserError


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
