"""What the PDF leaves out: plumbing cells, notebook code, junk outputs, source the spec does not grade.

The rules (report/README.md lists them for notebook authors):

- cells tagged ``parameters``, ``injected-parameters``, ``remove-cell`` or
  ``report-hide`` are left out whole;
- the code of code cells is not printed; their outputs are. A cell tagged
  ``report-show`` prints its code too, unless it defines a function or class
  (notebook code is never the spec's code);
- a ``show_source(...)`` output prints only objects in
  :data:`PRINTED`;
- outputs of cells tagged ``remove-output``, outputs whose metadata sets
  ``report-hide`` (the live panel of a run trained in the cell), stderr,
  widgets (progress bars), bare reprs such as ``<matplotlib.legend.Legend …>``
  and repeated figures go.
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap

import nbformat

# Qualified names (module.qualname, as gan_helpers.listing.show_source prints them) of the only
# objects whose source the PDF shows: the spec's networks and their block
# builders (points 1, 2, 11), the two steps (7, 8) and inversion (13); the
# rest of a point's code is named in its text and in the notebooks.
PRINTED = (
    "gan_helpers.models.Discriminator",
    "gan_helpers.models.latent_projection",
    "gan_helpers.models.TransposedConvGenerator",
    "gan_helpers.models.upsampling_block",
    "gan_helpers.models.UpsamplingGenerator",
    "gan_helpers.training.d_step",
    "gan_helpers.training.g_step",
    "gan_helpers.latent.invert",
)
HIDDEN_CELL_TAGS = {"parameters", "injected-parameters", "remove-cell", "report-hide", "papermill-error-cell-tag"}
SHOW_CODE_TAG = "report-show"
HIDE_OUTPUT_TAG = "remove-output"
HIDDEN_OUTPUT_METADATA = "report-hide"  # an output whose metadata sets this is left out (gan_helpers.runs.live.REPORT_HIDE)
WIDGET = "application/vnd.jupyter.widget-view+json"
CAPTION = re.compile(r"^\s*\*\*Figure \((Points? [^)]*)\)\.?\*\*\s*")
SHOWN_SOURCE = re.compile(r"\A`([\w.<>]+)`\s*\n\s*```python\n")  # what show_source displays
_REPR_JUNK = re.compile(r"^\[?<(?:matplotlib|Figure|Axes)[^>]*>(?:,\s*<[^>]*>)*\]?$|^Text\(.*\)$", re.S)
_PYTHON_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_TOP_LEVEL_DEF = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", re.M)


def shown_object(output) -> str | None:
    """The qualified name a show_source output prints, or None for any other output."""
    text = output.get("data", {}).get("text/markdown") if output.get("output_type") in ("display_data", "execute_result") else None
    m = SHOWN_SOURCE.match(text or "")
    return m.group(1) if m else None


def _keep_output(output) -> bool:
    if output.get("metadata", {}).get(HIDDEN_OUTPUT_METADATA):
        return False  # shown for the notebook's reader only, e.g. the live panel of a run trained in the cell
    if output.output_type == "stream":
        return output.name != "stderr"
    data = output.get("data", {})
    if WIDGET in data:
        return False  # progress bars and other widgets: nothing to print
    if output.output_type == "execute_result" and set(data) == {"text/plain"}:
        return not _REPR_JUNK.match(data["text/plain"].strip())
    return True


def defines_code(source: str) -> bool:
    """Whether Python `source` defines a function or class anywhere (a lambda counts)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return bool(re.search(r"^\s*(?:async\s+)?(?:def|class)\s", source, re.M))
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) for n in ast.walk(tree))


def _clean_outputs(cell, stem: str, notes: list[str]) -> list:
    seen_images, outputs = set(), []
    for output in cell.get("outputs", []):
        image = output.get("data", {}).get("image/png")
        if not _keep_output(output) or (image and image in seen_images):
            continue
        name = shown_object(output)
        if name is not None and name not in PRINTED:
            notes.append(f"{stem}: the source of {name} is left out of the PDF (not in cleaning.PRINTED)")
            continue
        if image:
            seen_images.add(image)
        outputs.append(output)
    return outputs


def clean_notebook(nb: nbformat.NotebookNode, stem: str = "", notes: list[str] | None = None) -> nbformat.NotebookNode:
    """A copy fit for print by the rules of this module; what it hides on purpose is added to `notes`."""
    notes = [] if notes is None else notes
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if tags & HIDDEN_CELL_TAGS:
            continue
        if cell.cell_type == "code":
            cell.outputs = [] if HIDE_OUTPUT_TAG in tags else _clean_outputs(cell, stem, notes)
            show = SHOW_CODE_TAG in tags and cell.source.strip()
            if show and defines_code(cell.source):
                notes.append(f"{stem}: a cell tagged {SHOW_CODE_TAG} defines a function or class, so its code is not printed")
                show = False
            if not show:
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


def printed_definitions(nb: nbformat.NotebookNode) -> list[str]:
    """Names of the functions and classes whose code a cleaned or merged notebook prints, in order.

    Looks at printed code cells, show_source outputs and ```python blocks in
    markdown cells and markdown outputs; only top-level definitions count
    (a method belongs to its printed class).
    """
    names = []
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.metadata.get("transient", {}).get("remove_source"):
            names += _TOP_LEVEL_DEF.findall(textwrap.dedent(cell.source))
        texts = [cell.source] if cell.cell_type == "markdown" else []
        texts += [o["data"]["text/markdown"] for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]
        for text in texts:
            for block in _PYTHON_FENCE.findall(text):
                names += _TOP_LEVEL_DEF.findall(textwrap.dedent(block))
    return names


def short_names() -> set[str]:
    """The bare names of :data:`PRINTED` (what a printed ``def``/``class`` line defines)."""
    return {name.rsplit(".", 1)[1] for name in PRINTED}


def unlisted_definitions(nb: nbformat.NotebookNode) -> list[str]:
    """Printed definitions that are not the spec's code (should always be empty after cleaning)."""
    allowed = short_names()
    return [name for name in printed_definitions(nb) if name not in allowed]
