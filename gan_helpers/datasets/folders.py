"""Walking a user's folder safely: only regular files are opened, and every skip is said.

A folder of pictures may hold anything: a FIFO named ``x.png`` (opening it
waits forever for a writer), a dangling link, a link loop, a link to a
folder elsewhere, a sub-folder that cannot be read, a name that is not UTF-8
(no record or message could hold it). :func:`walk` lists all
of them, each with its kind, so callers can report what they did not use
instead of silently missing it; the files are opened with
``gan_helpers.storage.regular.open_regular_file(path, follow_links=True)``,
which opens only a regular file and never waits on a FIFO.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gan_helpers.errors import UserError

# Kinds of entries found by walk().
FILE = "file"  # a regular file, or a link to one
SPECIAL = "not-a-file"  # FIFO, socket or device: never opened
BROKEN_LINK = "broken-link"  # a link to nothing, or a loop of links
FOLDER_LINK = "folder-link"  # a link to a folder: not followed, so files cannot be reached twice or forever
UNREADABLE_FOLDER = "unreadable-folder"  # a sub-folder whose listing failed (permissions)
BAD_NAME = "name-not-utf8"  # a file or folder whose name is not UTF-8: never opened nor entered, named escaped


@dataclass(frozen=True)
class Entry:
    """One thing found below a walked folder."""

    relative: str  # POSIX path below the root; folders end with "/"
    kind: str  # FILE, SPECIAL, BROKEN_LINK, FOLDER_LINK or UNREADABLE_FOLDER
    size: int = 0  # bytes, for files
    mtime_ns: int = 0  # modification time, for files
    detail: str = ""  # why it was not used, for the other kinds


def walk(root: Path, *, recursive: bool = True) -> list[Entry]:
    """Every entry below `root`, sorted by path; sub-folders are entered unless `recursive` is False
    (links to folders never are). An unreadable `root` itself is a :class:`UserError`."""
    root = Path(root)
    try:
        with os.scandir(root) as listing:
            top = list(listing)
    except OSError as error:
        raise UserError(f"Folder {root} cannot be read ({error.strerror or error}); check that it exists "
                        f"and that you may read it.") from None
    found: list[Entry] = []
    pending = [("", top)]
    while pending:
        prefix, items = pending.pop()
        for item in items:
            relative = prefix + item.name
            if escaped_name(item.name) != item.name:  # a record (manifest.csv) cannot hold it, nor can a message
                folder = "/" if item.is_dir(follow_symlinks=False) else ""
                found.append(Entry(escaped_name(relative) + folder, BAD_NAME, detail=f"its name is not UTF-8 text "
                                   f"(each such byte shown as %XX); rename it to use it"))
                continue
            if item.is_dir(follow_symlinks=False):
                if not recursive:
                    continue
                try:
                    with os.scandir(item.path) as listing:
                        pending.append((relative + "/", list(listing)))
                except OSError as error:
                    found.append(Entry(relative + "/", UNREADABLE_FOLDER, detail=error.strerror or str(error)))
                continue
            found.append(_classify(item, relative))
    return sorted(found, key=lambda entry: entry.relative)


def escaped_name(name: str) -> str:
    """`name` as text that can be written anywhere: each byte of it that is not UTF-8 (Python holds such a byte
    of a file name as a lone surrogate, U+DC80-U+DCFF) becomes ``%XX``, e.g. ``caf%E9.png``."""
    return "".join(f"%{ord(c) - 0xDC00:02X}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in name)


def _classify(item: os.DirEntry, relative: str) -> Entry:
    try:
        info = item.stat()  # follows links: a link to a photo is a photo
    except OSError as error:  # a dangling link, a loop of links, or a file that vanished
        return Entry(relative, BROKEN_LINK, detail=error.strerror or str(error))
    if stat.S_ISREG(info.st_mode):
        return Entry(relative, FILE, info.st_size, info.st_mtime_ns)
    if stat.S_ISDIR(info.st_mode):
        return Entry(relative + "/", FOLDER_LINK, detail="a link to a folder; links to folders are not followed")
    return Entry(relative, SPECIAL, detail="not a regular file (a FIFO, socket or device)")


def is_regular_file(path: str | Path) -> bool:
    """Whether `path` is a regular file or a link to one (False for anything unreadable)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def is_plain_name(folder: str | Path, name: str) -> bool:
    """Whether `name` is a plain, visible file name that stays inside `folder` even after following
    links: what a record file in `folder` (a manifest, a list of downloads) may name."""
    if not name or name != PurePosixPath(name).name or "\\" in name or name.startswith("."):
        return False
    if any(ord(c) < 32 for c in name):
        return False
    folder = Path(folder).resolve()
    return (folder / name).resolve().parent == folder
