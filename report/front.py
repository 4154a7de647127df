"""The report's front matter: where each point is answered, every departure from the spec in one line.

The facts of the build (parameter set, data, where the figures come from,
machine, commit, time) go on the title page (:func:`title_facts`), in words;
then one chapter before the notebooks: the table "point → notebook →
section → page" and the departures from the spec, a short row each (read
from report/departures.yaml, which the lab's authors keep with the long
reasons and measurements). The training settings and the notebooks'
parameters go to the build folder (:func:`build_facts`), not the PDF.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell, new_raw_cell

from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.errors import UserError
from report.reading import REPORT_DIR, Location
from report.tables import content_widths, latex_escape, latex_inline, latex_table, markdown_table

DEPARTURES = REPORT_DIR / "departures.yaml"
DEPARTURE_COLUMNS = {"point": "Point", "spec": "The spec says", "lab": "The lab does", "why": "Why", "evidence": "Evidence"}
REQUIRED = ("point", "spec", "lab", "why")
SHORT = "short"  # [what, why, evidence], one line each: the PDF's row (the long columns stay in the file)
SHORT_COLUMNS = ("Point", "Departure", "Why", "Evidence")
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
        unknown = sorted(set(row) - set(DEPARTURE_COLUMNS) - {TODO, PROFILES, SHORT})
        if unknown:
            raise UserError(f"{path}, row {number}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(DEPARTURE_COLUMNS)}, "
                            f"{SHORT}, {PROFILES} and {TODO}.")
        short = row.get(SHORT)
        if short is not None and not (isinstance(short, list) and len(short) == 3 and all(isinstance(v, str) and v.strip() for v in short)):
            raise UserError(f"{path}, row {number}: {SHORT} must be a list of three short texts: [what, why, evidence].")
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
            rows.append({**text, SHORT: tuple(v.strip() for v in short) if short else short_form(text)})
    return rows, warnings


def _first_sentence(text: str) -> str:
    """The text up to the end of its first sentence (a full stop or semicolon followed by a space)."""
    cut = min([i + 1 for i in (text.find(". "), text.find("; ")) if i >= 0] or [len(text)])
    return text[:cut].rstrip(".;")


def short_form(row: dict[str, str]) -> tuple[str, str, str]:
    """(what, why, evidence) of a row without a ``short``: the first sentence of its lab, why and evidence."""
    return _first_sentence(row["lab"]), _first_sentence(row["why"]), _first_sentence(row.get("evidence", ""))


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


def _heading(title: str, text: str, fmt: str, lines: int = 12) -> list[NotebookNode]:
    """A section heading and its sentence; in LaTeX kept on the page of the table that follows (`lines` of it at least)."""
    if fmt != "latex":
        return [new_markdown_cell(f"## {title}\n\n{text}")]
    keep = new_raw_cell(f"\\Needspace*{{{lines}\\baselineskip}}", metadata={"raw_mimetype": "text/latex"})
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
    """Point → section → page. In LaTeX three groups side by side (the section by its number, linked), a few
    rows in all: the contents name the chapters, and this table the sections."""
    rows = []
    for point, where in locations.items():
        for i, loc in enumerate(where):
            target = anchor_name(point, i + 1)
            label = str(point) if i == 0 else ""
            if fmt == "latex":
                rows.append((label, f"\\hyperref[{target}]{{\\ref*{{{target}}} {latex_escape(_short_section(loc.section))}}}",
                             f"\\pageref{{{target}}}"))
            else:
                rows.append((label, f"`{loc.stem}`", f"[{loc.section}](#{target})"))
    if fmt == "latex":
        third = -(-len(rows) // 3)
        groups = [rows[i * third:(i + 1) * third] for i in range(3)]
        side = [tuple(c for g in groups for c in (g[r] if r < len(g) else ("", "", ""))) for r in range(third)]
        table = latex_table(("#", "Section", "p.") * 3, side, (0.045, 0.24, 0.048) * 3, size="footnotesize", raw_cells=True)
        return new_raw_cell(table, metadata={"raw_mimetype": "text/latex"})
    return new_markdown_cell(markdown_table(("Point", "Notebook", "Section"), rows))


def _short_section(section: str) -> str:
    """A section heading without its "Point N —" and after its first colon: "Point 13 — inverting the generator: from
    random noise …" -> "inverting the generator"."""
    text = section.split(" — ", 1)[-1] if " — " in section else section
    return text.split(":", 1)[0].split(",", 1)[0].strip()


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
    if info.get("run_folders"):
        lines.append(f"Training runs: {info['run_folders']}")
    lines += ["", "Training settings (TrainConfig; a changed value names its default):"]
    lines += [f"  {name}: {value.replace('`', '')}" for name, value in info.get("settings") or []]
    lines += ["", "Notebook parameters (besides the training settings):"]
    lines += [f"  {stem.strip('`')}: {values.replace('`', '')}" for stem, values in info.get("parameters") or []]
    return "\n".join(lines) + "\n"


def _filled(text: str, fills: dict[str, str]) -> str:
    for placeholder, value in fills.items():
        text = text.replace(placeholder, value)
    return text


def front_matter(info: dict, locations: dict[int, list[Location]], fmt: str) -> list[NotebookNode]:
    """The opening chapter's cells (fmt 'latex' or 'html').

    `info` holds ``intro`` and optionally ``departures`` (rows of
    :func:`load_departures`); its ``facts`` are the title page's (:func:`title_facts`).
    """
    unnumbered = " {.unnumbered}" if fmt == "latex" else ""
    cells = [new_markdown_cell(f"# About this report{unnumbered}\n\n{info['intro']}")]
    rows = -(-sum(len(where) for where in locations.values()) // 3)  # the LaTeX table's rows (three groups side by side)
    cells += [*_heading("Where each lab point is answered", "Every point is answered under a heading that names it.", fmt,
                        lines=2 * rows + 6), _point_table(locations, fmt)]  # the table kept whole: a row holds up to two lines
    if info.get("departures"):
        fills = {"{schedule}": info.get("schedule") or "many hours per run",  # the estimate the shipped records give
                 "{averaging}": info.get("averaging") or "the SWD curves of G and G_ema"}  # their G_ema against G
        rows = [(r["point"], *(_filled(text, fills) for text in r[SHORT])) for r in info["departures"]]
        cells += [*_heading("Departures from the spec", "Where the lab's numbers or methods differ from the exercise's, "
                           "in one line each; all else follows the exercise as written.", fmt),
                  _table(SHORT_COLUMNS, rows, _widths(SHORT_COLUMNS, rows, 100), fmt, size="footnotesize")]
    return cells
