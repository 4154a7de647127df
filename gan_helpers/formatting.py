"""How the lab words its output: numbers for tables and prose, durations, and where progress messages go."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator


def finite_number(value) -> float | None:
    """`value` as a float when it is a finite number (a record read from a file may hold anything), else None.

    True and false are not numbers here, and an integer too large for a float is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def fmt(value, digits: int = 3) -> str:
    """A number for prose and tables: '–' when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def duration(seconds: float) -> str:
    """Seconds as '42 s', '3.5 min' or '2.1 h'."""
    if not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@contextlib.contextmanager
def progress_messages() -> Iterator[None]:
    """What the calls inside print goes to stderr: which folder a run is in, that a run is reused or resumed,
    how the data were cleaned on first use. A notebook shows it to whoever runs the cell; the report, which
    leaves stderr out, says the results in words instead."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
