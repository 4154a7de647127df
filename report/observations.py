"""Written observations of a shipped result, placed into the report's "Observations (Point N)" cells.

A shipped result may carry ``results/<name>/observations.md``: what a person
saw in that result's figures, one section per point (results/README.md)::

    # Observations: reference          (optional; text before the first section is not used)

    ## Point 10
    From epoch 300 on the samples show ...

    ## Point 12
    ...

When the report is built from that result, :func:`place_observations`
replaces the text of each markdown cell that starts with
``**Observations (Point N).**`` by the section of point N. Cells of points
without a section, and every cell of runs trained here, keep their prompt.

The prose is a person's; its measurements are the build's.
:func:`unquoted_numbers` names each measured value the observations quote
(a number with a decimal point or an exponent, or a percentage) that
nothing the build computed shows: the outputs of the notebooks' code
cells, their tables and printed lines. Integers (epochs, counts, point
numbers) say where to look, not what was measured, and are not checked.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import nbformat

from gan_helpers.errors import UserError
from gan_helpers.paths import shown
from gan_helpers.runs.markdown import ENTITIES, SPECIAL
from gan_helpers.storage.regular import open_regular_file

CELL = re.compile(r"^\s*\*\*Observations \(Point (\d+)\)\.\*\*")
# A measured value as prose writes it: 0.040, 42.9, 5e-5, 2.6e-4, 16 % or 16%; a sign is not part of it.
MEASURED = re.compile(r"(?<![\w.])(\d+\.\d+(?:e[+-]?\d+)?|\d+e[+-]?\d+|\d+(?:\.\d+)?(?=\s?%))(?![\w.]*\d)")
ANY_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?", re.I)
SECTION = re.compile(r"^##\s+Point\s+(\d+)\b[^\n]*$", re.M)
OTHER_SECTION = re.compile(r"^##\s+(?!Point\s+\d+\b)(.*)$", re.M)
# A link whose target is not a web page, a mail address or a place in the report (javascript:, data:, file:)
# is no link: its "](" is written as characters.
_UNSAFE_LINK = re.compile(r"\]\((?=\s*<?\s*(?!https?:|mailto:|#)[A-Za-z][A-Za-z0-9+.-]*\s*:)")


def markdown_text(text: str) -> str:
    """`text` as Markdown whose every character prints as typed: no raw TeX or HTML, math, code or images
    (:mod:`gan_helpers.runs.markdown` says why).

    Paragraphs, emphasis, lists, headings, tables and links keep working, so
    a person's written observations keep their form.
    """
    text = SPECIAL.sub(lambda m: ENTITIES[m.group()], str(text))
    return _UNSAFE_LINK.sub("]&#40;", text)


def read_observations(path: str | Path) -> dict[int, str]:
    """The sections of an observations file by point number; a UserError for a file that breaks the format."""
    path = Path(path)
    try:  # never through a link, never waiting on a FIFO (a link or special file is its own sentence)
        with open_regular_file(path, "r", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        raise UserError(f"{shown(path)} cannot be read as UTF-8 text; save it as plain Markdown.") from None
    if stray := OTHER_SECTION.search(text):
        raise UserError(f"{shown(path)} has a section '## {stray.group(1).strip()}'; every '## ' heading must be '## Point N'.")
    found: dict[int, str] = {}
    headings = list(SECTION.finditer(text))
    for heading, following in zip(headings, headings[1:] + [None]):
        point = int(heading.group(1))
        if point in found:
            raise UserError(f"{shown(path)} has two sections for point {point}; merge them into one '## Point {point}'.")
        found[point] = text[heading.end():following.start() if following else len(text)].strip()
    return found


def place_observations(merged: nbformat.NotebookNode, path: str | Path | None) -> list[str]:
    """Put the sections of observations file `path` into `merged`'s observation cells; return notes for the build.

    The notes name sections without a cell to go into, empty sections and
    observation cells left with their prompt. `path` None changes nothing.
    """
    if path is None:
        return []
    written = read_observations(path)
    where = shown(path)
    notes, placed = [], set()
    for cell in merged.cells:
        match = CELL.match(cell.source) if cell.cell_type == "markdown" else None
        if not match:
            continue
        point = int(match.group(1))
        if not written.get(point):
            notes.append(f"point {point}: {where} has no observations for it, so its cell keeps the prompt")
            continue
        # The text comes from outside the project: it reaches the PDF as text, never as TeX or HTML (markdown_text).
        cell.source = (f"**Observations (Point {point}).** *Written for this result, from its figures.*\n\n"  # no path in print
                       f"{markdown_text(written[point])}")
        placed.add(point)
    notes += [f"{where}: point {point} has no observations cell in the notebooks, so its section is not printed"
              for point in sorted(set(written) - placed) if written[point]]
    return notes


def _computed(cells) -> str:
    """What code printed into these cells: streams, tables and text of every code cell's outputs."""
    parts = []
    for cell in cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            parts += [output.get("text", ""), data.get("text/markdown", ""), data.get("text/plain", "")]
    return "\n".join(str(part) for part in parts)


def _decimals(number: str) -> int:
    mantissa = number.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def shows(quoted: str, computed: set[float]) -> bool:
    """Whether a computed value, rounded as `quoted` is written, equals it: 0.040 matches 0.0403, 42.9 matches 42.94."""
    value = float(quoted)
    if "e" in quoted.lower():
        return any(math.isclose(value, c, rel_tol=1e-9) for c in computed)
    step = 10.0 ** -_decimals(quoted)
    return any(abs(c - value) <= step / 2 + 1e-12 for c in computed)


def unquoted_numbers(merged: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(point, number) for each measured value in an observations cell that its chapter's computed outputs do not show.

    A chapter is a notebook (from one level-1 heading to the next); the
    observations of a point may quote what any code cell of that notebook
    printed, before or after them.
    """
    chapters: list[list] = [[]]
    written: list[tuple[int, str, int]] = []
    for cell in merged.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            chapters.append([])
        chapters[-1].append(cell)
        if cell.cell_type == "markdown" and (match := CELL.match(cell.source)):
            written.append((int(match.group(1)), cell.source, len(chapters) - 1))
    values = [{float(token) for token in ANY_NUMBER.findall(_computed(cells))} for cells in chapters]
    return [(point, quoted) for point, text, chapter in written for quoted in MEASURED.findall(text)
            if not shows(quoted, values[chapter])]


def main(argv: list[str] | None = None) -> int:
    """``python -m report.observations BUILT_NOTEBOOK``: exit status 1 if its observations quote a value nothing in it computed.

    BUILT_NOTEBOOK is the merged notebook a report build leaves beside its PDF
    (``build/PROFILE/report/lab_report.ipynb``), the observations already placed.
    """
    parser = argparse.ArgumentParser(prog="python -m report.observations",
                                     description="Check that every value the placed observations quote is one the build computed.")
    parser.add_argument("notebook", help="the merged notebook of a report build, e.g. build/full/report/lab_report.ipynb")
    args = parser.parse_args(argv)
    path = Path(args.notebook)
    if not path.is_file():
        print(f"observations: {path} does not exist; build the report first (`make report`).")
        return 2
    merged = nbformat.read(path, as_version=4)
    missing = unquoted_numbers(merged)
    for point, number in missing:
        print(f"{path}: the observations of point {point} quote {number}, which the report computes nowhere in that notebook")
    print(f"{path}: " + ("every value the observations quote is computed" if not missing else f"{len(missing)} quoted value(s) not computed"))
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
