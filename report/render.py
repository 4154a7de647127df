"""Rendering a merged notebook to an A4 PDF: nbconvert + xelatex, or nbconvert's HTML printed by Chromium.

Both templates live in report/templates (see report/README.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat

from gan_helpers.storage.atomic import atomic_copy
from gan_helpers.errors import UserError
from gan_helpers.paths import shown as _show
from report.reading import REPORT_DIR

TEMPLATE_DIR = REPORT_DIR / "templates"
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MATHJAX = Path("/usr/share/javascript/mathjax/MathJax.js")
INSTALL_HINT = (
    "install xelatex with `sudo apt-get install texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc` "
    "(or Chromium with `sudo apt-get install chromium libjs-mathjax`)"
)
FALLBACK_MARK = "% lab-report: fallback characters"


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
    """Render a merged notebook to `pdf` (A4) and return it; never returns without a whole PDF there.

    The renderer writes into `build_dir`; `pdf` is replaced (atomically, from a
    temporary file beside it) only by a PDF that is whole, so a failed build
    leaves the previous `pdf` as it was.
    """
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    made = _render_latex(merged, build_dir) if renderer == "latex" else _render_html(merged, build_dir)
    if not made.is_file() or made.stat().st_size == 0:
        raise UserError(f"the {renderer} renderer produced no PDF in {build_dir}; see the files there for the cause.")
    if not is_whole_pdf(made):
        raise UserError(f"the {renderer} renderer left a PDF without its end in {_show(made)}; see the files in "
                        f"{_show(build_dir)} for the cause ({_show(pdf)} was left as it was).")
    if made.resolve() != pdf.resolve():
        atomic_copy(made, pdf)  # a temporary file beside `pdf`, renamed over it once complete
    return pdf


def is_whole_pdf(path: Path) -> bool:
    """Whether `path` starts as a PDF and ends with the end-of-file marker that a complete PDF writer writes last."""
    with open(path, "rb") as f:
        head = f.read(5)
        f.seek(max(0, path.stat().st_size - 1024))
        tail = f.read()
    return head == b"%PDF-" and b"%%EOF" in tail


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


# TeX reads and writes files and may run programs; the report's text comes partly from outside the project
# (observations, data-set names), so xelatex runs without shell escape and may read and write only files in the
# build folder and the TeX installation (kpathsea's 'paranoid' level: no absolute paths, no '..', no dot files).
XELATEX_ENV = {"openin_any": "p", "openout_any": "p", "shell_escape": "f"}
XELATEX_FLAGS = ("-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error")


def _xelatex(tex: Path) -> None:
    result = subprocess.run(
        ["xelatex", *XELATEX_FLAGS, tex.name], env={**os.environ, **XELATEX_ENV},
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
