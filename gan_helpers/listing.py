"""show_source: the code of a point, printed in a notebook exactly as it runs.

The ways it shortens what it prints: :func:`short_docstrings` (docstrings
cut to their first paragraph) and :func:`source_excerpt` (a long function's
core lines under its signature); the lines it prints are the lines that run.
Which objects the PDF prints is the report's allow-list,
:data:`report.cleaning.PRINTED`.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap


def short_docstrings(code: str) -> str:
    """`code` with every docstring (module, class, function) cut to its first paragraph, closed by ``[…]``."""
    lines = code.splitlines()
    cuts = []  # (first line kept, last line of the docstring), 0-based
    for node in ast.walk(ast.parse(code)):
        body = getattr(node, "body", None)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not body:
            continue
        first = body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            start, end = first.lineno - 1, first.end_lineno - 1
            blank = next((i for i in range(start + 1, end) if not lines[i].strip()), None)
            if blank is not None:
                cuts.append((blank - 1, end))
    for last_kept, end in sorted(cuts, reverse=True):
        quote = '"""' if '"""' in lines[end] else "'''"
        lines[last_kept] = f"{lines[last_kept].rstrip()} […]{quote}"
        del lines[last_kept + 1:end + 1]
    return "\n".join(lines)


def source_excerpt(obj, code: str, first: str, last: str) -> str:
    """The signature of function `obj` without type hints, then the lines of `code` from `first` to `last`."""
    lines = code.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if first in line)
        end = next(i for i in range(start, len(lines)) if last in lines[i])
    except StopIteration:
        raise ValueError(f"the source of {obj.__qualname__} has no line containing {first!r} followed by one containing {last!r}") from None
    parameters = []
    for p in inspect.signature(obj).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not any(q.startswith("*") for q in parameters):
            parameters.append("*")
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        parameters.append(f"{prefix}{p.name}" + ("" if p.default is p.empty else f"={p.default!r}"))
    indent = re.match(r"\s*", lines[start]).group()
    head = [f"def {obj.__name__}({', '.join(parameters)}):", f"{indent}...  # (excerpt: the lines before this are left out)"]
    tail = [f"{indent}...  # (the lines after this are left out)"] if end < len(lines) - 1 else []
    return "\n".join(head + lines[start:end + 1] + tail)


def show_source(*objects, brief: bool = False, excerpt: tuple[str, str] | None = None) -> None:
    """Display the source code of classes or functions as a highlighted block (for `[code]` points).

    ``brief`` cuts every docstring to its first paragraph (closed by ``[…]``):
    the code stays complete, the prose stays in the package. ``excerpt=(first,
    last)`` prints one function's signature (without type hints) and only
    its lines from the first one containing `first` to the next one containing
    `last`, with ``...`` where lines are left out: the core of a long function.
    """
    from IPython.display import Markdown, display

    if excerpt is not None and len(objects) != 1:
        raise ValueError("excerpt= needs exactly one object")
    for obj in objects:
        module = inspect.getmodule(obj).__name__
        code = textwrap.dedent(inspect.getsource(obj)).rstrip()
        if brief:
            code = short_docstrings(code)
        if excerpt is not None:
            code = source_excerpt(obj, code, *excerpt)
        display(Markdown(f"`{module}.{obj.__qualname__}`\n\n```python\n{code}\n```"))
