"""Checks of the rendered PDF as a grader meets it: sharp images, no empty pages, every point, a bounded length.

    python -m report.pdfcheck report/lab_report.pdf                 # the limit of the profile its title page names
    python -m report.pdfcheck report/lab_report.pdf --max-pages 20  # an explicit limit

Reads the PDF with poppler-utils (``pdfimages``, ``pdftotext``, ``pdfinfo``)
and prints one line per problem, exit status 1 when there is any:

- every embedded raster image is at MIN_PPI or more (sample grids enlarged
  without smoothing, not blurred on the page);
- no page but the title page has fewer than MIN_WORDS words and no image
  (the text of a vector figure counts: its labels and tick numbers);
- every lab point 1–18 is named ("Point N");
- at most as many pages as its parameter set allows (:data:`MAX_PAGES`: the
  smoke report 20, the full one 26, about 24 meant), the set read from the
  title page's "Parameter set" line unless ``--max-pages`` gives the limit.

`make report PROFILE=smoke` in CI (``.ci/run``) runs it on its PDF.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_PPI = 200
MIN_WORDS = 40
MAX_PAGES = {"smoke": 20, "quick": 26, "full": 26}  # pages per parameter set; the full report aims at about 24
DEFAULT_MAX_PAGES = 26  # a PDF whose title page names no known parameter set
POINTS = range(1, 19)
TOOLS = ("pdfimages", "pdftotext", "pdfinfo")


@dataclass(frozen=True)
class Image:
    """One embedded image as ``pdfimages -list`` reports it."""

    page: int
    width: int
    height: int
    x_ppi: float
    y_ppi: float


def missing_tools() -> list[str]:
    """The poppler-utils programs the checks need that are not installed."""
    return [tool for tool in TOOLS if not shutil.which(tool)]


def images(pdf: Path) -> list[Image]:
    """Every raster image of `pdf` (soft masks left out: they share their image's placement)."""
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    found = []
    for line in listing.splitlines()[2:]:
        cells = line.split()
        if len(cells) >= 14 and cells[2] == "image":
            found.append(Image(int(cells[0]), int(cells[3]), int(cells[4]), float(cells[12]), float(cells[13])))
    return found


def page_texts(pdf: Path) -> list[str]:
    """The text of every page of `pdf`, in order."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def page_count(pdf: Path) -> int | None:
    """Pages of `pdf` by pdfinfo; None where it is not installed or cannot read the file (the build's message)."""
    if not shutil.which("pdfinfo"):
        return None
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    m = re.search(r"^Pages:\s+(\d+)", info, re.M)
    return int(m.group(1)) if m else None


def profile_of(pdf: Path) -> str | None:
    """The parameter set the title page (page 1) names on its "Parameter set" line, or None."""
    texts = page_texts(Path(pdf))
    m = re.search(r"Parameter set\s+([\w-]+)", texts[0] if texts else "")
    return m.group(1) if m else None


def page_limit(pdf: Path) -> tuple[int, str]:
    """(the most pages `pdf` may have, what the limit is for) by the parameter set its title page names."""
    profile = profile_of(pdf)
    if profile in MAX_PAGES:
        return MAX_PAGES[profile], f"the {profile} report's limit"
    return DEFAULT_MAX_PAGES, "the limit for a report whose title page names no known parameter set"


def problems(pdf: Path, *, min_ppi: float = MIN_PPI, min_words: int = MIN_WORDS, max_pages: int | None = None,
             points: range = POINTS) -> list[str]:
    """One sentence per thing the PDF gets wrong by the rules of this module; empty when it passes.

    `max_pages` None takes the limit of the parameter set the title page names (:func:`page_limit`).
    """
    pdf = Path(pdf)
    found = []
    placed = images(pdf)
    for image in placed:
        if min(image.x_ppi, image.y_ppi) < min_ppi:
            found.append(f"page {image.page}: a {image.width}×{image.height} image prints at "
                         f"{min(image.x_ppi, image.y_ppi):.0f} ppi, below {min_ppi:.0f}")
    texts = page_texts(pdf)
    with_images = {image.page for image in placed}
    for number, text in enumerate(texts, 1):
        words = len(text.split())
        if number > 1 and words < min_words and number not in with_images:
            found.append(f"page {number}: {words} words and no image (at least {min_words} words or an image expected)")
    everything = " ".join(texts)
    missing = [p for p in points if not re.search(rf"\bPoints?\s+{p}(?![0-9])", everything)]
    if missing:
        found.append(f"the PDF names no 'Point N' for point(s) {', '.join(map(str, missing))}")
    pages = page_count(pdf)
    limit, which = (max_pages, "the limit given") if max_pages is not None else page_limit(pdf)
    if pages is not None and pages > limit:  # images() above already refused a PDF pdfinfo cannot read
        found.append(f"{pages} pages, more than {limit} ({which})")
    return found


def summary(pdf: Path) -> str:
    """Pages, the ppi range of the images and the fewest words on a page after the title page, in one line."""
    placed = images(pdf)
    words = [len(t.split()) for t in page_texts(pdf)[1:]]
    ppi = f"{min(min(i.x_ppi, i.y_ppi) for i in placed):.0f}–{max(max(i.x_ppi, i.y_ppi) for i in placed):.0f} ppi" if placed else "no images"
    return f"{page_count(pdf)} pages; {len(placed)} images at {ppi}; fewest words on a page after the title: {min(words, default=0)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.pdfcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("pdf", nargs="?", default="report/lab_report.pdf", help="the PDF to check")
    parser.add_argument("--max-pages", type=int, default=None,
                        help="the most pages allowed (default: by the parameter set on the title page: "
                             + ", ".join(f"{k} {v}" for k, v in MAX_PAGES.items()) + f", else {DEFAULT_MAX_PAGES})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    pdf = Path(args.pdf)
    if missing_tools():
        print(f"pdfcheck: {', '.join(missing_tools())} missing; install poppler-utils (sudo apt-get install poppler-utils).")
        return 2
    if not pdf.is_file():
        print(f"pdfcheck: {pdf} does not exist; build it first with `make report PROFILE=smoke`.")
        return 2
    if args.max_pages is not None and args.max_pages < 1:
        print(f"pdfcheck: --max-pages {args.max_pages} allows no page; give a number of pages, 1 or more.")
        return 2
    found = problems(pdf, max_pages=args.max_pages)
    for line in found:
        print(f"{pdf}: {line}")
    print(f"{pdf}: {summary(pdf)}; {'passes' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
