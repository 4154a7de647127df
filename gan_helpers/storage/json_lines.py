"""Reading a JSON-lines record file (``metrics.jsonl``, ``quality.jsonl``): every line checked, every problem said.

The file is opened as a regular file only (gan_helpers.storage.regular);
each line is decoded and parsed here and handed to its reader's own check,
so a bad line is one sentence naming the file and the line whatever the file.
A whole file is written by :func:`write_json_lines` (atomically), a line
appended by :func:`gan_helpers.storage.atomic.append_line`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from gan_helpers.errors import UserError
from gan_helpers.storage.atomic import atomic_write_text
from gan_helpers.storage.regular import open_regular_file


def read_json_lines(path: str | Path, check: Callable[[object], tuple[dict | None, str]], *, not_json: str,
                    strict: bool, fix: str, drop_cut_off: bool) -> list[dict]:
    """The records of the JSON-lines file `path` in file order; none when it is missing.

    Each line of JSON goes to `check`, which returns (the record to keep or
    None, a clause saying what is wrong or ""); a line that is not UTF-8 text
    or not JSON gets the clause "is not UTF-8 text" or `not_json`. A line with
    a clause is a UserError "PATH line N CLAUSE; `fix`." when `strict`, else
    a warning saying what is ignored. The last line without its newline is an
    append cut off or still being written: with `drop_cut_off` it is dropped
    with a warning; otherwise it is read like the others, but a problem in it
    is no warning when not `strict`.
    """
    if not os.path.lexists(path):
        return []
    with open_regular_file(path, "rb") as f:  # never through a link, never waiting on a FIFO
        lines = f.read().split(b"\n")
    if drop_cut_off and lines[-1]:
        warnings.warn(f"{path}: the last line was cut off (training stopped while writing it); it is ignored.",
                      stacklevel=3)
        lines[-1] = b""
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record, problem = check(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError:
            record, problem = None, "is not UTF-8 text"
        except (json.JSONDecodeError, RecursionError):
            record, problem = None, not_json
        if problem and strict:
            raise UserError(f"{path} line {number} {problem}; {fix}.")
        if problem and number < len(lines):  # not the last line without its newline: an append in progress
            warnings.warn(f"{path} line {number} {problem}; {'that value' if record else 'it'} is ignored.",
                          stacklevel=3)
        if record:
            found.append(record)
    return found


def write_json_lines(path: str | Path, records: Iterable[dict]) -> None:
    """Write `records` as the JSON-lines file `path`, one per line, atomically: a crash leaves the old file or the new."""
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in records))
