"""Where things live, independent of the current working directory.

Notebooks run with their own folder as working directory (JupyterLab) or
with the project root (papermill from the Makefile); paths in their
parameters are therefore written relative to the project root and resolved
here.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT / "data" / "galaxies64"


def from_root(path: str | Path) -> Path:
    """An absolute path: `path` itself if absolute, else relative to the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def shown(path: str | Path) -> str:
    """`path` as printed to users: relative to the project root when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
