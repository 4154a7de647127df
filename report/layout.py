"""Print checks on a merged notebook: figures whose text would print too small, figures without a caption.

The LaTeX template scales a figure down to the text width (and a captioned
one to 3/4 of the text height); text drawn at matplotlib's default 10 pt
then prints at 10 pt times that scale. A figure's natural size is its pixel
size over the dots per inch stored in the PNG, as xelatex reads it.
"""

from __future__ import annotations

import base64
import io

import nbformat

from report.reading import markdown_headings

TEXT_WIDTH_IN = (210 - 2 * 22) / 25.4  # A4 less the template's 22 mm side margins
TEXT_HEIGHT_IN = (297 - 22 - 25) / 25.4  # A4 less the 22 mm top and 25 mm bottom margins
MAX_HEIGHT = {True: 0.75, False: 0.8}  # fraction of the text height, with and without a caption
FIGURE_FONT_PT = 10.0  # matplotlib's default font size
MIN_TEXT_PT = 8.0


def figure_inches(png_base64: str) -> tuple[float, float]:
    """Natural (width, height) in inches of a base64 PNG: pixels over its stored dpi (72 when it has none)."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(png_base64))) as image:
        dpi = image.info.get("dpi", (72, 72))
        return image.width / float(dpi[0] or 72), image.height / float(dpi[1] or 72)


def print_scale(width_in: float, height_in: float, captioned: bool) -> float:
    """The factor by which the template shrinks a figure of this natural size (1 if it fits)."""
    return min(1.0, TEXT_WIDTH_IN / width_in, MAX_HEIGHT[captioned] * TEXT_HEIGHT_IN / height_in)


def layout_notes(merged: nbformat.NotebookNode, captions: bool = True) -> list[str]:
    """One line per figure whose 10 pt text prints below 8 pt, and (if `captions`) per figure without a caption."""
    notes, where = [], ""
    for cell in merged.cells:
        if cell.cell_type == "markdown":
            headings = [text for _, level, text in markdown_headings(cell.source) if level <= 2]
            where = headings[-1] if headings else where
            continue
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if not png:
                continue
            captioned = bool(output.get("metadata", {}).get("lab_caption"))
            width, height = figure_inches(png)
            scale = print_scale(width, height, captioned)
            if FIGURE_FONT_PT * scale < MIN_TEXT_PT:
                grow = FIGURE_FONT_PT / MIN_TEXT_PT  # how much larger than the print area a figure may be drawn
                notes.append(f"{where}: a {width:.1f} × {height:.1f} in figure prints at {scale:.0%}, so 10 pt text "
                             f"becomes {FIGURE_FONT_PT * scale:.1f} pt; draw it at most {TEXT_WIDTH_IN * grow:.1f} in wide "
                             f"and {MAX_HEIGHT[captioned] * TEXT_HEIGHT_IN * grow:.1f} in high")
            if captions and not captioned:
                notes.append(f"{where}: a figure has no '**Figure (Point N).**' caption line after it")
    return notes
