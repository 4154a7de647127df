"""Atomic writes: a file that holds state is either its old self or its new self, never half.

Every writer here follows one recipe: write a temporary file in the same
folder, flush and ``fsync`` it, move it into place (``os.replace``, or
``os.link`` where an existing file must never be overwritten), then
``fsync`` the folder so the new name itself survives a power cut. A writer
that fails for any reason, Ctrl-C and a full disk included, removes its
temporary file and leaves the target untouched.

    atomic_write_text(run_dir / "config.json", text)
    atomic_save(state, path, overwrite=False)     # torch.save, never replacing
    with atomic_open(path, "wb") as f: ...        # any writer that takes a file
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from gan_helpers.errors import UserError


def fsync_folder(folder: str | Path) -> None:
    """Make the folder's entries (a new or renamed file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, overwrite: bool = True, **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it becomes `path`, otherwise it vanishes.

    With ``overwrite=False`` an existing `path` is an error (``FileExistsError``)
    and is left as it was. A full disk becomes a :class:`UserError` saying so.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # fails if `path` exists: never overwrites
            os.unlink(temp)
        fsync_folder(path.parent)
    except OSError as error:
        _discard(temp)
        if error.errno == errno.ENOSPC:
            raise UserError(f"the disk is full while writing {path}; free some space and try again (nothing was overwritten).") from None
        raise
    except BaseException:
        _discard(temp)
        raise


def _discard(temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = True) -> None:
    with atomic_open(path, "w", overwrite=overwrite, encoding="utf-8") as f:
        f.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True) -> None:
    with atomic_open(path, "wb", overwrite=overwrite) as f:
        f.write(data)


def atomic_save(obj, path: str | Path, *, overwrite: bool = True) -> None:
    """``torch.save(obj, path)``, atomically (a checkpoint, a tensor of latents)."""
    import torch

    with atomic_open(path, "wb", overwrite=overwrite) as f:
        torch.save(obj, f)


def atomic_copy(source: str | Path, target: str | Path, *, overwrite: bool = True) -> None:
    """Copy a file's bytes to `target` atomically (streamed, so large checkpoints are fine)."""
    import shutil

    with open(source, "rb") as src, atomic_open(target, "wb", overwrite=overwrite) as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)
