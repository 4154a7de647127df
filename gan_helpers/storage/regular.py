"""Regular files only: no writer or reader of the lab goes through a symbolic link or blocks on a special file.

A run folder or a shipped result is data that may come from someone else.
A link in place of ``.lock``, ``resumes.txt`` or a grid would otherwise make
the lab truncate, append to or read whatever the link points at, and a FIFO
in place of a record would make a reader wait forever. Every file the lab
opens by a name inside such a folder is therefore opened here:

    fd = open_regular(run_dir / ".lock", os.O_RDWR | os.O_CREAT)   # O_NOFOLLOW, fstat says a regular file
    check_regular(path)          # before replacing `path`: absent or a regular file
    with open_regular_file(path, "rb") as f: ...                    # a reader's file object

A link or a special file in the way is :class:`NotRegular`, a UserError of
one sentence naming the path; nothing is opened, created or changed. A
user's folder of photos is the one place where a link is followed
(``follow_links=True``: a link to a photo is a photo); what it leads to must
still be a regular file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO

from gan_helpers.errors import UserError
from gan_helpers.paths import shown

# O_NONBLOCK: opening a FIFO neither waits for a writer nor for a reader; it has no effect on regular files.
_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class NotRegular(UserError):
    """A symbolic link or a special file stands where the lab reads or writes a regular file."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def not_regular(path: str | Path, mode: int) -> NotRegular:
    """The one-sentence error for `path`, whose ``lstat`` mode is `mode`."""
    if stat.S_ISLNK(mode):
        return NotRegular(f"{shown(path)} is a symbolic link, and the lab never reads or writes a file through one; "
                          f"delete the link (put the file itself there) and try again.")
    return NotRegular(f"{shown(path)} is {_kind(mode)}, not a regular file, and the lab reads and writes only "
                      f"regular files there; remove it and try again.")


def check_folder(path: str | Path) -> None:
    """Nothing, or a real folder, at `path` (the name itself, a link not followed); otherwise :class:`NotRegular`:
    a link in place of a run's ``samples/`` or ``checkpoints/`` would make the lab read or write files elsewhere."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise NotRegular(f"{shown(path)} is a symbolic link, and the lab never reads or writes a run's files through "
                         f"one; put the folder itself there and try again.")
    if not stat.S_ISDIR(mode):
        raise NotRegular(f"{shown(path)} is {_kind(mode)}, not a folder; remove it and try again.")


def check_regular(path: str | Path) -> None:
    """Nothing, or a regular file, at `path` (the name itself, a link not followed); otherwise :class:`NotRegular`."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)


def open_regular(path: str | Path, flags: int, mode: int = 0o666, *, follow_links: bool = False) -> int:
    """``os.open(path, flags)`` that never follows a link at `path` (unless `follow_links`) and only returns the
    descriptor of a regular file.

    Other ``OSError`` (a missing file without ``O_CREAT``, a full disk, no
    permission, a dangling link or a loop of links when following) pass
    unchanged for the caller to word.
    """
    try:
        fd = os.open(path, flags | (_SAFE & ~os.O_NOFOLLOW if follow_links else _SAFE), mode)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            try:
                found = (os.stat if follow_links else os.lstat)(path).st_mode
            except OSError:
                raise error from None
            if not stat.S_ISREG(found):
                raise not_regular(path, found) from None
        raise
    found = os.fstat(fd).st_mode
    if not stat.S_ISREG(found):
        os.close(fd)
        raise not_regular(path, found)
    return fd


def open_regular_file(path: str | Path, mode: str = "rb", *, follow_links: bool = False, **kwargs) -> IO:
    """``open(path, mode)`` for reading a regular file: not through a link at `path` (unless `follow_links`),
    never waiting on a FIFO."""
    if mode not in ("r", "rb"):
        raise ValueError(f"open_regular_file reads: mode must be 'r' or 'rb', not {mode!r}")
    return os.fdopen(open_regular(path, os.O_RDONLY, follow_links=follow_links), mode, **kwargs)
