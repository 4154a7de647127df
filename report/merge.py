"""Merging the cleaned notebooks into one printable notebook: front matter, then one chapter per notebook.

Each notebook's level-1 heading becomes its chapter and its ``##`` headings
its sections; every "Point N" heading gets an anchor for the point table;
a ``**Figure (Point N).** …`` line becomes the caption of the figure above it.
"""

from __future__ import annotations

import html
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell, new_raw_cell

from report.notebooks import KERNELSPEC
from report.cleaning import CAPTION, clean_notebook, unlisted_definitions
from report.front import anchor_name, front_matter, title_facts, title_rows
from report.observations import place_observations, unquoted_numbers
from report.reading import (
    LANGUAGES, level_one_titles, markdown_headings, notebook_title, point_locations, points_in,
)
from report.tables import widen_headers

# Keys of the merged notebook's metadata.lab_report, which the templates read.
TITLE_KEYS = ("title", "author", "course", "date", "language", "profile", "runs_source", "title_facts")


def _prepare_markdown(source: str, fmt: str, demote: bool, drop_title: bool, seen: dict[int, int]) -> str:
    """Demote headings by one level if asked, drop the level-1 title if asked, anchor every point heading.

    `seen` counts the headings per point so far, so a point answered in two
    places gets two distinct anchors, in the order :func:`point_locations` lists them.
    """
    lines = source.splitlines()
    planned = []
    for number, level, text in markdown_headings(source):
        names = []
        for point in points_in(text):
            seen[point] = seen.get(point, 0) + 1
            names.append(anchor_name(point, seen[point]))
        planned.append((number, level, text, names))
    for number, level, text, names in reversed(planned):
        anchors = [f"\\label{{{n}}}" if fmt == "latex" else f'<a id="{n}"></a>' for n in names]
        if drop_title and level == 1:
            lines[number:number + 1] = anchors
            continue
        if demote:
            lines[number] = "#" * min(level + 1, 6) + " " + text
        if anchors:
            lines[number + 1:number + 1] = ["", *anchors, ""]
    return "\n".join(lines).strip()


def split_caption(source: str) -> tuple[str, str]:
    """('Point 7', 'The caption text as one paragraph') from a '**Figure (Point 7).** …' line."""
    m = CAPTION.match(source)
    text = " ".join(source[m.end():].split()) if m else " ".join(source.split())
    return (m.group(1) if m else ""), text


def _attach_caption(cell, caption: str) -> bool:
    """Make the last figure of the code cell before the caption one float with it; False if it has none."""
    if cell.cell_type != "code":
        return False
    figures = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    if not figures or figures[-1].get("metadata", {}).get("lab_caption"):
        return False
    label, text = split_caption(caption)
    figures[-1].setdefault("metadata", {}).update(lab_caption=text, lab_caption_label=label)
    return True


def _widen_tables(cell) -> None:
    """Column widths by which no table header wraps, in markdown cells and markdown outputs."""
    if cell.cell_type == "markdown":
        cell.source = widen_headers(cell.source)
    for output in cell.get("outputs", []):
        if "text/markdown" in output.get("data", {}):
            output["data"]["text/markdown"] = widen_headers(output["data"]["text/markdown"])


def merge(notebooks: dict[str, nbformat.NotebookNode], info: dict, fmt: str = "latex",
          notes: list[str] | None = None, observations: Path | None = None) -> nbformat.NotebookNode:
    """One printable notebook (fmt 'latex' or 'html'); what was left out on purpose is added to `notes`.

    A notebook without exactly one level-1 heading gets a chapter heading from
    its file name and its headings move one level down. `observations`, a
    shipped result's observations.md, fills the "Observations (Point N)"
    cells (:mod:`~report.observations`).
    """
    notes = [] if notes is None else notes
    cleaned = {stem: clean_notebook(nb, stem, notes) for stem, nb in notebooks.items()}
    locations = point_locations(cleaned)  # a point whose heading is hidden is not answered
    cells = front_matter(info, locations, fmt)
    seen: dict[int, int] = {}
    for number, (stem, nb) in enumerate(cleaned.items(), 1):
        demote = len(level_one_titles(nb)) != 1
        title = notebook_title(nb, stem)
        cells.append(new_markdown_cell(f"# {title if fmt == 'latex' else f'{number}. {title}'}"))
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _prepare_markdown(cell.source, fmt, demote, not demote, seen)
                if not cell.source:
                    continue
                if fmt == "latex" and "figure-caption" in cell.metadata.get("tags", []) and _attach_caption(cells[-1], cell.source):
                    continue
            if fmt == "latex":
                _widen_tables(cell)
            cells.append(cell)
    title = {**info, "title_facts": title_facts(info) if fmt == "latex" else ""}  # LaTeX, made by title_facts alone
    merged = nbformat.v4.new_notebook(cells=cells, metadata={"lab_report": {k: title.get(k) or "" for k in TITLE_KEYS}})
    notes += place_observations(merged, observations)
    notes += [f"observations, point {point}: {number} is not a value this build computed in that notebook; "
              f"quote the number the report shows, or leave it out" for point, number in unquoted_numbers(merged)]
    notes += [f"printed code defines {name}, which is not in cleaning.PRINTED" for name in unlisted_definitions(merged)]
    if fmt == "html":
        html_front(merged, info)
    merged.metadata["kernelspec"] = KERNELSPEC
    merged.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(merged.cells):
        cell["id"] = f"c{index:04d}"  # unique ids after copying cells from six notebooks
    return merged


def html_front(merged: nbformat.NotebookNode, info: dict) -> None:
    """Title page and table of contents for the HTML rendering (LaTeX makes its own)."""
    entries = []
    for cell in merged.cells:
        if cell.cell_type != "markdown":
            continue
        placed = []
        for number, level, text in markdown_headings(cell.source):
            if level <= 2:
                placed.append((number, f"toc-{len(entries)}"))
                entries.append((level, text, placed[-1][1]))
        lines = cell.source.splitlines()
        for number, anchor in reversed(placed):
            lines[number + 1:number + 1] = ["", f'<a id="{anchor}"></a>', ""]
        cell.source = "\n".join(lines)
    toc = "".join(f'<li class="toc-{level}"><a href="#{anchor}">{html.escape(text)}</a></li>' for level, text, anchor in entries)
    lines = [f'<h1 class="title">{html.escape(info["title"])}</h1>']
    lines += [f'<p class="{key}">{html.escape(info[key])}</p>' for key in ("author", "course") if info.get(key)]
    lines.append(f'<p class="date">{html.escape(info["date"])}</p>')
    facts = title_rows(info) or [("Parameter set", info["profile"])]
    lines += [f'<p class="profile"><b>{html.escape(label)}</b>: {html.escape(value.replace("`", ""))}</p>' for label, value in facts]
    lang = LANGUAGES.get(info.get("language") or "english", "en")
    title = (f'<div class="title-page" lang="{lang}">{"".join(lines)}</div>'
             f'<div class="toc"><h2 class="toc-title">Contents</h2><ul>{toc}</ul></div>')
    merged.cells.insert(0, new_raw_cell(title, metadata={"raw_mimetype": "text/html"}))
