"""Where things live, independent of the current working directory.

Notebooks run with their own folder as working directory (JupyterLab) or
with the project root (papermill from the Makefile); paths in their
parameters are therefore written relative to the project root and resolved
here.
"""

from __future__ import annotations

import os
from pathlib import Path

from gan_helpers.errors import UserError

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


def ensure_folder(path: str | Path, what: str = "folder") -> Path:
    """Folder `path`, created with its parents if missing, checked to be writable; one sentence when it cannot be.

    A path through a regular file, a file where the folder should be and a
    folder that may not be written each name the path and the fix, instead of
    the NotADirectoryError, FileExistsError or PermissionError of a later write.
    """
    path = Path(path)
    for part in reversed((path, *path.parents)):  # from the root down: the first file on the way is the culprit
        if part.is_symlink() and not part.exists():
            raise UserError(f"the {what} {shown(path)} cannot be used: {shown(part)} is a broken link; remove it or give another path.")
        if not part.exists():
            break
        if not part.is_dir():
            where = "is a file, not a folder" if part == path else f"goes through {shown(part)}, which is a file"
            raise UserError(f"the {what} {shown(path)} {where}; give a path to a folder (or move that file away).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"the {what} {shown(path)} cannot be created ({error.strerror or error}); give a folder you may "
                        f"write into.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"the {what} {shown(path)} is read-only (Permission denied); give a folder you may write into, "
                        f"or change its permissions.")
    return path
