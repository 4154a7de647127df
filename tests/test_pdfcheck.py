"""The PDF checks (report.pdfcheck) on tiny PDFs drawn here with matplotlib."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from report import pdfcheck

pytestmark = pytest.mark.skipif(bool(pdfcheck.missing_tools()), reason="poppler-utils (pdfimages, pdftotext, pdfinfo) is not installed")

WORDS = " ".join(f"word{i}" for i in range(60))


def draw_pdf(path: Path, pages: list[dict], dpi: int = 300) -> Path:
    """One A4 page per entry: {"text": ..., "image": (interpolation,) or None}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    pixels = np.random.default_rng(0).random((64, 64, 3))
    with PdfPages(path) as pdf:
        for page in pages:
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.05, 0.95, page.get("text", ""), wrap=True, va="top", fontsize=8)
            if page.get("image"):
                ax = fig.add_axes((0.1, 0.3, 0.4, 0.28))  # about 3.3 in wide: 64 px at about 20 ppi unless resampled
                ax.imshow(pixels, interpolation=page["image"])
                ax.set_axis_off()
            pdf.savefig(fig, dpi=dpi)
            plt.close(fig)
    return path


def all_points() -> str:
    return " ".join(f"Point {p}" for p in pdfcheck.POINTS)


def test_a_sharp_full_pdf_passes(tmp_path):
    pdf = draw_pdf(tmp_path / "good.pdf", [
        {"text": "Title"},  # the title page may be short
        {"text": f"{WORDS} {all_points()}"},
        {"text": "A figure page", "image": "nearest"},  # resampled at 300 dpi without smoothing
    ])
    assert pdfcheck.problems(pdf) == []
    placed = pdfcheck.images(pdf)
    assert len(placed) == 1 and placed[0].page == 3 and placed[0].x_ppi >= 290
    assert pdfcheck.main([str(pdf)]) == 0


def test_blurry_images_empty_pages_missing_points_and_length_are_named(tmp_path):
    pdf = draw_pdf(tmp_path / "bad.pdf", [
        {"text": "Title"},
        {"text": f"{WORDS} Point 1 Point 2 Point 13"},
        {"text": "one row"},  # a nearly blank page
        {"text": WORDS, "image": "none"},  # the 64 px embedded as they are: far below 200 ppi
    ])
    found = pdfcheck.problems(pdf, max_pages=3)
    assert any(line.startswith("page 4:") and "ppi, below 200" in line for line in found), found
    assert any(line.startswith("page 3: 2 words and no image") for line in found), found
    assert not any(line.startswith("page 1") for line in found)
    points = next(line for line in found if "names no 'Point N'" in line)
    assert "3, 4" in points and " 1," not in points and "13" not in points.split("point(s)")[1].split(", ")
    assert any("4 pages, more than 3" in line for line in found)
    assert pdfcheck.main([str(pdf)]) == 1


def test_missing_pdf_is_one_sentence(tmp_path, capsys):
    assert pdfcheck.main([str(tmp_path / "nothing.pdf")]) == 2
    assert "make report PROFILE=smoke" in capsys.readouterr().out


def test_runs_without_poppler_only_to_say_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert pdfcheck.main([str(tmp_path / "x.pdf")]) == 2
    assert "poppler-utils" in capsys.readouterr().out


def filler_pages(count: int) -> list[dict]:
    return [{"text": f"{WORDS} {all_points()}"} for _ in range(count)]


@pytest.mark.parametrize("profile, limit", [("smoke", 20), ("full", 26), ("quick", 26)])
def test_the_page_limit_follows_the_parameter_set_on_the_title_page(tmp_path, profile, limit):
    title = {"text": f"Lab report\nParameter set    {profile}\nBuilt on    some CPU"}
    at_limit = draw_pdf(tmp_path / "at.pdf", [title, *filler_pages(limit - 1)])
    assert pdfcheck.profile_of(at_limit) == profile and pdfcheck.page_limit(at_limit)[0] == limit
    assert pdfcheck.problems(at_limit) == []
    over = draw_pdf(tmp_path / "over.pdf", [title, *filler_pages(limit)])
    found = pdfcheck.problems(over)
    assert found == [f"{limit + 1} pages, more than {limit} (the {profile} report's limit)"], found
    assert pdfcheck.main([str(over)]) == 1


def test_the_smoke_limit_is_stricter_than_the_full_one_and_an_explicit_limit_wins(tmp_path, capsys):
    assert pdfcheck.MAX_PAGES["smoke"] == 20 and pdfcheck.MAX_PAGES["full"] == 26
    pages = [{"text": "Lab report\nParameter set    smoke"}, *filler_pages(21)]  # 22 pages: too many for smoke, not for full
    pdf = draw_pdf(tmp_path / "smoke.pdf", pages)
    assert any("22 pages, more than 20" in line for line in pdfcheck.problems(pdf))
    assert pdfcheck.main([str(pdf), "--max-pages", "26"]) == 0
    assert pdfcheck.main([str(pdf), "--max-pages", "21"]) == 1
    assert "22 pages, more than 21 (the limit given)" in capsys.readouterr().out
    unnamed = draw_pdf(tmp_path / "unnamed.pdf", [{"text": "Title"}, *filler_pages(26)])  # 27 pages, no parameter set
    assert pdfcheck.profile_of(unnamed) is None
    assert any(f"27 pages, more than {pdfcheck.DEFAULT_MAX_PAGES}" in line for line in pdfcheck.problems(unnamed))


def test_a_page_limit_below_one_is_one_sentence(tmp_path, capsys):
    pdf = draw_pdf(tmp_path / "one.pdf", [{"text": "Title"}])
    assert pdfcheck.main([str(pdf), "--max-pages", "0"]) == 2
    assert "--max-pages 0 allows no page" in capsys.readouterr().out
