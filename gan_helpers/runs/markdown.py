"""Text from outside the project, made Markdown that prints every character as typed and never runs.

A shipped result's observations, data-set folder names and anything else the
lab did not write may hold ``\\input{/etc/hostname}``, ``\\write18{…}``,
``<script>``, ``$$…$$`` or a ```` ```{=latex} ```` block. Markdown passes such
things through to LaTeX or HTML (pandoc's raw_tex, raw_html, tex_math_* and
raw_attribute extensions; the HTML renderer's raw HTML), so the text is
escaped before it reaches a notebook cell or a printed table, and pandoc
itself turns the escapes back into plain characters, which its LaTeX and
HTML writers escape in turn. xelatex also runs without shell escape and may
read and write only files of the build (report.render).

Every table a notebook prints from a run folder, a shipped result or a data
set (:func:`gan_helpers.runs.summaries.summary_table`,
:func:`gan_helpers.runs.quality_records.quality_table`) builds each cell
with :func:`table_cell`, the one place such text enters the report; the
observations' prose goes through ``report.observations.markdown_text``,
which keeps its markup but escapes the same characters (:data:`ENTITIES`).
"""

from __future__ import annotations

import re

# Characters that open raw TeX (\), raw HTML and autolinks (<), math ($), code spans and raw attributes (`),
# fenced blocks with attributes (~, `), attributes ({ }), images (!), entities (&) and TeX's ^^ character codes:
# written as numeric character references, which pandoc and the HTML renderer read as the plain character (and
# never as syntax).
ENTITIES = {"&": "&amp;", "\\": "&#92;", "<": "&lt;", ">": "&gt;", "$": "&#36;", "`": "&#96;", "~": "&#126;",
            "{": "&#123;", "}": "&#125;", "!": "&#33;", "@": "&#64;", "^": "&#94;"}
SPECIAL = re.compile("[" + re.escape("".join(ENTITIES)) + "]")
# In a table cell nothing is markup: emphasis, links, headings and the cell separator are literal too.
_CELL_ENTITIES = {**ENTITIES, "*": "&#42;", "_": "&#95;", "[": "&#91;", "]": "&#93;", "#": "&#35;", "|": "&#124;"}
_CELL_SPECIAL = re.compile("[" + re.escape("".join(_CELL_ENTITIES)) + "]")


def table_cell(value) -> str:
    """`value` as the content of a Markdown pipe-table cell that prints every character as typed: no markup of any
    kind, no cell separator, no line break."""
    return _CELL_SPECIAL.sub(lambda m: _CELL_ENTITIES[m.group()], " ".join(str(value).splitlines()))
