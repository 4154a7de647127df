"""The lab report: execute notebooks 01–06, merge them into one document, render report/lab_report.pdf.

    python -m gan_helpers report [--profile smoke|quick|full] [--data DIR]

The executed notebooks land in ``build/<profile>/``; the merged notebook and
the files of the rendering beside them in ``build/<profile>/report/``.
Rendering uses nbconvert's LaTeX exporter with report/templates and
xelatex; without xelatex it prints the HTML export with Chromium; without
either it says which packages to install.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_markdown_cell, new_raw_cell

from gan_helpers import notebooks as nbrun
from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT
from gan_helpers.paths import shown as _show

HELP = "Execute notebooks 01-06 with a parameter set and render the lab report (report/lab_report.pdf)."
REPORT_DIR = PROJECT_ROOT / "report"
TEMPLATE_DIR = REPORT_DIR / "templates"
CONFIG = REPORT_DIR / "config.yaml"
PDF = REPORT_DIR / "lab_report.pdf"
POINTS = range(1, 19)
CONFIG_KEYS = ("title", "author", "course")

HIDDEN_CELL_TAGS = {"parameters", "injected-parameters", "remove-cell", "papermill-error-cell-tag"}
WIDGET = "application/vnd.jupyter.widget-view+json"
CAPTION = re.compile(r"^\s*\*\*Figure \(Points? [^)]*\)\.?\*\*")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_POINTS = re.compile(r"\bPoints?\s+(\d+(?:\s*(?:[-–—]|to|,|and|&)\s*\d+)*)")
_NUMBER_PREFIX = re.compile(r"^\s*0*(\d+)\s*[—–:.·\-]\s*")
_REPR_JUNK = re.compile(r"^\[?<(?:matplotlib|Figure|Axes)[^>]*>(?:,\s*<[^>]*>)*\]?$|^Text\(.*\)$", re.S)
LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


@dataclass(frozen=True)
class Location:
    """Where a lab point is answered: notebook, its chapter title, and the heading."""

    point: int
    stem: str
    chapter: str
    section: str


# ---- reading the notebooks --------------------------------------------------------------------

def load_config(path: Path = CONFIG) -> dict:
    """Title, author and course of the title page, from report/config.yaml (all three required)."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"{path} is missing; create it with the fields {', '.join(CONFIG_KEYS)}.") from None
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    missing = [k for k in CONFIG_KEYS if not str(config.get(k) or "").strip()]
    if unknown or missing:
        problem = f"unknown field(s) {', '.join(unknown)}" if unknown else f"no {', '.join(missing)}"
        raise UserError(f"{path} has {problem}; it takes exactly the fields {', '.join(CONFIG_KEYS)}.")
    return {k: str(config[k]).strip() for k in CONFIG_KEYS}


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


def notebook_title(nb: nbformat.NotebookNode, stem: str) -> str:
    """The notebook's one level-1 heading, without a leading notebook number; else a title from its stem."""
    titles = [text for c in nb.cells if c.cell_type == "markdown" for _, level, text in markdown_headings(c.source) if level == 1]
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


# ---- cleaning and merging ---------------------------------------------------------------------

def _keep_output(output) -> bool:
    if output.output_type == "stream":
        return output.name != "stderr"
    data = output.get("data", {})
    if WIDGET in data:
        return False  # progress bars and other widgets: nothing to print
    if output.output_type == "execute_result" and set(data) == {"text/plain"}:
        return not _REPR_JUNK.match(data["text/plain"].strip())
    return True


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy fit for print: plumbing cells gone, tagged inputs/outputs hidden, widgets and stderr dropped."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if tags & HIDDEN_CELL_TAGS:
            continue
        if cell.cell_type == "code":
            seen_images = set()
            outputs = []
            for output in cell.get("outputs", []):
                image = output.get("data", {}).get("image/png")
                if not _keep_output(output) or (image and image in seen_images):
                    continue
                if image:
                    seen_images.add(image)
                outputs.append(output)
            cell.outputs = [] if "remove-output" in tags else outputs
            if "remove-input" in tags or not cell.source.strip():
                cell.metadata["transient"] = {"remove_source": True}
                if not cell.outputs:
                    continue
        elif cell.cell_type == "markdown":
            if not cell.source.strip():
                continue
            if CAPTION.match(cell.source):
                cell.metadata["tags"] = sorted(tags | {"figure-caption"})
        cells.append(cell)
    nb.cells = cells
    return nb


def anchor_name(point: int, occurrence: int) -> str:
    """The label of the n-th heading (1-based) that names `point`."""
    return f"point-{point}" if occurrence == 1 else f"point-{point}-{occurrence}"


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


def _attach_caption(cell, caption: str) -> bool:
    """Put a caption into the last figure of the code cell before it (one float in LaTeX); False if it has none."""
    if cell.cell_type != "code":
        return False
    figures = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    if not figures or figures[-1].get("metadata", {}).get("lab_caption"):
        return False
    figures[-1].setdefault("metadata", {})["lab_caption"] = caption
    return True


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in text)


def front_matter(info: dict, locations: dict[int, list[Location]], fmt: str) -> list:
    """The opening chapter: what was run on what, and where every lab point is answered."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in info["facts"])
    settings = "\n".join(f"| {k} | {v} |" for k, v in info.get("settings", []))
    settings = (f"## The parameter set{' {.unnumbered}' if fmt == 'latex' else ''}\n\n"
                "The parameters it sets, by notebook; all others keep the notebooks' defaults.\n\n"
                f"| Notebook | Parameters |\n|:--|:------|\n{settings}\n") if settings else ""
    cells = [new_markdown_cell(
        f"# About this report{' {.unnumbered}' if fmt == 'latex' else ''}\n\n"
        f"{info['intro']}\n\n| | |\n|:--|:--|\n{rows}\n"
    )]
    if fmt == "latex":
        lines = [r"\section*{Where each lab point is answered}\addcontentsline{toc}{section}{Where each lab point is answered}",
                 r"{\small\begin{longtable}{@{}r l p{0.62\linewidth} r@{}}",
                 r"\toprule Point & Notebook & Section & Page\\\midrule\endhead"]
        for point, where in locations.items():
            for i, loc in enumerate(where):
                target = anchor_name(point, i + 1)
                lines.append(
                    f"{point if i == 0 else ''} & \\texttt{{{latex_escape(loc.stem)}}} & "
                    f"\\hyperref[{target}]{{{latex_escape(loc.section)}}} & \\pageref{{{target}}}\\\\"
                )
        lines += [r"\bottomrule\end{longtable}}"]
        cells.append(new_raw_cell("\n".join(lines), metadata={"raw_mimetype": "text/latex"}))
    else:
        table = ["## Where each lab point is answered", "", "| Point | Notebook | Section |", "|--:|:--|:--|"]
        for point, where in locations.items():
            for i, loc in enumerate(where):
                table.append(f"| {point if i == 0 else ''} | `{loc.stem}` | [{loc.section}](#{anchor_name(point, i + 1)}) |")
        cells.append(new_markdown_cell("\n".join(table)))
    if settings:
        cells.append(new_markdown_cell(settings))
    return cells


def merge(notebooks: dict[str, nbformat.NotebookNode], info: dict, fmt: str = "latex") -> nbformat.NotebookNode:
    """One printable notebook: front matter, then one chapter per notebook (fmt: 'latex' or 'html').

    Each notebook's level-1 heading becomes its chapter; a notebook without
    exactly one gets a chapter heading and its headings move one level down.
    """
    cleaned = {stem: clean_notebook(nb) for stem, nb in notebooks.items()}
    locations = point_locations(cleaned)  # a point whose heading is hidden is not answered
    cells = front_matter(info, locations, fmt)
    seen: dict[int, int] = {}
    for number, (stem, nb) in enumerate(cleaned.items(), 1):
        level_ones = sum(1 for c in nb.cells if c.cell_type == "markdown" for _, lvl, _ in markdown_headings(c.source) if lvl == 1)
        demote = level_ones != 1
        title = notebook_title(nb, stem)
        heading = title if fmt == "latex" else f"{number}. {title}"
        cells.append(new_markdown_cell(f"# {heading}\n\n*From `notebooks/{stem}.ipynb`.*"))
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _prepare_markdown(cell.source, fmt, demote, not demote, seen)
                if not cell.source:
                    continue
                if fmt == "latex" and "figure-caption" in cell.metadata.get("tags", []) and _attach_caption(cells[-1], cell.source):
                    continue
            cells.append(cell)
    merged = nbformat.v4.new_notebook(cells=cells, metadata={"lab_report": {k: v for k, v in info.items() if k not in ("facts", "settings")}})
    if fmt == "html":
        html_front(merged, info)
    merged.metadata["kernelspec"] = nbrun.KERNELSPEC
    merged.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(merged.cells):
        cell["id"] = f"c{index:04d}"  # unique ids after copying cells from six notebooks
    return merged


def html_front(merged: nbformat.NotebookNode, info: dict) -> None:
    """Title page and table of contents for the HTML rendering (LaTeX makes its own)."""
    import html

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
    title = (f'<div class="title-page"><h1 class="title">{html.escape(info["title"])}</h1>'
             f'<p class="author">{html.escape(info["author"])}</p><p class="course">{html.escape(info["course"])}</p>'
             f'<p class="date">{html.escape(info["date"])}</p></div>'
             f'<div class="toc"><h2 class="toc-title">Contents</h2><ul>{toc}</ul></div>')
    merged.cells.insert(0, new_raw_cell(title, metadata={"raw_mimetype": "text/html"}))


# ---- rendering --------------------------------------------------------------------------------

CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MATHJAX = Path("/usr/share/javascript/mathjax/MathJax.js")
INSTALL_HINT = (
    "install xelatex with `sudo apt-get install texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc` "
    "(or Chromium with `sudo apt-get install chromium libjs-mathjax`)"
)


def choose_renderer(preferred: str = "auto") -> str:
    """'latex' (xelatex and pandoc present), else 'html' (Chromium present); a UserError when neither is."""
    latex = bool(shutil.which("xelatex") and shutil.which("pandoc"))
    chromium = any(shutil.which(name) for name in CHROMIUMS)
    if preferred == "latex" and not latex:
        raise UserError(f"the LaTeX renderer needs xelatex and pandoc, which are not installed; {INSTALL_HINT}.")
    if preferred == "html" and not chromium:
        raise UserError("the HTML renderer needs Chromium, which is not installed; install it with `sudo apt-get install chromium libjs-mathjax`.")
    if preferred in ("latex", "html"):
        return preferred
    if latex:
        return "latex"
    if chromium:
        return "html"
    raise UserError(f"no PDF renderer found (neither xelatex nor Chromium is installed); {INSTALL_HINT}.")


def render_pdf(merged: nbformat.NotebookNode, pdf: Path, build_dir: Path, renderer: str = "latex") -> Path:
    """Render a merged notebook to `pdf` (A4) and return it; never returns without a non-empty file."""
    build_dir.mkdir(parents=True, exist_ok=True)
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    made = _render_latex(merged, build_dir) if renderer == "latex" else _render_html(merged, build_dir)
    if not made.is_file() or made.stat().st_size == 0:
        raise UserError(f"the {renderer} renderer produced no PDF in {build_dir}; see the files there for the cause.")
    if made.resolve() != pdf.resolve():
        shutil.copyfile(made, pdf)
    return pdf


def _render_latex(merged: nbformat.NotebookNode, build_dir: Path) -> Path:
    from nbconvert import LatexExporter

    exporter = LatexExporter(template_file=str(TEMPLATE_DIR / "lab_report.tex.j2"))
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, resources = exporter.from_notebook_node(
        merged, resources={"metadata": {"name": "lab_report", "path": str(build_dir)}, "output_files_dir": "figures"}
    )
    for name, data in resources.get("outputs", {}).items():
        (build_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (build_dir / name).write_bytes(data)
    tex = build_dir / "lab_report.tex"
    tex.write_text(body)
    log = build_dir / "lab_report.log"
    _xelatex(tex)
    missing = _missing_characters(log)
    if missing and FALLBACK_MARK in body:  # set them in the fallback font and start again
        lines = "".join(f'\\newunicodechar{{{c}}}{{\\labchar{{"{ord(c):04X}}}}}\n' for c in missing)
        tex.write_text(body.replace(FALLBACK_MARK, FALLBACK_MARK + "\n" + lines, 1))
        _xelatex(tex)
    for _ in range(2):  # contents and page references need the previous pass's .aux
        _xelatex(tex)
        text = log.read_text(errors="replace")
        if "Rerun to get" not in text and "may have changed" not in text:
            break
    missing = _missing_characters(log)
    if missing:
        print(f"warning: no font has {' '.join(missing)}; those characters are missing from the PDF (see {_show(log)}).")
    return build_dir / "lab_report.pdf"


FALLBACK_MARK = "% lab-report: fallback characters"


def _xelatex(tex: Path) -> None:
    result = subprocess.run(
        ["xelatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", tex.name],
        cwd=tex.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
    )
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if line.startswith("!") or ".tex:" in line]
        first = errors[0].strip() if errors else f"exit status {result.returncode}"
        raise UserError(f"xelatex could not typeset {_show(tex)} ({first}); the full log is {_show(tex.with_suffix('.log'))}.")


def _missing_characters(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return sorted(set(re.findall(r"Missing character: There is no (.) ", text)))


def _render_html(merged: nbformat.NotebookNode, build_dir: Path) -> Path:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_file=str(TEMPLATE_DIR / "lab_report.html.j2"))
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.mathjax_url = f"{MATHJAX.as_uri()}?config=TeX-AMS_CHTML" if MATHJAX.is_file() else ""
    body, _ = exporter.from_notebook_node(merged, resources={"metadata": {"name": "lab_report", "path": str(build_dir)}})
    page = build_dir / "lab_report.html"
    page.write_text(body)
    pdf = build_dir / "lab_report.pdf"
    pdf.unlink(missing_ok=True)
    browser = next(shutil.which(name) for name in CHROMIUMS if shutil.which(name))
    with tempfile.TemporaryDirectory(prefix="lab-report-chromium-") as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--allow-file-access-from-files",
            "--no-pdf-header-footer", "--virtual-time-budget=30000", "--run-all-compositor-stages-before-draw",
            f"--print-to-pdf={pdf}", page.as_uri(),
        ]
        try:
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", timeout=300)
        except subprocess.TimeoutExpired:
            raise UserError(f"Chromium did not finish printing {_show(page)} within 5 minutes; open the HTML file to check it.") from None
    (build_dir / "chromium.log").write_text(result.stdout)
    if result.returncode != 0 or not pdf.is_file():
        raise UserError(f"Chromium could not print {_show(page)} (exit status {result.returncode}); its output is in {_show(build_dir / 'chromium.log')}.")
    return pdf


# ---- the whole job ----------------------------------------------------------------------------

def read_executed(folder: Path) -> dict[str, nbformat.NotebookNode]:
    """The executed notebooks 01–06 in `folder`, in order."""
    found = {}
    for stem in nbrun.NOTEBOOKS:
        path = folder / f"{stem}.ipynb"
        if not path.is_file():
            raise UserError(f"{_show(path)} is missing; run the report without --render-only first to execute the notebooks.")
        found[stem] = nbformat.read(path, as_version=4)
    return found


def report_info(profile: str, executed: dict[str, nbformat.NotebookNode], config: dict | None = None) -> dict:
    """Title page fields and the facts stated once up front: parameter set, data, device, date."""
    import torch

    from gan_helpers.summary import count_images

    config = config or load_config()
    used = {stem: dict(nb.metadata.get("papermill", {}).get("parameters", {})) for stem, nb in executed.items()}
    defaults = {stem: nbrun.notebook_parameters(nbrun.notebook_path(stem)) if nbrun.notebook_path(stem).is_file() else {} for stem in executed}
    data = sorted({str(v.get("data", defaults[s].get("data"))) for s, v in used.items() if "data" in v or "data" in defaults[s]} - {"None"})
    runs_dirs = sorted({str(v.get("runs_dir", defaults[s].get("runs_dir"))) for s, v in used.items() if "runs_dir" in v or "runs_dir" in defaults[s]} - {"None"})
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    now = _dt.datetime.now()
    data_text = "; ".join(f"`{d}` ({_count(count_images(d))})" for d in data) or "none"
    settings = [(f"`{stem}`", ", ".join(f"{k} = {_literal(v)}" for k, v in values.items())) for stem, values in used.items() if values]
    facts = [
        ("Parameter set", f"**{profile}** (`notebooks/params/{profile}.yaml`)"),
        ("Data set", data_text),
        ("Training runs", ", ".join(f"`{r}`" for r in runs_dirs) or "none"),
        ("Device", f"{device}, torch {torch.__version__}"),
        ("Built", f"{now:%Y-%m-%d %H:%M}{_commit()}"),
    ]
    intro = (
        f"This report is the six lab notebooks, executed in order with the **{profile}** parameter set and merged: "
        "one chapter per notebook, code and output as they ran. Every lab point is answered under a heading that "
        "names it (\"Point N\"); the table below lists where."
    )
    return {**config, "date": f"{now:%d %B %Y}", "profile": profile, "facts": facts, "settings": settings, "intro": intro}


def _literal(value) -> str:
    return f"`{value!r}`".replace("|", "\\|")


def build(profile: str, data: str | None = None, *, render_only: bool = False, renderer: str = "auto", pdf: Path = PDF) -> Path:
    """Execute the notebooks (unless `render_only`), merge them and render `pdf`."""
    started = time.perf_counter()
    renderer = choose_renderer(renderer)  # before an hour of notebooks, not after
    config = load_config()
    out = PROJECT_ROOT / "build" / profile
    if not render_only:
        sources = {stem: nbformat.read(nbrun.notebook_path(stem), as_version=4) for stem in nbrun.NOTEBOOKS if nbrun.notebook_path(stem).is_file()}
        if len(sources) == len(nbrun.NOTEBOOKS):
            point_locations({s: clean_notebook(nb) for s, nb in sources.items()})  # fail now, not after the run
        nbrun.ensure_default_data(profile, data)
        nbrun.execute(profile, out, data=data)
    executed = read_executed(out)
    merged = merge(executed, report_info(profile, executed, config), fmt=renderer)
    build_dir = out / "report"
    build_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(merged, build_dir / "lab_report.ipynb")
    print(f"Rendering {_show(pdf)} with {'xelatex' if renderer == 'latex' else 'Chromium'} …", flush=True)
    pdf = render_pdf(merged, pdf, build_dir, renderer)
    print(f"Report: {_show(pdf)} ({_pages(pdf)}{pdf.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s", flush=True)
    return pdf


def _count(n: int | None) -> str:
    return "folder missing" if n is None else f"{n} images"


def _commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return f", commit {result.stdout.strip()}" if result.returncode == 0 and result.stdout.strip() else ""


def _pages(pdf: Path) -> str:
    if not shutil.which("pdfinfo"):
        return ""
    result = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True)
    m = re.search(r"^Pages:\s+(\d+)", result.stdout, re.M)
    return f"{m.group(1)} pages, " if m else ""


# ---- command line (python -m gan_helpers report) ----------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="", help="parameter set: smoke, quick or full (default: $PROFILE, else full on a GPU, quick otherwise)")
    parser.add_argument("--data", default=None, help="image folder for every notebook's `data` parameter (default: the parameter set's)")
    parser.add_argument("--render-only", action="store_true", help="skip execution; render from the executed notebooks in build/PROFILE/")
    parser.add_argument("--renderer", choices=["auto", "latex", "html"], default="auto", help="latex (xelatex), html (Chromium) or auto: latex when installed")
    parser.add_argument("--pdf", default=str(PDF), help="where to write the PDF (default: report/lab_report.pdf)")


def run(args: argparse.Namespace) -> int:
    profile = nbrun.resolve_profile(args.profile)
    data = nbrun.data_argument(args.data) if args.data else None
    build(profile, data, render_only=args.render_only, renderer=args.renderer, pdf=Path(args.pdf).resolve())
    return 0
