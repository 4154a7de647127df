"""Reading what the report is made of: the title page settings and the executed notebooks.

Where each lab point is answered comes from the notebooks' markdown headings
("## Point 7 — …"), so the point table can never disagree with the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT
from gan_helpers.paths import shown as _show
from gan_helpers.runs.parameter_sets import NOTEBOOKS

REPORT_DIR = PROJECT_ROOT / "report"
CONFIG = REPORT_DIR / "config.yaml"
POINTS = range(1, 19)
# Title page settings: title is required; an empty author or course leaves its line out,
# an empty date means the build date.
CONFIG_KEYS = ("title", "author", "course", "date", "language")
# Languages the title page may name (polyglossia's names) and their HTML codes.
LANGUAGES = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it", "dutch": "nl",
             "polish": "pl", "portuguese": "pt", "czech": "cs", "swedish": "sv"}

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_POINTS = re.compile(r"\bPoints?\s+(\d+(?:\s*(?:[-–—]|to|,|and|&)\s*\d+)*)")
_NUMBER_PREFIX = re.compile(r"^\s*0*(\d+)\s*[—–:.·\-]\s*")


@dataclass(frozen=True)
class Location:
    """Where a lab point is answered: notebook, its chapter title, and the heading."""

    point: int
    stem: str
    chapter: str
    section: str


def load_config(path: Path = CONFIG) -> dict[str, str]:
    """The title page settings of report/config.yaml: every key of CONFIG_KEYS, as text."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"{path} is missing; create it with the fields {', '.join(CONFIG_KEYS)}.") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML ({str(error).splitlines()[0]}); fix the line it names.") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} must map the fields {', '.join(CONFIG_KEYS)} to text.")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise UserError(f"{path} has unknown field(s) {', '.join(unknown)}; its fields are {', '.join(CONFIG_KEYS)}.")
    values = {k: "" if config.get(k) is None else str(config[k]).strip() for k in CONFIG_KEYS}
    if not values["title"]:
        raise UserError(f"{path} has no title; set `title:` to the report's title.")
    values["language"] = values["language"].lower() or "english"
    if values["language"] not in LANGUAGES:
        raise UserError(f"{path}: language {values['language']!r} is not one of {', '.join(LANGUAGES)}; use one of those names.")
    return values


def markdown_headings(source: str) -> list[tuple[int, int, str]]:
    """(line number, level, text) of every ATX heading outside fenced code blocks."""
    found, fence = [], None
    for number, line in enumerate(source.splitlines()):
        m = _FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)[0]
            elif m.group(1)[0] == fence:
                fence = None
            continue
        if fence is None and (h := _HEADING.match(line)):
            found.append((number, len(h.group(1)), h.group(2)))
    return found


def points_in(text: str) -> list[int]:
    """Lab point numbers a heading names: 'Point 7', 'Points 13–16', 'Points 13, 14 and 15'."""
    numbers = []
    for m in _POINTS.finditer(text):
        tokens = re.findall(r"\d+|[-–—]|to", m.group(1))
        i = 0
        while i < len(tokens):
            if i + 2 < len(tokens) and tokens[i + 1] in ("-", "–", "—", "to"):
                numbers += range(int(tokens[i]), int(tokens[i + 2]) + 1)
                i += 3
            else:
                if tokens[i].isdigit():
                    numbers.append(int(tokens[i]))
                i += 1
    return sorted(set(numbers), key=numbers.index)


def level_one_titles(nb: nbformat.NotebookNode) -> list[str]:
    """The texts of the notebook's level-1 headings, in order."""
    return [text for c in nb.cells if c.cell_type == "markdown" for _, level, text in markdown_headings(c.source) if level == 1]


def notebook_title(nb: nbformat.NotebookNode, stem: str) -> str:
    """The notebook's one level-1 heading, without a leading notebook number; else a title from its stem."""
    titles = level_one_titles(nb)
    title = titles[0] if len(titles) == 1 else stem.split("_", 1)[-1].replace("_", " ").capitalize()
    m = _NUMBER_PREFIX.match(title)
    return title[m.end():] if m and int(m.group(1)) == int(stem.split("_")[0]) else title


def point_locations(notebooks: dict[str, nbformat.NotebookNode]) -> dict[int, list[Location]]:
    """Where points 1–18 are answered, from the "Point N" headings of the notebooks' markdown cells.

    Raises a UserError naming every point no heading mentions.
    """
    found: dict[int, list[Location]] = {p: [] for p in POINTS}
    for stem, nb in notebooks.items():
        chapter = notebook_title(nb, stem)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for _, _, text in markdown_headings(cell.source):
                for point in points_in(text):
                    if point in found:
                        found[point].append(Location(point, stem, chapter, text))
    missing = [p for p, where in found.items() if not where]
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise UserError(
            f"lab point(s) {names} are answered nowhere: no markdown heading in notebooks "
            f"{', '.join(notebooks)} contains 'Point {missing[0]}'; add a heading such as '## Point {missing[0]} — …' where it is answered."
        )
    return found


def read_executed(folder: Path) -> dict[str, nbformat.NotebookNode]:
    """The executed notebooks 01–06 in `folder`, in order."""
    found = {}
    for stem in NOTEBOOKS:
        path = Path(folder) / f"{stem}.ipynb"
        if not path.is_file():
            raise UserError(f"{_show(path)} is missing; run the report without --render-only first to execute the notebooks.")
        found[stem] = nbformat.read(path, as_version=4)
    return found
