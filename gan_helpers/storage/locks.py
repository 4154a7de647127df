"""One writer per folder: an advisory lock held for a whole run of training, exporting, evaluating or preparing.

    with hold(run_dir, "training"):          # the lock file run_dir/.lock
        ...
    with hold_destination(dest, "export"):   # the lock file .NAME.lock beside a folder that must stay empty
        ...

The lock is ``fcntl.flock`` on a file, so the operating system releases it
when its process ends in any way (kill -9 included): a lock file left behind
is never a stale lock, only a name. A second process that wants the same
folder stops at once with one sentence naming the folder and the process
holding it; it waits for nothing and changes nothing. Readers (notebooks,
the report, ``watch``) take no lock: every file they read is written
atomically. The lock is re-entrant within one process, so a writer may call
another that locks the same folder.

The lock file is hidden (``.lock``, ``.NAME.lock``) and holds only the
holder's process id: run folders are read by name (config.json,
checkpoints/, …), never by listing everything in them, and export copies
named files only, so no manifest, copy or hash ever includes it.

A run folder may come from someone else, so the lock file is opened without
following a link (gan_helpers.storage.regular): a link, a FIFO or a hard
link in its place is one sentence naming it, and the file it points at is
neither truncated, written nor removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from gan_helpers.errors import UserError
from gan_helpers.paths import shown
from gan_helpers.storage.regular import NotRegular, open_regular

LOCK_FILE = ".lock"  # inside a folder that exists: a run folder

_held: dict[str, int] = {}  # lock file (resolved) -> how many times this process holds it
_guard = threading.Lock()


class FolderBusy(UserError):
    """Another process holds the folder's lock; `holder` names it ("process 12345" or "another process")."""

    def __init__(self, message: str, holder: str = "another process") -> None:
        super().__init__(message)
        self.holder = holder


def lock_path_beside(folder: str | Path) -> Path:
    """The lock file of a folder that must stay empty until it is filled at once (an export's destination)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


def hold(folder: str | Path, what: str = "writing") -> contextlib.AbstractContextManager[Path]:
    """Hold the exclusive lock of existing folder `folder` (its ``.lock`` file) for the block."""
    return _locked(Path(folder) / LOCK_FILE, Path(folder), what, remove=False)


def hold_destination(folder: str | Path, what: str = "writing") -> contextlib.AbstractContextManager[Path]:
    """Hold the lock of `folder`, which need not exist, by a lock file beside it; the file goes when released."""
    return _locked(lock_path_beside(folder), Path(folder), what, remove=True)


@contextlib.contextmanager
def _locked(lock: Path, folder: Path, what: str, *, remove: bool) -> Iterator[Path]:
    key = str(lock.parent.resolve() / lock.name)
    with _guard:
        if key in _held:
            _held[key] += 1
            fd = None
        else:
            fd = _acquire(lock, folder, what)
            _held[key] = 1
    try:
        yield folder
    finally:
        with _guard:
            _held[key] -= 1
            if _held[key] == 0:
                del _held[key]
                if fd is not None:
                    if remove and _still_ours(lock, fd):  # before the unlock: a process that opened this file
                        with contextlib.suppress(OSError):  # sees it is gone and starts again
                            os.unlink(lock)
                    os.close(fd)  # releases the lock


def _acquire(lock: Path, folder: Path, what: str) -> int:
    """Open and lock `lock`; a UserError naming the holder when another process has it."""
    while True:
        try:  # a link or a FIFO in place of the lock file is refused: it is never truncated, written or removed
            fd = open_regular(lock, os.O_RDWR | os.O_CREAT)
        except NotRegular as error:
            raise NotRegular(f"{str(error).rstrip('.')} ({what} changed nothing).") from None
        except OSError as error:
            raise UserError(_cannot_lock(folder, lock, error)) from None
        if os.fstat(fd).st_nlink > 1:  # a hard link to a file elsewhere: writing the process id would change that file
            os.close(fd)
            raise NotRegular(f"{shown(lock)} has another name elsewhere (a hard link), so writing the lock would change "
                             f"that file too; delete {shown(lock)} and try again ({what} changed nothing).")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(fd)
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(_cannot_lock(folder, lock, error)) from None
            raise FolderBusy(f"{shown(folder)} is in use by {holder}, which is writing into it; wait until it "
                             f"finishes (or stop it) and try again ({what} changed nothing).", holder) from None
        if _still_ours(lock, fd):  # a holder that removed the file as it let go leaves us a lock on a name nobody opens
            break
        os.close(fd)
    with contextlib.suppress(OSError):  # the process id is a courtesy for the message above; a full disk may refuse it
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _still_ours(lock: Path, fd: int) -> bool:
    """Whether the name `lock` is still the regular file we hold (never remove a link put there meanwhile)."""
    try:
        return os.lstat(lock).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        text = ""
    return f"process {text}" if text.isdigit() else "another process"


def _cannot_lock(folder: Path, lock: Path, error: OSError) -> str:
    reason = error.strerror or str(error)
    if isinstance(error, (NotADirectoryError, FileNotFoundError)):
        return f"{shown(folder)} is not a folder ({reason} at {shown(lock.parent)}); give a path to a folder."
    return (f"{shown(folder)} cannot be written to ({reason}); give a folder you may write into, or change "
            f"its permissions.")
