"""Tables for print: the front matter's own tables, and column widths for the notebooks' pipe tables.

The front matter's tables are set as LaTeX ``longtable``s with fixed column
widths (so a header never wraps) or, for the HTML rendering, as markdown.
Cell text is plain text in which `backticks` mark code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
LINE_CHARS = 94  # characters of body text in one line of the A4 page (10 pt, 166 mm)
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in text)


def latex_inline(text: str) -> str:
    """Plain text with `code` spans as LaTeX: escaped, code in typewriter that may break after . and _."""
    parts = str(text).split("`")
    out = []
    for i, part in enumerate(parts):
        escaped = latex_escape(part)
        if i % 2:
            escaped = escaped.replace(".", ".\\allowbreak{}").replace(r"\_", r"\_\allowbreak{}")
            escaped = f"\\texttt{{{escaped}}}"
        out.append(escaped)
    return "".join(out)


def latex_table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], *,
                size: str = "small", raw_cells: bool = False) -> str:
    """A longtable whose columns take the given fractions of the line (headers bold, repeated on every page).

    Cells are plain text with `code` spans unless `raw_cells` (already LaTeX);
    an empty `header` gives a table without a header row.
    """
    n = len(widths)
    columns = "".join(f">{{\\raggedright\\arraybackslash}}p{{{w:.3f}\\linewidth-2\\tabcolsep}}" for w in widths)
    lines = [f"{{\\{size}\\begin{{longtable}}{{@{{}}{columns}@{{}}}}"]
    if header:
        head = " & ".join(f"\\textbf{{{latex_escape(h)}}}" for h in header)
        lines.append(f"\\toprule {head}\\\\\\midrule\\endhead")
    else:
        lines.append("\\toprule")
    for row in rows:
        cells = [c if raw_cells else latex_inline(c) for c in row]
        lines.append(" & ".join(cells + [""] * (n - len(cells))) + "\\\\")
    lines.append("\\bottomrule\\end{longtable}}")
    return "\n".join(lines)


def content_widths(header: Sequence[str], rows: Sequence[Sequence[str]], line_chars: int = LINE_CHARS) -> tuple[float, ...]:
    """Fractions of the line for each column of a table, from its content (plain text; `backticks` mark code).

    A column gets at least its header's length and its longest word's (code
    counts up to 16 characters: it may break after "." and "_"), so neither
    breaks inside; the rest of the line goes to the columns in proportion to
    how much text they hold beyond that, so a column of short labels stays
    narrow and one of sentences takes the room. A table whose cells all fit
    on one line gets each column its longest cell.
    """
    n = max([len(header)] + [len(r) for r in rows])
    cells = [[str(r[i]) if i < len(r) else "" for r in rows] for i in range(n)]
    heads = [str(header[i]) if i < len(header) else "" for i in range(n)]

    def longest_word(text: str) -> int:
        parts = text.split("`")
        words = [min(len(w), 16) if k % 2 else len(w) for k, part in enumerate(parts) for w in part.split()]
        return max(words, default=0)
    least = [max([len(heads[i])] + [longest_word(t) for t in cells[i]]) + 2 for i in range(n)]
    longest = [max([len(heads[i])] + [len(t.replace("`", "")) for t in cells[i]]) + 2 for i in range(n)]
    if sum(longest) <= line_chars:
        return tuple(w / sum(longest) for w in longest)
    text = [sum(max(0, len(t.replace("`", "")) - least[i]) for t in cells[i]) for i in range(n)]
    room = max(0, line_chars - sum(least))
    widths = [le + (room * t / sum(text) if sum(text) else 0) for le, t in zip(least, text)]
    return tuple(w / sum(widths) for w in widths)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table (for the HTML rendering); pipes inside cells are escaped; an empty header stays blank."""
    header = list(header) or [""] * max((len(r) for r in rows), default=1)

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join(":--" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _split_row(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)]


def column_dashes(header: list[str], body: list[list[str]], line_chars: int = LINE_CHARS) -> list[int]:
    """Dashes per column so that every header fits on one line and the rest follows the content.

    Pandoc sets a pipe table wider than a line with column widths in
    proportion to the dashes of its separator line; each column gets at least
    its header's length and its longest short cell or word, up to 12 characters (so a label such as
    "epoch 12" or "spec, long" stays on one line), the remaining width goes to columns whose content is longer.
    """
    def unbroken(cell: str) -> int:
        return len(cell) if len(cell) <= 12 else max([len(w) for w in cell.split()] + [0])
    words = [min(12, max([unbroken(r[i]) for r in body if i < len(r)] + [0])) for i in range(len(header))]
    base = [max(len(h), w) + 2 for h, w in zip(header, words)]
    need = [max([len(r[i]) if i < len(r) else 0 for r in body] + [0]) + 2 for i in range(len(header))]
    extra = [max(0, n - b) for n, b in zip(need, base)]
    room = max(0, line_chars - sum(base))
    total = sum(extra)
    return [b + (round(room * e / total) if total else 0) for b, e in zip(base, extra)]


def widen_headers(markdown: str) -> str:
    """Rewrite the separator line of every pipe table in `markdown` by :func:`column_dashes`."""
    lines = markdown.split("\n")
    for i in range(1, len(lines)):
        if not _SEPARATOR.match(lines[i]) or "|" not in lines[i] or "|" not in lines[i - 1]:
            continue
        header = _split_row(lines[i - 1])
        old = _split_row(lines[i])
        if len(old) != len(header):
            continue
        body = []
        for line in lines[i + 1:]:
            if "|" not in line or not line.strip():
                break
            body.append(_split_row(line))
        dashes = column_dashes(header, body)
        aligned = []
        for spec, n in zip(old, dashes):
            left, right = spec.startswith(":"), spec.endswith(":")
            aligned.append((":" if left else "") + "-" * max(3, n - left - right) + (":" if right else ""))
        lines[i] = "|" + "|".join(aligned) + "|"
    return "\n".join(lines)
