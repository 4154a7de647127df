"""Atomic writes: a file that holds state is either its old self or its new self, never half.

Every whole-file writer here follows one recipe: write a temporary file in
the same folder, flush and ``fsync`` it, move it into place (``os.replace``,
or ``os.link`` where an existing file must never be overwritten), then
``fsync`` the folder so the new name itself survives a power cut. A writer
that fails for any reason, Ctrl-C and a full disk included, removes its
temporary file and leaves the target untouched. A process killed outright
leaves only a hidden ``.NAME.XXXXXXXX.partial`` beside the target, which no
reader looks at.

Line logs (``metrics.jsonl``) are appended with :func:`append_line`, which
never leaves a cut-off line behind when it fails and removes one left by a
writer that was killed mid-line.

    atomic_write_text(run_dir / "config.json", text)
    atomic_save(state, path, overwrite=False)     # torch.save, never replacing
    with atomic_open(path, "wb") as f: ...        # any writer that takes a file
    link_or_copy(checkpoint, fork_dir / name)     # a second name for a never-rewritten file
    append_line(run_dir / "metrics.jsonl", line)

A full disk (ENOSPC or a quota) ends in :class:`DiskFull`, a UserError of one
sentence naming the file, also where ``torch.save`` wrapped it in a RuntimeError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from gan_helpers.errors import UserError
from gan_helpers.storage.regular import check_regular, open_regular, open_regular_file

_FULL = {errno.ENOSPC, errno.EDQUOT}
# Errors of os.link on file systems without hard links (FAT, some network and FUSE mounts).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


class DiskFull(UserError):
    """The disk (or the user's quota) ran out while writing `path`; nothing was overwritten."""

    def __init__(self, path: str | Path, message: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(message or f"the disk is full while writing {path}; free some space and try again (nothing was overwritten).")


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` comes from a full disk, also when it is wrapped.

    ``torch.save`` into a file object turns the ``OSError(ENOSPC)`` of a
    failed write into a ``RuntimeError`` ("unexpected pos …") whose context
    is the original error, so the whole chain is searched.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def reporting_full_disk(path: str | Path) -> Iterator[None]:
    """Turn a full-disk error inside the block into :class:`DiskFull` for `path`; other errors pass."""
    try:
        yield
    except DiskFull:
        raise  # already names the file being written
    except BaseException as error:
        if is_disk_full(error):
            raise DiskFull(path) from None
        raise


def fsync_folder(folder: str | Path) -> None:
    """Make the folder's entries (a new or renamed file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, Path]:
    # os.open with mode 0o666 lets the umask decide permissions, as for any new file
    # (tempfile.mkstemp would make every checkpoint readable by its owner only).
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                           0o666), temp
        except FileExistsError:
            continue


def _link_into_place(temp: Path, path: Path) -> None:
    """Give `temp` the name `path`, failing with FileExistsError if `path` exists."""
    try:
        os.link(temp, path)
    except OSError as error:
        if isinstance(error, FileExistsError) or error.errno not in _NO_LINKS:
            raise
        # No hard links here: check, then rename (a tiny race only against another writer of the same name).
        if path.exists():
            raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
        os.replace(temp, path)
    else:
        os.unlink(temp)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, overwrite: bool = True, **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it becomes `path`, otherwise it vanishes.

    With ``overwrite=False`` an existing `path` is an error (``FileExistsError``)
    and is left as it was. A full disk becomes :class:`DiskFull`, a UserError.
    A symbolic link or a special file at `path` is :class:`NotRegular` before
    anything is written: the lab never replaces or writes through one.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    check_regular(path)
    with reporting_full_disk(path):
        fd, temp = _create_temp(path)
        try:
            with os.fdopen(fd, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            if overwrite:
                os.replace(temp, path)
            else:
                _link_into_place(temp, path)
            fsync_folder(path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


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
    """Copy a regular file's bytes to `target` atomically (streamed, so large checkpoints are fine).

    Neither `source` nor `target` may be a symbolic link or a special file
    (:class:`NotRegular`): a copy out of a run folder never takes in a file
    from outside it, nor waits on a FIFO.
    """
    with open_regular_file(source, "rb") as src, atomic_open(target, "wb", overwrite=overwrite) as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Give `target` the contents of `source`, never overwriting `target`.

    A hard link where the file system allows one: instant and free of disk
    space, and right for files that are never rewritten in place, such as
    checkpoints. Elsewhere an atomic copy.
    """
    target = Path(target)
    check_regular(source)  # os.link would follow a link and give a FIFO a second name
    try:
        with reporting_full_disk(target):
            os.link(source, target, follow_symlinks=False)
    except OSError as error:
        if isinstance(error, FileExistsError) or error.errno not in _NO_LINKS:
            raise
        atomic_copy(source, target, overwrite=False)
    else:
        fsync_folder(target.parent)


def append_line(path: str | Path, line: str) -> None:
    """Append `line` and a newline to a log file and make it durable.

    A failed append (full disk, Ctrl-C) is cut away again, so the file never
    ends in half a line because of it. A cut-off last line that a killed
    writer left behind is removed first, with a warning, so the new line
    starts on a line of its own; readers ignore such a line anyway. A
    symbolic link or a special file at `path` is :class:`NotRegular`, and the
    file it points at is left alone.
    """
    if "\n" in line:
        raise ValueError("append_line appends a single line; the text must not contain a newline")
    path = Path(path)
    data = (line + "\n").encode("utf-8")
    created = not os.path.lexists(path)
    with reporting_full_disk(path):
        fd = open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)  # never through a link, never a FIFO
        try:
            size = _complete_size(fd)
            if size != os.fstat(fd).st_size:
                warnings.warn(f"{path} ended in a cut-off line (a writer was stopped mid-line); that line was removed.", stacklevel=2)
                os.ftruncate(fd, size)
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # never leave the part of a line that did get written
                raise
        finally:
            os.close(fd)
        if created:
            fsync_folder(path.parent)


def _complete_size(fd: int, chunk: int = 1 << 16) -> int:
    """Length of the file up to and including its last newline (0 without one)."""
    end = os.fstat(fd).st_size
    position = end
    while position > 0:
        start = max(0, position - chunk)
        data = os.pread(fd, position - start, start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0
