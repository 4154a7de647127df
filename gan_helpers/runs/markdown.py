"""Text from outside the project, made Markdown that prints every character as typed and never runs.

A shipped result's observations, data-set folder names and anything else the
lab did not write may hold ``\\input{/etc/hostname}``, ``\\write18{…}``,
``<script>``, ``$$…$$`` or a ```` ```{=latex} ```` block. Markdown passes such
things through to LaTeX or HTML (pandoc's raw_tex, raw_html, tex_math_* and
raw_attribute extensions; the HTML renderer's raw HTML), so the text is
escaped here, before it reaches a notebook cell or a printed table, and
pandoc itself turns the escapes back into plain characters, which its LaTeX
and HTML writers escape in turn. xelatex also runs without shell escape and
may read and write only files of the build (report.render).

    markdown_text(observations)   # prose: emphasis, lists, tables and links stay; the rest is literal
    code_span(folder_name)        # a name in typewriter type, literal whatever it holds
"""

from __future__ import annotations

import re

# Characters that open raw TeX (\), raw HTML and autolinks (<), math ($), code spans and raw attributes (`),
# fenced blocks with attributes (~, `), attributes ({ }), images (!) and entities (&): written as numeric
# character references, which pandoc and the HTML renderer read as the plain character (and never as syntax).
_ENTITIES = {"&": "&amp;", "\\": "&#92;", "<": "&lt;", ">": "&gt;", "$": "&#36;", "`": "&#96;", "~": "&#126;",
             "{": "&#123;", "}": "&#125;", "!": "&#33;", "@": "&#64;"}
_SPECIAL = re.compile("[" + re.escape("".join(_ENTITIES)) + "]")


def markdown_text(text: str) -> str:
    """`text` as Markdown whose every character prints as typed: no raw TeX or HTML, math, code or images.

    Paragraphs, emphasis, lists, headings, tables and links keep working, so
    a person's written observations keep their form.
    """
    return _SPECIAL.sub(lambda m: _ENTITIES[m.group()], str(text))


def code_span(text: str, *, in_table: bool = False) -> str:
    """`text` as one Markdown code span (typewriter type), literal whatever it holds: backticks, ``$``, ``\\``.

    The fence is one backtick longer than the longest run of backticks inside
    (CommonMark and pandoc), and a line break becomes a space; `in_table`
    escapes ``|`` so that a pipe table never splits the span into two cells.
    """
    text = " ".join(str(text).splitlines()) or " "
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ") and text.strip()) else ""
    return f"{fence}{pad}{text}{pad}{fence}"
