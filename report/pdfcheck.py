"""Checks of the rendered PDF as a grader meets it: sharp images, no empty pages, every point, a bounded length.

    python -m report.pdfcheck report/lab_report.pdf

Reads the PDF with poppler-utils (``pdfimages``, ``pdftotext``, ``pdfinfo``)
and prints one line per problem, exit status 1 when there is any:

- every embedded raster image is at MIN_PPI or more (sample grids enlarged
  without smoothing, not blurred on the page);
- no page but the title page has fewer than MIN_WORDS words and no image
  (the text of a vector figure counts: its labels and tick numbers);
- every lab point 1–18 is named ("Point N");
- at most MAX_PAGES pages.

`make report PROFILE=smoke` in CI (``.ci/run``) runs it on its PDF.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_PPI = 200
MIN_WORDS = 40
MAX_PAGES = 34
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


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def problems(pdf: Path, *, min_ppi: float = MIN_PPI, min_words: int = MIN_WORDS, max_pages: int = MAX_PAGES,
             points: range = POINTS) -> list[str]:
    """One sentence per thing the PDF gets wrong by the rules of this module; empty when it passes."""
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
    if pages > max_pages:
        found.append(f"{pages} pages, more than {max_pages}")
    return found


def summary(pdf: Path) -> str:
    """Pages, the ppi range of the images and the fewest words on a page after the title page, in one line."""
    placed = images(pdf)
    words = [len(t.split()) for t in page_texts(pdf)[1:]]
    ppi = f"{min(min(i.x_ppi, i.y_ppi) for i in placed):.0f}–{max(max(i.x_ppi, i.y_ppi) for i in placed):.0f} ppi" if placed else "no images"
    return f"{page_count(pdf)} pages; {len(placed)} images at {ppi}; fewest words on a page after the title: {min(words, default=0)}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    pdf = Path(args[0] if args else "report/lab_report.pdf")
    if missing_tools():
        print(f"pdfcheck: {', '.join(missing_tools())} missing; install poppler-utils (sudo apt-get install poppler-utils).")
        return 2
    if not pdf.is_file():
        print(f"pdfcheck: {pdf} does not exist; build it first with `make report PROFILE=smoke`.")
        return 2
    found = problems(pdf)
    for line in found:
        print(f"{pdf}: {line}")
    print(f"{pdf}: {summary(pdf)}; {'passes' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
