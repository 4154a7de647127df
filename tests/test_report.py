"""The report: point table from headings, what the PDF hides, front matter, merging, rendering."""

from __future__ import annotations

import base64
import importlib
import io
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from unittest import mock

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gan_helpers.runs.config import TrainConfig
from gan_helpers.errors import UserError
from report import cleaning, front, layout, merge, reading, render, tables
from gan_helpers import listing as spec_code
from gan_helpers.runs import parameter_sets

LAYOUT = {"01_warmup": [6], "02_data": [4, 5], "03_dcgan": [1, 2, 3, 7, 8, 9, 10],
          "04_upsampling": [11, 12], "05_latent": [13, 14, 15, 16, 17], "06_reflections": [18]}
INFO = {"title": "T", "author": "A", "course": "C", "date": "today", "language": "english", "profile": "smoke",
        "intro": "Intro text.", "facts": [("Parameter set", "smoke")]}


def lab_notebooks(layout=LAYOUT, filler: str = "") -> dict[str, nbformat.NotebookNode]:
    """Executed-looking notebooks with one '## Point N — …' heading per point."""
    found = {}
    for stem, points in layout.items():
        cells = [new_markdown_cell(f"# {stem[:2]} · Title of {stem}\n\nIntro.")]
        cells += [new_markdown_cell(f"## Point {p} — answer {p}\n\nText {p}.{filler}") for p in points]
        found[stem] = new_notebook(cells=cells)
    return found


def png_bytes(width_in: float = 12, height_in: float = 3, dpi: int = 60) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_in, height_in))
    ax.plot([0, 1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def shown(name: str, code: str):
    """An output as show_source displays it."""
    return new_output("display_data", data={"text/markdown": f"`{name}`\n\n```python\n{code}\n```", "text/plain": "<Markdown>"})


# ---- reading: the point table ------------------------------------------------------------------

@pytest.mark.parametrize("heading, points", [
    ("Point 7 — discriminator step", [7]),
    ("Points 13–16: inversion and interpolation", [13, 14, 15, 16]),
    ("Points 13, 14 and 17", [13, 14, 17]),
    ("Point 10", [10]),
    ("Pointless heading with 3 numbers", []),
])
def test_points_in_headings(heading, points):
    assert reading.points_in(heading) == points


def test_point_table_comes_from_headings():
    notebooks = lab_notebooks()
    notebooks["05_latent"].cells.append(new_markdown_cell("### Point 17 again, in a subsection"))
    where = reading.point_locations(notebooks)
    assert set(where) == set(range(1, 19))
    assert where[7] == [reading.Location(7, "03_dcgan", "Title of 03_dcgan", "Point 7 — answer 7")]
    assert [loc.section for loc in where[17]] == ["Point 17 — answer 17", "Point 17 again, in a subsection"]


def test_a_missing_point_is_an_error_naming_it():
    notebooks = lab_notebooks({**LAYOUT, "03_dcgan": [1, 2, 3, 7, 9, 10]})  # no point 8
    notebooks["01_warmup"].cells.append(new_markdown_cell("Point 8 in prose is not a heading.\n\n```\n## Point 8 in code\n```"))
    with pytest.raises(UserError, match=r"lab point\(s\) 8 are answered nowhere") as error:
        reading.point_locations(notebooks)
    assert "\n" not in str(error.value)


def test_config_fields_and_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("title: T\nauthor: A\ncourse: C\n")
    assert reading.load_config(path) == {"title": "T", "author": "A", "course": "C", "date": "", "language": "english"}
    path.write_text("title: T\nauthor:\nlanguage: German\n")
    assert reading.load_config(path)["author"] == "" and reading.load_config(path)["language"] == "german"
    for text, message in (("title: T\nauthr: B\n", "unknown field"), ("author: A\n", "no title"),
                          ("title: T\nlanguage: klingon\n", "language 'klingon'")):
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            reading.load_config(path)


def test_the_project_config_is_valid():
    assert reading.load_config()["title"]


# ---- cleaning: what the PDF leaves out ---------------------------------------------------------

def plumbing_notebook() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        new_markdown_cell("# 03 · DCGAN\n\nIntro."),
        new_code_cell("epochs = 5", metadata={"tags": ["parameters"]}),
        new_code_cell("epochs = 1", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("import secrets_of_setup", metadata={"tags": ["remove-cell"]}),
        new_markdown_cell("A remark for notebook readers only.", metadata={"tags": ["report-hide"]}),
        new_markdown_cell("## Point 7 — the step"),
        new_code_cell("show_source(jitter_labels, d_step)", metadata={"tags": ["remove-input"]}, outputs=[
            shown("gan_helpers.training.jitter_labels", "def jitter_labels(labels, amount): ..."),
            shown("gan_helpers.training.d_step", "def d_step(D, G, opt_D, real):\n    def inner(): ...\n    return {}")]),
        new_code_cell("def snapshot(model):\n    return model\nG_before = snapshot(G)", outputs=[
            new_output("stream", name="stdout", text="snapshot taken\n")]),
        new_code_cell("run_dir = train(config)", metadata={"tags": ["report-show"]}),
        new_code_cell("helper = lambda x: x\nprint(helper(1))", metadata={"tags": ["report-show"]}, outputs=[
            new_output("stream", name="stdout", text="1\n")]),
        new_code_cell("train()", outputs=[
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "  0%|"}),
            new_output("stream", name="stderr", text="epochs: 100%|####| warning noise\n"),
            new_output("stream", name="stdout", text="loss_D = 0.7\n"),
            new_output("display_data", data={"image/png": "QUJD", "text/plain": "<Figure size 640x480 with 1 Axes>"}),
            new_output("execute_result", data={"image/png": "QUJD", "text/plain": "<Figure size 640x480 with 1 Axes>"}, execution_count=3),
            new_output("execute_result", data={"text/plain": "<matplotlib.legend.Legend at 0x7f00>"}, execution_count=3),
        ]),
        new_code_cell("x = compute()", metadata={"tags": ["remove-output"]}, outputs=[new_output("stream", name="stdout", text="noise\n")]),
        new_markdown_cell("**Figure (Point 7).** The caption."),
    ])


def test_clean_drops_outputs_marked_for_the_notebook_reader_only():
    from gan_helpers.runs.live import REPORT_HIDE

    panel = new_output("display_data", data={"image/png": "cGFuZWw=", "text/plain": "<Figure>"}, metadata={REPORT_HIDE: True})
    kept = new_output("display_data", data={"image/png": "ZmlndXJl", "text/plain": "<Figure>"})
    printed = new_output("stream", name="stdout", text="3 checkpoints\n")
    nb = new_notebook(cells=[new_code_cell("lab_run(...)", outputs=[panel, printed, kept])])
    cleaned = cleaning.clean_notebook(nb)
    assert cleaned.cells[0].outputs == [printed, kept]


def test_clean_hides_plumbing_code_and_unlisted_source():
    notes = []
    cleaned = cleaning.clean_notebook(plumbing_notebook(), "03_dcgan", notes)
    sources = [c.source for c in cleaned.cells]
    for hidden in ("epochs = 5", "epochs = 1", "import secrets_of_setup", "A remark for notebook readers only.", "x = compute()"):
        assert hidden not in sources, hidden
    code = {c.source: c for c in cleaned.cells if c.cell_type == "code"}
    printed = {s for s, c in code.items() if not c.metadata.get("transient", {}).get("remove_source")}
    assert printed == {"run_dir = train(config)"}  # only the report-show cell that defines nothing
    assert [cleaning.shown_object(o) for o in code["show_source(jitter_labels, d_step)"].outputs] == ["gan_helpers.training.d_step"]
    assert code["def snapshot(model):\n    return model\nG_before = snapshot(G)"].outputs  # its output stays
    kinds = [(o.output_type, o.get("name"), sorted(o.get("data", {}))) for o in code["train()"].outputs]
    assert kinds == [("stream", "stdout", []), ("display_data", None, ["image/png", "text/plain"])]  # one copy of the figure
    assert "figure-caption" in cleaned.cells[-1].metadata.tags
    assert any("jitter_labels" in n for n in notes) and any("report-show defines" in n for n in notes)


def test_printed_code_is_only_the_spec_code():
    cleaned = cleaning.clean_notebook(plumbing_notebook())
    assert cleaning.printed_definitions(cleaned) == ["d_step"]  # its nested function belongs to it
    assert cleaning.unlisted_definitions(cleaned) == []
    # the check itself sees a printed definition wherever it is
    cleaned.cells.append(new_code_cell("def helper():\n    pass"))
    cleaned.cells.append(new_markdown_cell("```python\nclass Extra:\n    pass\n```"))
    assert cleaning.unlisted_definitions(cleaned) == ["helper", "Extra"]


def test_show_source_output_is_what_the_allow_list_reads():
    import IPython.display

    from gan_helpers import listing as spec_code
    from gan_helpers.training import d_step

    displayed = []
    with mock.patch.object(IPython.display, "display", displayed.append):
        spec_code.show_source(d_step)
    output = new_output("display_data", data={"text/markdown": displayed[0].data})
    assert cleaning.shown_object(output) == "gan_helpers.training.d_step"


def resolve(module: str, name: str) -> object:
    """The object `module`.`name`, importing the module."""
    return getattr(importlib.import_module(module), name)


def test_every_printed_name_exists():
    for qualified in cleaning.PRINTED:
        assert callable(resolve(*qualified.rsplit(".", 1))), qualified


def test_short_docstrings_keep_the_first_paragraph_and_all_code():
    code = (
        'class Net:\n    """Point 1: a net.\n\n    Long prose about it.\n    More prose.\n    """\n\n'
        '    def forward(self, x):\n        """Probabilities, shape (B,)."""\n        return x\n\n'
        '    def logits(self, x):\n        """Scores before the sigmoid,\n        shape (B,).\n\n        Why: stability.\n        """\n'
        '        y = x + 1  # a comment stays\n        return y\n'
    )
    short = spec_code.short_docstrings(code)
    assert "Long prose" not in short and "Why: stability" not in short
    assert '"""Point 1: a net. […]"""' in short and '"""Probabilities, shape (B,)."""' in short
    assert "        shape (B,). […]\"\"\"" in short and "y = x + 1  # a comment stays" in short
    compile(short, "<short>", "exec")  # still valid Python
    assert spec_code.short_docstrings(short) == short


def test_an_excerpt_is_the_signature_and_the_lines_between_the_markers():
    import IPython.display

    from gan_helpers import listing as spec_code
    from gan_helpers.latent import invert

    displayed = []
    with mock.patch.object(IPython.display, "display", displayed.append):
        spec_code.show_source(invert, excerpt=("optimizer = torch.optim.SGD", "optimizer.step()"))
    output = new_output("display_data", data={"text/markdown": displayed[0].data})
    assert cleaning.shown_object(output) == "gan_helpers.latent.invert"
    code = displayed[0].data.split("```python\n")[1].split("\n```")[0].splitlines()
    assert code[0].startswith("def invert(G, target, *, steps, lr=0.01, momentum=0.9,") and code[0].endswith("):")
    assert code[1].strip().startswith("...") and code[-1].strip().startswith("...")
    assert code[2].strip().startswith("optimizer = torch.optim.SGD") and code[-2].strip() == "optimizer.step()"
    assert "raise UserError" not in "\n".join(code)  # the argument checks are left out
    assert cleaning.printed_definitions(new_notebook(cells=[new_code_cell("", outputs=[output])])) == ["invert"]
    with pytest.raises(ValueError, match="no line containing"):
        spec_code.show_source(invert, excerpt=("not in the source", "optimizer.step()"))


def notebook_cells(stem: str) -> list:
    from report.notebooks import notebook_path

    return nbformat.read(notebook_path(stem), as_version=4).cells


def hidden(cell) -> bool:
    return bool(set(cell.metadata.get("tags", [])) & cleaning.HIDDEN_CELL_TAGS)


def test_the_notebooks_print_spec_code_shortened_and_within_a_budget():
    """Every show_source call the PDF prints runs, prints only PRINTED objects, shortened, in about three pages in all."""
    import ast as _ast

    import IPython.display

    from gan_helpers import listing as spec_code

    objects = {name.rsplit(".", 1)[1]: resolve(*name.rsplit(".", 1)) for name in cleaning.PRINTED}
    lines, calls = 0, 0
    for stem in parameter_sets.NOTEBOOKS:
        for cell in notebook_cells(stem):
            if cell.cell_type != "code" or "show_source(" not in cell.source or hidden(cell):
                continue
            for node in _ast.walk(_ast.parse(cell.source)):
                if not (isinstance(node, _ast.Call) and getattr(node.func, "id", "") == "show_source"):
                    continue
                names = [_ast.unparse(arg) for arg in node.args]
                if not set(names) <= set(objects):
                    continue  # the merge leaves these out (test_clean_hides_plumbing_code_and_unlisted_source)
                options = {k.arg: _ast.literal_eval(k.value) for k in node.keywords}
                assert options.get("brief") or options.get("excerpt"), f"{stem}: show_source({', '.join(names)}) prints whole docstrings"
                displayed = []
                with mock.patch.object(IPython.display, "display", displayed.append):
                    spec_code.show_source(*(objects[n] for n in names), **options)
                for shown_output in displayed:
                    output = new_output("display_data", data={"text/markdown": shown_output.data})
                    assert cleaning.shown_object(output) in cleaning.PRINTED
                    lines += shown_output.data.count("\n") - 3
                calls += 1
    assert calls >= 5  # points 1, 2, 8, 11, 13 (d_step is printed with jitter_labels, which the merge leaves out)
    assert lines <= 200, f"the PDF prints {lines} lines of code (about 65 a page)"


# Outputs that repeat what a figure or another table of the report shows, or that only notebook readers need:
# the PDF leaves their cells out (they still run and show in the notebooks).
HIDDEN_IN_PDF = {
    "02_data": ["for row in demo_summary.rows:"],  # the demonstration listing: the figure after it shows every decision
    "03_dcgan": ["print(summary(D", "print(summary(G", "display(Markdown(quality_table(calibration)))",
                 "display(Markdown(summary_table("],
    "04_upsampling": ["print(summary(UpsamplingGenerator", "display(Markdown(quality_table(read_quality(run_dir))))",
                      "display(Markdown(summary_table("],
    "06_reflections": ["plot_losses(list(run_dirs.values())", "**Figure (Point 18).**"],  # = the left panel of point 12's figure
}


def test_outputs_that_repeat_other_figures_or_tables_are_hidden_from_the_pdf():
    for stem, snippets in HIDDEN_IN_PDF.items():
        cells = notebook_cells(stem)
        for snippet in snippets:
            matching = [c for c in cells if snippet in c.source]
            assert matching and all(hidden(c) for c in matching), (stem, snippet)
    for stem in parameter_sets.NOTEBOOKS:  # what is hidden never holds a lab point's heading
        for cell in notebook_cells(stem):
            if hidden(cell) and cell.cell_type == "markdown":
                assert not any(reading.points_in(text) for _, _, text in reading.markdown_headings(cell.source)), stem


def test_every_printed_figure_of_the_notebooks_has_its_caption_after_it():
    """A code cell that shows a figure in the PDF is followed by its '**Figure (Point N).**' line, and a caption by a figure."""
    for stem in parameter_sets.NOTEBOOKS:
        cells = [c for c in notebook_cells(stem) if not hidden(c)]
        for before, after in zip(cells, cells[1:] + [None]):
            shows = before.cell_type == "code" and "plt.show()" in before.source
            captioned = after is not None and after.cell_type == "markdown" and bool(cleaning.CAPTION.match(after.source))
            assert shows == captioned, (stem, before.source[:60])
            assert before.source.count("plt.show()") <= 1, (stem, before.source[:60])  # one figure, one caption


LINE_PLOTS = ("plot_losses(", "plot_verdicts(", "plot_quality(", "plot_step_trace(")


def test_figures_drawn_in_the_notebooks_fit_the_print_area():
    """figsize=(W, H) in a notebook: at most 8.1 in wide and 9.2 in high, so 10 pt text prints at 8 pt or more."""
    import re

    for stem in parameter_sets.NOTEBOOKS:
        for cell in notebook_cells(stem):
            for width, height in re.findall(r"figsize=\(([\d.]+),\s*([\d.]+)\)", cell.source):
                assert float(width) <= 8.1 and float(height) <= 9.2, (stem, width, height)
            if any(name in cell.source for name in LINE_PLOTS) and not hidden(cell):  # their legends are set small
                assert all(float(w) <= layout.TEXT_WIDTH_IN + 0.05 for w in re.findall(r"figsize=\(([\d.]+),", cell.source)), stem
            for size in re.findall(r"fontsize=([\d.]+)", cell.source):
                widths = [float(w) for w, _ in re.findall(r"figsize=\(([\d.]+),\s*([\d.]+)\)", cell.source)] or [8.0]
                assert float(size) * min(1.0, layout.TEXT_WIDTH_IN / max(widths)) >= layout.MIN_TEXT_PT, (stem, size)


def smallest_printed_text(fig) -> float:
    """The smallest font size (pt) of any visible text in `fig` once the template scales it to the text width."""
    import matplotlib.text

    fig.canvas.draw()
    width, height = fig.get_size_inches()
    scale = layout.print_scale(width, height, captioned=True)
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * scale


@pytest.mark.parametrize("frames, settings, values, steps", [(4, 3, 3, 5), (8, 5, 5, 12)])  # smoke and full
def test_figure_helpers_print_text_at_8_pt_or_more(frames, settings, values, steps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from gan_helpers.latent import Inversion
    from gan_helpers.latent_plots import show_edit_groups, show_inversions, show_rows
    from gan_helpers.plots import show_centre_crops, show_untrained
    from gan_helpers.runs.run_plots import show_nearest_pairs

    def inversion(seed):
        images = torch.rand(frames + 1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
        return Inversion(z=torch.zeros(1, 128), image=images[-1:], target=images[:1], losses=[0.2, 0.1, 0.05],
                         final_mse=0.04, frames=images, frame_steps=list(range(0, 10 * (frames + 1), 10)), restart_mses=[0.04])

    names = ("transposed convolutions", "upsampling + convolutions")
    grouped = {name: {f"variant {i}": inversion(i) for i in range(settings)} for name in names}
    image = torch.rand(1, 3, 64, 64)
    figures = [
        show_inversions(grouped, title="image A from a random start"),
        show_inversions({"transposed": inversion(1), "upsampling": inversion(2)}, title="outside"),
        show_edit_groups({name: (image, torch.rand(5 * values, 3, 64, 64), [1, 2, 3, 4, 5]) for name in names},
                         [float(v) for v in range(values)], title="edits"),
        show_rows({"targets A and B": torch.rand(2, 3, 64, 64), "upsampling, slerp": torch.rand(steps, 3, 64, 64)}, title="t", size=0.9),
        show_nearest_pairs({name: torch.rand(12, 3, 64, 64) for name in names}, torch.rand(16, 3, 64, 64), count=4, title="t"),
        show_untrained({"untrained transposed": torch.rand(16, 3, 64, 64), "untrained upsampling": torch.rand(16, 3, 64, 64)}),
        show_centre_crops({"real image": image[0], "transposed, epoch 2000": image[0], "upsampling, epoch 2000": image[0]}),
    ]
    for number, fig in enumerate(figures):
        assert fig.get_size_inches()[0] <= 8.1, number
        assert smallest_printed_text(fig) >= layout.MIN_TEXT_PT, number
    plt.close("all")


@pytest.mark.parametrize("frames, settings", [(4, 3), (8, 4)])  # smoke and full
def test_inversion_frames_keep_their_size_beside_the_loss_curves(frames, settings):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from gan_helpers.latent import Inversion
    from gan_helpers.latent_plots import show_inversions

    def inversion(seed):
        images = torch.rand(frames + 1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
        return Inversion(z=torch.zeros(1, 128), image=images[-1:], target=images[:1], losses=[0.2, 0.1] * 30,
                         final_mse=0.04, frames=images, frame_steps=list(range(0, 10 * (frames + 1), 10)), restart_mses=[0.04])

    grouped = {name: {f"variant {i}": inversion(i) for i in range(settings)} for name in ("transposed", "upsampling")}
    for results in (grouped, {"transposed": inversion(1), "upsampling": inversion(2)}):
        fig = show_inversions(results, title="t", tile=0.65)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        sides = [ax.get_window_extent(renderer).width / fig.dpi for ax in fig.axes if ax.images]
        # Constrained layout once shrank the frames to a sixth of their size to make room for a legend.
        assert min(sides) >= 0.6 * 0.8, sides
        assert fig.get_size_inches()[0] <= 8.1
    plt.close("all")


def test_an_inversion_row_at_other_steps_names_its_own_range():
    import matplotlib.pyplot as plt
    import torch

    from gan_helpers.latent import Inversion
    from gan_helpers.latent_plots import show_inversions

    def inversion(steps):
        frames = torch.rand(5, 3, 64, 64)
        return Inversion(z=torch.zeros(1, 128), image=frames[-1:], target=frames[:1], losses=[0.2, 0.1], final_mse=0.04,
                         frames=frames, frame_steps=[round(steps * i / 4) for i in range(5)], restart_mses=[0.04])

    fig = show_inversions({"spec": inversion(50), "spec_long": inversion(300)}, tile=0.65)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.images and ax.get_ylabel()]
    titles = [ax.get_title() for ax in fig.axes if ax.images and ax.get_title()]
    assert labels == ["spec", "spec_long\nsteps 0–300"]
    assert titles == ["target", "0", "12", "25", "38", "50"], "the columns carry the first row's steps"
    plt.close("all")


def test_line_plots_at_the_notebooks_size_print_text_at_8_pt_or_more(tmp_path):
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_helpers.runs.run_plots import plot_losses, plot_quality, plot_verdicts
    from gan_helpers.plots import plot_step_trace, run_style_legend

    runs_ = {}
    for kind in ("transposed", "upsampling"):
        run = tmp_path / kind
        run.mkdir()
        (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "loss_D": 0.7, "loss_G": 0.7 + e / 10, "D_x": 0.5,
                                                               "D_G_z": 0.4}) + "\n" for e in (1, 2, 3)))
        (run / "quality.jsonl").write_text("".join(json.dumps({"epoch": e, "swd": 300 - e}) + "\n" for e in (0, 1, 2)))
        runs_[kind] = run
    calibration = [{"case": "floor", "label": "real vs real (two halves)", "swd": 100.0},
                   {"case": "ceiling", "label": "untrained transposed generator", "swd": 320.0}]
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 2.9), layout="constrained")  # as notebooks 03 and 04 draw them
    plot_losses(list(runs_.values()), labels=list(runs_), ax=axes[0], legend=False)
    plot_verdicts(runs_, ax=axes[1], legend=False)
    run_style_legend(fig, list(runs_))
    assert len(fig.legends) == 1 and not axes[0].get_legend() and not axes[1].get_legend()
    _, ax = plt.subplots(figsize=(6.5, 2.6), layout="constrained")
    plot_quality(list(runs_.values()), list(runs_), calibration=calibration, ax=ax)
    ax.figure.canvas.draw()
    assert ax.figure.get_tightbbox().width <= 6.6  # the legend beside the axes stays inside the figure
    trace = plot_step_trace({"D_x": [0.5, 0.6], "D_G_z": [0.5, 0.4]}).figure
    alone = plot_losses(runs_["transposed"])  # its own legend, in room made above the curves
    legend = alone.get_legend().get_window_extent(alone.figure.canvas.get_renderer())
    for line in alone.get_lines():
        points = alone.transData.transform(line.get_xydata())
        assert not any(legend.contains(x, y) for x, y in points)
    for figure in (fig, ax.figure, trace, alone.figure):
        assert smallest_printed_text(figure) >= layout.MIN_TEXT_PT
    plt.close("all")


# ---- front matter ------------------------------------------------------------------------------

def test_training_settings_list_every_field_and_name_changed_defaults():
    rows = dict(front.training_settings(TrainConfig().replace(epochs=15, runs_dir="runs/quick")))
    assert list(rows) == [f.name for f in fields(TrainConfig)]
    assert rows["epochs"] == "`15` (default `100`)" and rows["lr_d"] == "`1e-05`"
    assert rows["runs_dir"] == "`'runs/quick'` (default `'runs'`)"
    assert "transposed" in rows["generator"] and "upsampling" in rows["generator"]


def test_departures_rows_todos_and_profiles(tmp_path):
    path = tmp_path / "departures.yaml"
    path.write_text(
        "- {point: 7, spec: S, lab: L, why: W, evidence: E}\n"
        "- {point: 8, spec: S2, lab: L2, why: W2, todo: measure it}\n"
        "- {point: 10, spec: S3, lab: '', why: '', todo: fill in, profiles: [quick]}\n"
        "- {point: 12, spec: S4, lab: L4, why: W4, profiles: [full]}\n")
    rows, warnings = front.load_departures(path, profile="quick")
    assert [r["point"] for r in rows] == ["7", "8"] and rows[1]["evidence"] == ""
    assert len(warnings) == 2 and "left out of the PDF" in warnings[1] and "measure it" in warnings[0]
    assert [r["point"] for r in front.load_departures(path, profile="full")[0]] == ["7", "8", "12"]
    path.write_text("- {point: 7, spec: S, lab: L}\n")
    with pytest.raises(UserError, match="row 1: no why"):
        front.load_departures(path)
    path.write_text("- {point: 7, spec: S, lab: L, why: W, reason: R}\n")
    with pytest.raises(UserError, match="unknown key"):
        front.load_departures(path)
    path.write_text("- {point: 7, spec: S, lab: 'Does this. And more.', why: 'Because; and more.', evidence: 'A test; a figure'}\n"
                    "- {point: 8, spec: S, lab: L, why: W, short: [what, why, evidence]}\n")
    rows, _ = front.load_departures(path)
    assert rows[0]["short"] == ("Does this", "Because", "A test") and rows[1]["short"] == ("what", "why", "evidence")
    path.write_text("- {point: 8, spec: S, lab: L, why: W, short: [what, why]}\n")
    with pytest.raises(UserError, match="short must be a list of three"):
        front.load_departures(path)


def test_the_project_departures_file_is_valid():
    rows, _ = front.load_departures(profile="full")
    assert len(rows) >= 6 and all(r["spec"] and r["lab"] and r["why"] for r in rows)


@pytest.mark.parametrize("header, body", [
    (["epoch", "grid energy % (T / U)", "colour distance (T / U)"], [["10", "1.2 / 0.4 " * 12, "0.05 / 0.03"]]),
    (["a", "long header here"], [["x" * 120, "y"]]),
])
def test_pipe_table_columns_are_wide_enough_for_their_headers(header, body):
    table = "\n".join(["| " + " | ".join(header) + " |", "|---|---|" + ("---|" if len(header) == 3 else ""),
                       *["| " + " | ".join(r) + " |" for r in body]])
    dashes = [len(c.strip(":")) for c in tables.widen_headers(table).splitlines()[1].strip("|").split("|")]
    share = [d / sum(dashes) * tables.LINE_CHARS for d in dashes]
    assert all(s >= len(h) for s, h in zip(share, header)), (share, header)


def test_pipe_table_label_column_keeps_a_short_label_whole_when_headers_fill_the_line():
    header = ["", *[f"quality number {i}" for i in range(6)]]  # headers alone exceed a line
    body = [["epoch 12", *["123.4"] * 6], ["reals", *["0.5"] * 6]]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                       *["| " + " | ".join(r) + " |" for r in body]])
    dashes = [len(c.strip(":")) for c in tables.widen_headers(table).splitlines()[1].strip("|").split("|")]
    assert dashes[0] >= len("epoch 12") + 2, dashes  # "epoch 12" on one line, not "epoch" over "12"


# ---- merging -----------------------------------------------------------------------------------

def merged_lab(fmt: str = "latex", notes: list | None = None) -> nbformat.NotebookNode:
    notebooks = lab_notebooks()
    notebooks["03_dcgan"] = plumbing_notebook()
    notebooks["03_dcgan"].cells += [new_markdown_cell(f"## Point {p} — x") for p in (1, 2, 3, 8, 9, 10)]
    notebooks["05_latent"].cells.append(new_markdown_cell("### Point 17 again"))
    notebooks["01_warmup"].cells.append(new_markdown_cell("## Point 18 draft", metadata={"tags": ["remove-cell"]}))
    departures, _ = front.load_departures(profile="smoke")
    info = {**INFO, "departures": departures, "settings": front.training_settings(TrainConfig())}
    return merge.merge(notebooks, info, fmt=fmt, notes=notes)


def test_merge_makes_one_chapter_per_notebook_with_every_point_anchored():
    merged = merged_lab()
    text = "\n".join(c.source for c in merged.cells)
    assert "epochs = 1" not in text and "import secrets_of_setup" not in text
    chapters = [c.source.splitlines()[0] for c in merged.cells if c.cell_type == "markdown" and c.source.startswith("# ")]
    assert chapters == ["# About this report {.unnumbered}", "# Title of 01_warmup", "# Title of 02_data", "# DCGAN",
                        "# Title of 04_upsampling", "# Title of 05_latent", "# Title of 06_reflections"]
    for point in reading.POINTS:
        assert text.count(f"\\label{{point-{point}}}") == 1 and f"\\pageref{{point-{point}}}" in text, point
    # a point answered twice gets two anchors, both in the table; a hidden heading answers nothing
    assert text.count("\\label{point-17-2}") == 1 and "\\pageref{point-17-2}" in text
    assert "point-18-2" not in text and "Point 18 draft" not in text
    assert merged.metadata.lab_report["title"] == "T" and "facts" not in merged.metadata.lab_report
    assert len({c.id for c in merged.cells}) == len(merged.cells)


def test_merged_front_matter_has_the_departures_in_short_rows_and_no_code_map_or_settings():
    merged = merged_lab()
    text = "\n".join(c.source for c in merged.cells)
    assert "## Departures from the spec" in text and "Departure" in text and "The spec says" not in text
    rows, _ = front.load_departures(profile="smoke")
    for row in rows:  # {averaging} without shipped records: the fallback (test_reference_result checks the numbers)
        short = [part.replace("{averaging}", "the SWD curves of G and G_ema") for part in row["short"]]
        assert all(tables.latex_inline(part) in text for part in short), row["short"]
        assert tables.latex_inline(row["why"]) not in text, "the long reasons stay in departures.yaml"
    assert "{averaging}" not in text
    assert "Where the code is" not in text and "Training settings" not in text
    assert "\\texttt{label\\_\\allowbreak{}noise}" not in text  # a training setting: in build.txt, not the PDF
    assert "From `notebooks/" not in text and "todo" not in text.lower()


def test_every_departure_has_a_short_row_of_short_lines():
    for profile in ("smoke", "quick", "full"):
        rows, _ = front.load_departures(profile=profile)
        for row in rows:
            assert len(row["short"]) == 3 and all(0 < len(part) <= 70 for part in row["short"]), row["short"]
            assert not any(s in " ".join(row["short"]) for s in ("python -m", ".pt", "build/", "results/")), row["short"]


def test_build_facts_keep_the_settings_and_folders_the_pdf_leaves_out():
    info = {"facts": [("Parameter set", "smoke")], "run_folders": "runs", "parameters": [],
            "settings": front.training_settings(TrainConfig())}
    facts = front.build_facts(info)
    assert "Training runs: runs" in facts and "  label_noise: 0.05" in facts


def test_merged_notebook_prints_no_code_outside_the_allow_list():
    notes = []
    merged = merged_lab(notes=notes)
    assert cleaning.printed_definitions(merged) == ["d_step"]
    assert cleaning.unlisted_definitions(merged) == []
    assert any("jitter_labels" in n for n in notes)


def test_html_merge_has_a_title_page_without_an_empty_author():
    merged = merge.merge(lab_notebooks(), {**INFO, "author": "", "runs_source": "trained here on cpu"}, fmt="html")
    title = merged.cells[0].source
    assert 'class="author"' not in title and "trained here on cpu" in title and 'lang="en"' in title


# ---- layout checks -----------------------------------------------------------------------------

def test_layout_notes_name_small_text_and_missing_captions():
    wide, narrow = png_bytes(12, 3, dpi=60), png_bytes(6, 3, dpi=60)
    assert layout.figure_inches(wide) == pytest.approx((12, 3), abs=0.05)
    assert layout.print_scale(12, 3, True) == pytest.approx(layout.TEXT_WIDTH_IN / 12)
    nb = new_notebook(cells=[new_markdown_cell("## Point 3 — noise"),
                             new_code_cell("", outputs=[new_output("display_data", data={"image/png": wide}, metadata={"lab_caption": "c"})]),
                             new_code_cell("", outputs=[new_output("display_data", data={"image/png": narrow})])])
    notes = layout.layout_notes(nb)
    assert len(notes) == 2 and "prints at 54%" in notes[0] and "no '**Figure" in notes[1]
    assert all(n.startswith("Point 3 — noise:") for n in notes)


# ---- rendering ---------------------------------------------------------------------------------

LONG_LINE = "value = " + " + ".join(f"term_{i:03d}" for i in range(40)) + "  # END_OF_LONG_LINE"
FILLER = "\n\n" + " ".join(["Filler text so that the points spread over several pages."] * 25)


def tiny_merged(fmt: str, **info) -> nbformat.NotebookNode:
    notebooks = lab_notebooks({"01_warmup": list(range(1, 10)), "02_data": list(range(10, 19))}, filler=FILLER)
    nb = notebooks["01_warmup"]
    nb.cells[1:1] = [
        new_markdown_cell("## A section with maths $x^2$\n\nGlyphs the text font lacks: √2 ≈ 1.41, 10⁻⁵ → done, x ∈ ℝ.\n\n"
                          "| epoch | grid energy % (transposed / upsampling) |\n|---|---|\n| 1 | " + "0.5 / 0.25 " * 12 + "|"),
        new_code_cell(LONG_LINE, metadata={"tags": ["report-show"]}, outputs=[
            new_output("stream", name="stdout", text="printed " + "x" * 200 + " END_OF_OUTPUT\n"),
            new_output("display_data", data={"image/png": png_bytes(), "text/plain": "<Figure>"}),
        ]),
        new_markdown_cell("**Figure (Point 1).** A caption under the figure."),
    ]
    departures, _ = front.load_departures(profile="smoke")
    base = {"title": "Tiny report title", "author": "Ada Author", "course": "Course Name", "date": "1 January 2030",
            "language": "english", "profile": "smoke", "runs_source": "trained here on cpu", "intro": "Intro.",
            "facts": [("Parameter set", "smoke")], "departures": departures, "settings": front.training_settings(TrainConfig())}
    return merge.merge(notebooks, {**base, **info}, fmt=fmt)


def pdf_pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")


def pdf_text(pdf: Path) -> str:
    return " ".join(" ".join(pdf_pages(pdf)).split())


def pdf_image_widths(pdf: Path) -> list[float]:
    """Printed width in points of every image in the PDF (pixels / pixels-per-inch * 72)."""
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:]]
    return [int(row[3]) / float(row[12]) * 72 for row in rows if row[2] == "image"]


def check_pdf(pdf: Path) -> None:
    assert pdf.is_file() and pdf.stat().st_size > 0
    text = pdf_text(pdf)
    for expected in ("Tiny report title", "Ada Author", "Course Name", "trained here on cpu", "Where each lab point is answered",
                     "Departures from the spec",
                     "A section with maths", "Point 18 — answer 18", "A caption under the figure", "END_OF_OUTPUT",
                     "√2 ≈ 1.41, 10⁻⁵ → done, x ∈ ℝ"):
        assert expected in text, expected
    # the long code line wraps instead of running off the page: its end is on the page
    assert "END_OF_LONG_LINE" in text and "term_039" in text
    widths = pdf_image_widths(pdf)
    assert widths and all(w < 595 for w in widths)  # the 12-inch figure is scaled into the page
    size = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    width, height = (float(v) for v in size.split("Page size:")[1].split("pts")[0].split(" x "))
    assert abs(width - 595) < 2 and abs(height - 842) < 2  # A4


needs_pdftools = pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) is not installed")
needs_latex = pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("pandoc")), reason="xelatex or pandoc is not installed")


@pytest.fixture(scope="module")
def latex_pdf(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("latex")
    return render.render_pdf(tiny_merged("latex"), folder / "out.pdf", folder / "build", "latex")


@needs_pdftools
@needs_latex
def test_latex_rendering_makes_a_complete_pdf(latex_pdf):
    check_pdf(latex_pdf)
    text = pdf_text(latex_pdf)
    assert "Contents" in text and "Figure 1.1: (Point 1) A caption under the figure." in text
    assert "grid energy % (transposed / upsampling)" in text  # the header is not broken over lines


@needs_pdftools
@needs_latex
def test_point_table_page_numbers_are_the_pages_of_the_headings(latex_pdf):
    pages = pdf_pages(latex_pdf)
    printed = {}  # page number printed in the footer -> text of that page
    for page in pages:
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        if lines and lines[-1].isdigit():
            printed[int(lines[-1])] = " ".join(" ".join(lines[:-1]).split())
    table = " ".join(" ".join(p.split("Where each lab point is answered", 1)[1].split()) for p in pages
                     if "Where each lab point is answered" in p)  # on the title page, after the contents, or the next
    spread = set()
    for point in reading.POINTS:  # the table names a section by its number and its heading after "Point N —"
        heading = f"Point {point} — answer {point}"
        page = int(table.split(f" answer {point} ", 1)[1].split()[0])
        assert heading in printed[page] and printed[page].count(heading) == 1, (point, page)
        spread.add(page)
    assert len(spread) >= 4  # the check spans several pages


@needs_latex
def test_title_page_leaves_out_an_empty_author(tmp_path):
    from nbconvert import LatexExporter

    exporter = LatexExporter(template_file=str(render.TEMPLATE_DIR / "lab_report.tex.j2"))
    merged = merge.merge(lab_notebooks(), {**INFO, "author": "", "runs_source": "shipped results"}, fmt="latex")
    tex, _ = exporter.from_notebook_node(merged)
    title = tex.split("\\thispagestyle{empty}")[1].split("\\tableofcontents")[0]
    assert "\\Large" not in title and "shipped results" in title and "\\setdefaultlanguage{english}" in tex


@needs_pdftools
@pytest.mark.skipif(not any(shutil.which(c) for c in render.CHROMIUMS), reason="Chromium is not installed")
def test_html_rendering_makes_a_complete_pdf(tmp_path):
    pdf = render.render_pdf(tiny_merged("html"), tmp_path / "out.pdf", tmp_path / "build", "html")
    check_pdf(pdf)


def test_no_renderer_is_one_sentence_naming_the_packages(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError) as error:
        render.choose_renderer()
    message = str(error.value)
    assert "texlive-xetex" in message and "chromium" in message and "\n" not in message
    assert message.count(". ") == 0  # one sentence


def test_renderer_prefers_latex_and_falls_back_to_chromium(monkeypatch):
    present = {"xelatex", "pandoc", "chromium"}
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in present else None)
    assert render.choose_renderer() == "latex"
    present.discard("xelatex")
    assert render.choose_renderer() == "html"
    with pytest.raises(UserError, match="needs xelatex"):
        render.choose_renderer("latex")


def test_the_command_is_wired():
    from gan_helpers import __main__ as cli
    from report import build as report

    args = cli.build_parser().parse_args(["report", "--render-only", "--runs-source", "shipped"])
    assert args._run is report.run and args.render_only and args.runs_source == "shipped"


def test_the_observations_check_fails_a_built_report_quoting_a_value_it_did_not_compute(tmp_path, capsys):
    from report import observations

    def built(printed):
        code = new_code_cell("print(...)", outputs=[new_output("stream", name="stdout", text=printed)])
        merged = new_notebook(cells=[new_markdown_cell("# 05"), code,
                                     new_markdown_cell("**Observations (Point 13).** MSE 0.0321 and |z| 22.3.")])
        path = tmp_path / "lab_report.ipynb"
        nbformat.write(merged, path)
        return str(path)

    assert observations.main([built("MSE 0.0321, |z| 22.5\n")]) == 1
    assert "point 13 quote 22.3" in capsys.readouterr().out
    assert observations.main([built("MSE 0.0321, |z| 22.3\n")]) == 0
    assert observations.main([str(tmp_path / "missing.ipynb")]) == 2
