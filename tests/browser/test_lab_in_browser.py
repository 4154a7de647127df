"""The lab as a student meets it: JupyterLab in a real (headless) browser.

Runs notebooks 01, 03 and 05 under the smoke parameters, sees notebook 03's
live training panel change between two epochs, moves a slider of the latent explorer, saves, and reopens the page twice: once with the kernel
still running and once after shutting it down. The widgets (explorer and
progress bars) must come back from the state saved in the notebook, never
as "Error displaying widget: model not found". Screenshots of the explorer
before and after go to build/browser/.

Slow (a few minutes on 2 cores) and needs Chromium, so it runs only from
`make browser-test` (which sets LAB_BROWSER_TEST=1), not in `make test`.
"""

from __future__ import annotations

import os

import nbformat
import pytest

from lab_page import LIVE_PANEL, SHOTS, LabPage, wait_for
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.skipif(os.environ.get("LAB_BROWSER_TEST") != "1",
                                reason="the browser test runs with `make browser-test` (headless Chromium, a few minutes)")

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"  # the notebook metadata key the widget manager saves under
RUN_LIMIT = {"01_warmup.ipynb": 120, "03_dcgan.ipynb": 600, "05_latent.ipynb": 600}  # seconds for Run All with the smoke runs trained
NEW_VALUE = 3.5  # typed into the explorer's first slider; inside every slider's range (at least ±4)


def run_notebook(page: LabPage, name: str) -> None:
    page.open(name)
    page.run_all(RUN_LIMIT[name])
    assert not page.errors(), f"{name} shows errors:\n" + "\n".join(page.errors())


def test_warmup_runs_without_errors(page: LabPage) -> None:
    run_notebook(page, "01_warmup.ipynb")


def test_training_shows_a_live_panel_that_changes_every_epoch(page: LabPage) -> None:
    """Notebook 03 trains its smoke run (2 epochs, into a fresh folder): the panel shows epoch 1, then epoch 2."""
    page.open("03_dcgan.ipynb")
    page.run_all(RUN_LIMIT["03_dcgan.ipynb"], wait=False)
    states = []
    for epoch in (1, 2):
        state = wait_for(f"the live panel at epoch {epoch}",
                         lambda: (panel := page.live_panel()) and f"epoch {epoch} of 2" in panel["text"] and panel,
                         RUN_LIMIT["03_dcgan.ipynb"], every=0.2)
        wait_for(f"the live panel's images at epoch {epoch} to be drawn", lambda: page.driver.execute_script(
            "return [...arguments[0].querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)", state["element"]), 30)
        page.screenshot(SHOTS / f"live-panel-epoch-{epoch}.png", state["element"])
        states.append(state)
    first, second = states
    assert len(second["images"]) == 2 and all(second["images"]), f"the panel should show the curves and the grid: {second['images']}"
    assert second["images"][0] != first["images"][0], "the curves were not redrawn between epochs 1 and 2"
    assert second["images"][1] != first["images"][1], "the grid was not replaced at sample epoch 2"
    page.wait_idle(RUN_LIMIT["03_dcgan.ipynb"])
    assert not page.errors(), "03_dcgan.ipynb shows errors:\n" + "\n".join(page.errors())
    panels = page.driver.find_elements(By.CSS_SELECTOR, LIVE_PANEL)
    assert len(panels) == 1, f"the training cell should hold one panel, not {len(panels)}"
    page.shut_down_kernel()  # its CPU back for the next notebook's kernel


def test_latent_widgets_survive_reload(page: LabPage, notebook_dir) -> None:
    run_notebook(page, "05_latent.ipynb")
    bars = page.progress_lines()
    assert bars and all("final MSE" in line for line in bars), f"inversion progress bars missing or unfinished: {bars}"

    # The explorer answers a slider: the image of that generator is redrawn by the kernel.
    explorer = page.explorer()
    shown = page.explorer_state(explorer)
    assert len(shown["labels"]) == 8 and len(shown["images"]) == 2, f"the explorer should show 4 sliders and an image per generator: {shown}"
    page.set_slider(explorer, 0, NEW_VALUE)
    moved = wait_for("the first generator's image to be redrawn",
                     lambda: (now := page.explorer_state(explorer))["images"][0] != shown["images"][0] and now, timeout=60)
    assert moved["readouts"][0] == f"{NEW_VALUE:.2f}", f"the first slider reads {moved['readouts'][0]}, not {NEW_VALUE:.2f}"
    assert moved["images"][1] == shown["images"][1], "moving a slider of the first generator redrew the second one's image"
    page.screenshot(SHOTS / "explorer-before-reload.png", page.explorer())

    page.save()
    saved = nbformat.read(notebook_dir / "05_latent.ipynb", as_version=4)
    assert WIDGET_STATE in saved.metadata.get("widgets", {}), (
        f"the saved notebook holds no widget state; the widget manager's setting as served: {page.widget_setting()} "
        f"(tools/setup.sh installs tools/lab-settings.json to turn saveState on)")

    # Reopened twice: with the kernel still running, then after it was shut down (state from the file only).
    for when in ("with the kernel running", "after the kernel was shut down"):
        if when.startswith("after"):
            page.shut_down_kernel()
        page.open("05_latent.ipynb")
        page.settle_widgets()
        assert not page.widget_errors(), (
            f"reopened {when}, {len(page.widget_errors())} widget outputs say '{page.widget_errors()[0]}'; "
            f"widget manager setting: {page.widget_setting()}")
        again = page.explorer_state(page.explorer())
        assert again == moved, f"reopened {when}, the explorer shows {again['readouts']} instead of {moved['readouts']} (or other images)"
        assert page.progress_lines() == bars, f"reopened {when}, the progress bars read {page.progress_lines()} instead of {bars}"
    page.screenshot(SHOTS / "explorer-after-reload.png", page.explorer())
