"""The report: point table from headings, cleaning and merging, rendering, run summaries."""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gan_helpers import report, summary
from gan_helpers.errors import UserError

LAYOUT = {"01_warmup": [6], "02_data": [4, 5], "03_dcgan": [1, 2, 3, 7, 8, 9, 10],
          "04_upsampling": [11, 12], "05_latent": [13, 14, 15, 16, 17], "06_reflections": [18]}


def lab_notebooks(layout=LAYOUT) -> dict[str, nbformat.NotebookNode]:
    """Executed-looking notebooks with one '## Point N — …' heading per point."""
    found = {}
    for stem, points in layout.items():
        cells = [new_markdown_cell(f"# {stem[:2]} · Title of {stem}\n\nIntro.")]
        cells += [new_markdown_cell(f"## Point {p} — answer {p}\n\nText {p}.") for p in points]
        found[stem] = new_notebook(cells=cells)
    return found


def png_bytes() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 3))  # wider than the page: must be scaled to fit
    ax.plot([0, 1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


# ---- the point table ---------------------------------------------------------------------------

@pytest.mark.parametrize("heading, points", [
    ("Point 7 — discriminator step", [7]),
    ("Points 13–16: inversion and interpolation", [13, 14, 15, 16]),
    ("Points 13, 14 and 17", [13, 14, 17]),
    ("Point 10", [10]),
    ("Pointless heading with 3 numbers", []),
])
def test_points_in_headings(heading, points):
    assert report.points_in(heading) == points


def test_point_table_comes_from_headings():
    notebooks = lab_notebooks()
    notebooks["05_latent"].cells.append(new_markdown_cell("### Point 17 again, in a subsection"))
    where = report.point_locations(notebooks)
    assert set(where) == set(range(1, 19))
    assert where[7] == [report.Location(7, "03_dcgan", "Title of 03_dcgan", "Point 7 — answer 7")]
    assert [loc.section for loc in where[17]] == ["Point 17 — answer 17", "Point 17 again, in a subsection"]


def test_a_missing_point_is_an_error_naming_it():
    notebooks = lab_notebooks({**LAYOUT, "03_dcgan": [1, 2, 3, 7, 9, 10]})  # no point 8
    notebooks["01_warmup"].cells.append(new_markdown_cell("Point 8 in prose is not a heading.\n\n```\n## Point 8 in code\n```"))
    with pytest.raises(UserError, match=r"lab point\(s\) 8 are answered nowhere") as error:
        report.point_locations(notebooks)
    assert "\n" not in str(error.value)


# ---- cleaning and merging ----------------------------------------------------------------------

def plumbing_notebook() -> nbformat.NotebookNode:
    return new_notebook(cells=[
        new_markdown_cell("# 03 · DCGAN\n\nIntro."),
        new_code_cell("epochs = 5", metadata={"tags": ["parameters"]}),
        new_code_cell("epochs = 1", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("import secrets_of_setup", metadata={"tags": ["remove-cell"]}),
        new_markdown_cell("## Point 7 — the step"),
        new_code_cell("show_source(d_step)", metadata={"tags": ["remove-input"]}, outputs=[
            new_output("display_data", data={"text/markdown": "```python\ndef d_step(): ...\n```"})]),
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


def test_clean_hides_plumbing_and_drops_junk_outputs():
    cleaned = report.clean_notebook(plumbing_notebook())
    sources = [c.source for c in cleaned.cells]
    assert "epochs = 5" not in sources and "epochs = 1" not in sources and "import secrets_of_setup" not in sources
    shown = next(c for c in cleaned.cells if c.source == "show_source(d_step)")
    assert shown.metadata.transient == {"remove_source": True} and shown.outputs  # code hidden, output kept
    train = next(c for c in cleaned.cells if c.source == "train()")
    kinds = [(o.output_type, o.get("name"), sorted(o.get("data", {}))) for o in train.outputs]
    assert kinds == [("stream", "stdout", []), ("display_data", None, ["image/png", "text/plain"])]  # one copy of the figure
    quiet = next(c for c in cleaned.cells if c.source == "x = compute()")
    assert quiet.outputs == [] and "transient" not in quiet.metadata  # code kept, output dropped
    assert "figure-caption" in cleaned.cells[-1].metadata.tags


def test_merge_makes_one_chapter_per_notebook_with_anchored_points():
    notebooks = lab_notebooks()
    notebooks["03_dcgan"] = plumbing_notebook()
    notebooks["03_dcgan"].cells += [new_markdown_cell(f"## Point {p} — x") for p in (1, 2, 3, 8, 9, 10)]
    notebooks["05_latent"].cells.append(new_markdown_cell("### Point 17 again"))
    notebooks["01_warmup"].cells.append(new_markdown_cell("## Point 18 draft", metadata={"tags": ["remove-cell"]}))
    info = {"title": "T", "author": "A", "course": "C", "date": "today", "profile": "smoke",
            "intro": "Intro text.", "facts": [("Parameter set", "smoke")]}
    merged = report.merge(notebooks, info, fmt="latex")
    text = "\n".join(c.source for c in merged.cells)
    assert "epochs = 1" not in text and "import secrets_of_setup" not in text
    chapters = [c.source.splitlines()[0] for c in merged.cells if c.cell_type == "markdown" and c.source.startswith("# ")]
    assert chapters == ["# About this report {.unnumbered}", "# Title of 01_warmup", "# Title of 02_data", "# DCGAN",
                        "# Title of 04_upsampling", "# Title of 05_latent", "# Title of 06_reflections"]
    assert text.count("\\label{point-7}") == 1 and "\\pageref{point-18}" in text
    # a point answered twice gets two anchors, both in the table; a hidden heading answers nothing
    assert text.count("\\label{point-17}") == 1 and text.count("\\label{point-17-2}") == 1
    assert "\\pageref{point-17-2}" in text and "point-18-2" not in text and "Point 18 draft" not in text
    assert merged.metadata.lab_report["title"] == "T" and "facts" not in merged.metadata.lab_report
    assert len({c.id for c in merged.cells}) == len(merged.cells)


# ---- rendering ---------------------------------------------------------------------------------

LONG_LINE = "value = " + " + ".join(f"term_{i:03d}" for i in range(40)) + "  # END_OF_LONG_LINE"


def tiny_merged(fmt: str) -> nbformat.NotebookNode:
    notebooks = lab_notebooks({"01_warmup": list(range(1, 19))})
    nb = notebooks["01_warmup"]
    nb.cells[1:1] = [
        new_markdown_cell("## A section with maths $x^2$\n\nGlyphs the text font lacks: √2 ≈ 1.41, 10⁻⁵ → done, x ∈ ℝ."),
        new_code_cell(LONG_LINE, outputs=[
            new_output("stream", name="stdout", text="printed " + "x" * 200 + " END_OF_OUTPUT\n"),
            new_output("display_data", data={"image/png": png_bytes(), "text/plain": "<Figure>"}),
        ]),
        new_markdown_cell("**Figure (Point 1).** A caption under the figure."),
    ]
    info = {"title": "Tiny report title", "author": "Ada Author", "course": "Course Name", "date": "1 January 2030",
            "profile": "smoke", "intro": "Intro.", "facts": [("Parameter set", "smoke")]}
    return report.merge(notebooks, info, fmt=fmt)


def pdf_text(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def pdf_image_widths(pdf: Path) -> list[float]:
    """Printed width in points of every image in the PDF (pixels / pixels-per-inch * 72)."""
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:]]
    return [int(row[3]) / float(row[12]) * 72 for row in rows if row[2] == "image"]


def check_pdf(pdf: Path) -> None:
    assert pdf.is_file() and pdf.stat().st_size > 0
    text = pdf_text(pdf)
    for expected in ("Tiny report title", "Ada Author", "Course Name", "Where each lab point is answered",
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


@needs_pdftools
@pytest.mark.skipif(not (shutil.which("xelatex") and shutil.which("pandoc")), reason="xelatex or pandoc is not installed")
def test_latex_rendering_makes_a_complete_pdf(tmp_path):
    pdf = report.render_pdf(tiny_merged("latex"), tmp_path / "out.pdf", tmp_path / "build", "latex")
    check_pdf(pdf)
    assert "Contents" in pdf_text(pdf)


@needs_pdftools
@pytest.mark.skipif(not any(shutil.which(c) for c in report.CHROMIUMS), reason="Chromium is not installed")
def test_html_rendering_makes_a_complete_pdf(tmp_path):
    pdf = report.render_pdf(tiny_merged("html"), tmp_path / "out.pdf", tmp_path / "build", "html")
    check_pdf(pdf)


def test_no_renderer_is_one_sentence_naming_the_packages(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError) as error:
        report.choose_renderer()
    message = str(error.value)
    assert "texlive-xetex" in message and "chromium" in message and "\n" not in message
    assert message.count(". ") == 0  # one sentence


def test_renderer_prefers_latex_and_falls_back_to_chromium(monkeypatch):
    present = {"xelatex", "pandoc", "chromium"}
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in present else None)
    assert report.choose_renderer() == "latex"
    present.discard("xelatex")
    assert report.choose_renderer() == "html"
    with pytest.raises(UserError, match="needs xelatex"):
        report.choose_renderer("latex")


def test_config_needs_exactly_title_author_course(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("title: T\nauthor: A\ncourse: C\n")
    assert report.load_config(path) == {"title": "T", "author": "A", "course": "C"}
    path.write_text("title: T\nauthor: A\ncourse: C\nauthr: B\n")
    with pytest.raises(UserError, match="unknown field"):
        report.load_config(path)
    path.write_text("title: T\n")
    with pytest.raises(UserError, match="no author, course"):
        report.load_config(path)


def test_the_project_config_is_valid():
    assert set(report.load_config()) == {"title", "author", "course"}


# ---- run summaries (point 18) ------------------------------------------------------------------

def fake_run(folder: Path, generator: str, losses: list[tuple[float, float]], epochs: int | None = None, seconds: float = 2.0) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    config = {"data": str(folder / "nodata"), "generator": generator, "epochs": epochs or len(losses),
              "batch_size": 8, "lr_d": 1e-5, "lr_g": 1e-4, "device": "cpu", "max_images": None}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"epoch": i + 1, "loss_D": d, "loss_G": g, "D_x": 0.7, "D_G_z": 0.3, "seconds": seconds} for i, (d, g) in enumerate(losses)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "checkpoints" / f"epoch-{len(losses):06d}.pt").write_bytes(b"")
    return folder


def test_run_summary_numbers(tmp_path):
    losses = [(1.0, 1.0)] * 18 + [(0.5, 1.5), (0.5, 2.5)]
    s = summary.run_summary(fake_run(tmp_path / "00000-t", "transposed", losses))
    assert s["epochs"] == 20 and s["seconds"] == 40.0 and s["seconds_per_epoch"] == 2.0
    assert s["final_loss_D"] == 0.5 and s["final_loss_G"] == 2.5
    assert (s["best_loss_D"], s["best_loss_D_epoch"]) == (0.5, 19)
    assert s["tail_epochs"] == 2 and s["end_gap"] == pytest.approx(1.5) and s["end_ratio"] == pytest.approx(4.0)
    assert s["end_D_x"] == pytest.approx(0.7) and s["problems"] == []
    assert s["device"] == "cpu"


def test_run_summary_names_what_went_wrong(tmp_path):
    run = fake_run(tmp_path / "00001-t", "transposed", [(1.0, 1.0), (float("nan"), 2.0)], epochs=5)
    (run / "FORKED_FROM").write_text(str(tmp_path / "00000-t" / "checkpoints" / "epoch-000010.pt") + "\n")
    problems = " | ".join(summary.run_summary(run)["problems"])
    assert "non-finite losses in 1 epoch(s), first at epoch 2" in problems
    assert "stopped at epoch 2 of 5" in problems
    assert "continued from an earlier run's checkpoint (00000-t, epoch-000010)" in problems


def test_reflections_quote_the_numbers_of_the_runs(tmp_path):
    fast = summary.run_summary(fake_run(tmp_path / "00000-t", "transposed", [(0.7, 0.8)] * 10, seconds=2.0))
    slow = summary.run_summary(fake_run(tmp_path / "00001-u", "upsampling", [(0.2, 3.0)] * 10, seconds=5.0))
    text = summary.reflections([fast, slow])
    assert "trained 10 epochs" in text["runs"] and "20 s of training time" in text["runs"]
    assert "transposed run, over its last 1 epoch, the losses stayed in balance" in text["balance"]
    assert "upsampling run, over its last 1 epoch, the discriminator was winning (loss_G was 15 times loss_D)" in text["balance"]
    assert "2.5 times as long" in text["time"] and "70 s" in text["time"]
    assert "With 10 epochs" in text["length"]
    assert "Nothing went wrong" in text["problems"]
    table = summary.summary_table([fast, slow])
    assert table.splitlines()[0] == "| | transposed | upsampling |" and "| 0.2 / 3 |" in table
    assert not math.isnan(fast["end_ratio"])
