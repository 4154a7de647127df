"""The report's front matter: what was run, where each point is answered, every departure from the spec.

The facts of the build (parameter set, data, runs, where the figures come
from, machine, commit, time) go on the title page (:func:`title_facts`); then
one chapter before the notebooks, in this order: the table "point → notebook
→ section → page"; the departures from the spec (read from
report/departures.yaml, which the lab's authors keep); where each point's
code lives (:data:`~gan_helpers.listing.CODE_MAP`); every training
setting used. The notebooks' own parameters are in the parameter set the
title page names (and in the build folder, :func:`build_facts`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell, new_raw_cell

from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.errors import UserError
from report.reading import REPORT_DIR, Location
from gan_helpers.listing import CODE_MAP
from report.tables import content_widths, latex_escape, latex_inline, latex_table, markdown_table

DEPARTURES = REPORT_DIR / "departures.yaml"
DEPARTURE_COLUMNS = {"point": "Point", "spec": "The spec says", "lab": "The lab does", "why": "Why", "evidence": "Evidence"}
REQUIRED = ("point", "spec", "lab", "why")
TODO = "todo"  # a note for the authors: the build warns, the PDF never shows it
PROFILES = "profiles"  # the parameter sets a row applies to (default: all)


def load_departures(path: Path = DEPARTURES, profile: str | None = None) -> tuple[list[dict[str, str]], list[str]]:
    """The rows of the departures table for `profile`, and one warning per such row that still has a `todo`.

    A row lacking a required column is left out if it has a `todo` (it is
    being written) and is an error otherwise; a row with ``profiles`` is
    kept only for those parameter sets.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(Path(path).read_text()) or []
    except FileNotFoundError:
        raise UserError(f"{path} is missing; it lists every departure from the spec (see report/README.md).") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML ({str(error).splitlines()[0]}); fix the line it names.") from None
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise UserError(f"{path} must be a list of rows, each with the keys {', '.join(DEPARTURE_COLUMNS)}.")
    rows, warnings = [], []
    for number, row in enumerate(raw, 1):
        unknown = sorted(set(row) - set(DEPARTURE_COLUMNS) - {TODO, PROFILES})
        if unknown:
            raise UserError(f"{path}, row {number}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(DEPARTURE_COLUMNS)}, {PROFILES} and {TODO}.")
        only = row.get(PROFILES) or []
        if not isinstance(only, list):
            raise UserError(f"{path}, row {number}: {PROFILES} must be a list of parameter sets, e.g. [quick].")
        if only and profile is not None and profile not in only:
            continue
        text = {k: "" if row.get(k) is None else str(row[k]).strip() for k in DEPARTURE_COLUMNS}
        missing = [k for k in REQUIRED if not text[k]]
        if row.get(TODO):
            state = "left out of the PDF" if missing else "printed"
            warnings.append(f"{path.name}, row {number} (point {text['point'] or '?'}) is {state} and still has a todo: {row[TODO]}")
        if missing and not row.get(TODO):
            raise UserError(f"{path}, row {number}: no {', '.join(missing)}; fill it in or add a '{TODO}:' note to leave the row out.")
        if not missing:
            rows.append(text)
    return rows, warnings


def training_settings(config: TrainConfig) -> list[tuple[str, str]]:
    """(name, value) of every training setting; a changed value names the default beside it."""
    defaults = TrainConfig().to_dict()
    rows = []
    for name, value in config.to_dict().items():
        if name == "generator":  # the lab trains one run per generator with the same settings
            rows.append((name, ", ".join(GENERATOR_KINDS) + " (a run each)"))
            continue
        shown = f"`{value!r}`" if isinstance(value, str) else f"`{value}`"
        rows.append((name, shown if value == defaults[name] else f"{shown} (default `{defaults[name]!r}`)"))
    return rows


def _heading(title: str, text: str, fmt: str) -> list[NotebookNode]:
    """A section heading and its sentence; in LaTeX kept on the page of the table that follows."""
    if fmt != "latex":
        return [new_markdown_cell(f"## {title}\n\n{text}")]
    keep = new_raw_cell("\\Needspace*{12\\baselineskip}", metadata={"raw_mimetype": "text/latex"})
    return [keep, new_markdown_cell(f"## {title} {{.unnumbered}}\n\n{text}")]


def _table(header, rows, widths, fmt: str, size: str = "small") -> NotebookNode:
    if fmt == "latex":
        return new_raw_cell(latex_table(header, rows, widths, size=size), metadata={"raw_mimetype": "text/latex"})
    return new_markdown_cell(markdown_table(header, rows))


def _widths(header, rows, line_chars: int = 84) -> tuple[float, ...]:
    """Column widths from the content (:func:`~report.tables.content_widths`); 84 characters
    make a line of the small type of most front tables, 100 of the departures table's footnote size."""
    return content_widths(header, rows, line_chars)


def anchor_name(point: int, occurrence: int) -> str:
    """The label of the n-th heading (1-based) that names `point`."""
    return f"point-{point}" if occurrence == 1 else f"point-{point}-{occurrence}"


def _point_table(locations: dict[int, list[Location]], fmt: str) -> NotebookNode:
    rows = []
    for point, where in locations.items():
        for i, loc in enumerate(where):
            target = anchor_name(point, i + 1)
            label = str(point) if i == 0 else ""
            if fmt == "latex":
                rows.append((label, f"\\texttt{{{latex_escape(loc.stem)}}}",
                             f"\\hyperref[{target}]{{{latex_escape(loc.section)}}}", f"\\pageref{{{target}}}"))
            else:
                rows.append((label, f"`{loc.stem}`", f"[{loc.section}](#{target})"))
    if fmt == "latex":
        table = latex_table(("Point", "Notebook", "Section", "Page"), rows, (0.09, 0.17, 0.64, 0.10), raw_cells=True)
        return new_raw_cell(table, metadata={"raw_mimetype": "text/latex"})
    return new_markdown_cell(markdown_table(("Point", "Notebook", "Section"), rows))


def _code_rows() -> list[tuple[str, str, str]]:
    rows = []
    for point, places in CODE_MAP.items():
        for i, (module, names) in enumerate(places):
            rows.append((str(point) if i == 0 else "", f"`{module}`", ", ".join(f"`{n}`" for n in names)))
    return rows


def _pairs(rows: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    """Two (name, value) columns side by side: the first half of `rows` left, the rest right."""
    half = (len(rows) + 1) // 2
    left, right = rows[:half], rows[half:]
    return [(*a, *(right[i] if i < len(right) else ("", ""))) for i, a in enumerate(left)]


def title_rows(info: dict) -> list[tuple[str, str]]:
    """The (label, value) facts the title page prints: ``info["facts"]``, plus "Training figures" when only ``runs_source`` says it."""
    rows = list(info.get("facts") or [])
    if info.get("runs_source") and not any(label == "Training figures" for label, _ in rows):
        rows.append(("Training figures", info["runs_source"]))
    return rows


def title_facts(info: dict) -> str:
    """The title page's block of build facts as LaTeX: a two-column table, labels bold, values wrapped."""
    rows = title_rows(info)
    if not rows:
        return ""
    body = "\\\\\n".join(f"\\textbf{{{latex_escape(label)}}} & {latex_inline(value)}" for label, value in rows)
    return ("{\\small\\begin{tabular}{@{}>{\\raggedleft\\arraybackslash}p{0.22\\linewidth}"
            ">{\\raggedright\\arraybackslash}p{0.66\\linewidth}@{}}\n" + body + "\\\\\n\\end{tabular}\\par}")


def build_facts(info: dict) -> str:
    """The build's facts and every notebook parameter as plain text, for the build folder (authors, not graders)."""
    lines = [f"{label}: {value}" for label, value in title_rows(info)]
    lines += ["", "Notebook parameters (besides the training settings):"]
    lines += [f"  {stem.strip('`')}: {values.replace('`', '')}" for stem, values in info.get("parameters") or []]
    return "\n".join(lines) + "\n"


def front_matter(info: dict, locations: dict[int, list[Location]], fmt: str) -> list[NotebookNode]:
    """The opening chapter's cells (fmt 'latex' or 'html').

    `info` holds ``intro`` and optionally ``departures`` (rows of
    :func:`load_departures`) and ``settings`` (:func:`training_settings`);
    its ``facts`` are the title page's (:func:`title_facts`).
    """
    unnumbered = " {.unnumbered}" if fmt == "latex" else ""
    cells = [new_markdown_cell(f"# About this report{unnumbered}\n\n{info['intro']}")]
    cells += [*_heading("Where each lab point is answered", "Every point is answered under a heading that names it.", fmt),
              _point_table(locations, fmt)]
    if info.get("departures"):
        cells += [*_heading("Departures from the spec", "Every place where the lab's numbers or methods differ from "
                           "the exercise's; all else follows it as written.", fmt),
                  _table(tuple(DEPARTURE_COLUMNS.values()), [tuple(r.values()) for r in info["departures"]],
                         _widths(tuple(DEPARTURE_COLUMNS.values()), [tuple(r.values()) for r in info["departures"]], 100),
                         fmt, size="footnotesize")]
    cells += [*_heading("Where the code is", "The functions and classes of the package `gan_helpers` that implement "
                       "each point. The report prints the source of the networks, the training steps and loop, "
                       "inversion and interpolation; the rest is in the package and the notebooks.", fmt),
              _table(("Point", "Module", "Functions and classes"), _code_rows(),
                     _widths(("Point", "Module", "Functions and classes"), _code_rows()), fmt)]
    if info.get("settings"):
        settings = _pairs([(f"`{k}`", v) for k, v in info["settings"]])
        cells += [*_heading("Training settings", "Every setting of the training runs (`gan_helpers.runs.config.TrainConfig`), "
                           "the same for both generators; where the parameter set changes one, its default follows.", fmt),
                  _table(("Setting", "Value", "Setting", "Value"), settings, _widths(("Setting", "Value") * 2, settings), fmt)]
    return cells
