"""A JupyterLab page in a real browser, driven the way a student uses it: open, run all, save, reload.

Commands go through JupyterLab's own command registry (the one its menus
call), reached as ``window.jupyterapp`` because the test server runs with
``expose_app_in_browser``. Every wait is bounded and ends in an assertion
that says what was still missing.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from gan_helpers.paths import PROJECT_ROOT

T = TypeVar("T")

SHOTS = PROJECT_ROOT / "build" / "browser"  # screenshots and the server's log

WIDGET_ERROR = "Error displaying widget"  # what JupyterLab writes where a widget's model is missing
EXPLORER = ".jp-OutputArea-output:has(.widget-hslider)"  # the output holding the latent explorer's sliders
PROGRESS = ".widget-hprogress"  # one per tqdm bar
LIVE_PANEL = ".gan-live-panel"  # the live training panel (gan_helpers.runs.live)

_STATUS_JS = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!w || !w.context || !w.sessionContext) return null;
const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
return {path: w.context.path, ready: w.context.isReady, kernel: kernel ? kernel.status : null, dirty: w.context.model.dirty};
"""

_OUTPUTS_JS = """
const out = [];
window.jupyterapp.shell.currentWidget.content.widgets.forEach((cell, index) => {
  if (cell.model.type !== 'code') return;
  for (let i = 0; i < cell.model.outputs.length; i++) out.push({cell: index, ...cell.model.outputs.get(i).toJSON()});
});
return out;
"""


def wait_for(what: str, probe: Callable[[], T], timeout: float, every: float = 0.5) -> T:
    """The first truthy value of `probe()` within `timeout` seconds; an AssertionError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except StaleElementReferenceException:  # an element was redrawn while it was read: look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what} (last seen: {value!r})")
        time.sleep(every)


class LabPage:
    """One browser tab on a JupyterLab server at `base_url` with `token`."""

    def __init__(self, driver: WebDriver, base_url: str, token: str) -> None:
        self.driver, self.base_url, self.token = driver, base_url, token

    # ---- the notebook ---------------------------------------------------------------------------

    def open(self, name: str, timeout: float = 120) -> None:
        """Load the page with notebook `name` and wait until its kernel is idle (a new kernel if none runs)."""
        self.driver.get(f"{self.base_url}/lab/tree/{name}?token={self.token}&reset")
        wait_for(f"{name} to open with an idle kernel", lambda: self._status_is(name, kernel="idle"), timeout)

    def run_all(self, timeout: float, wait: bool = True) -> None:
        """Run all cells (Run ▸ Run All Cells) and, with `wait`, wait until none is queued or running."""
        self._command("notebook:run-all-cells")
        time.sleep(1)  # the first cell's [*] appears only after the command is handled
        if wait:
            self.wait_idle(timeout)

    def wait_idle(self, timeout: float) -> None:
        """Wait until no cell is queued or running."""

        def finished() -> bool:
            busy = [p.text for p in self.driver.find_elements(By.CSS_SELECTOR, ".jp-InputPrompt") if "*" in p.text]
            return not busy and self._status_is(None, kernel="idle")

        wait_for("all cells to finish", finished, timeout, every=2)

    def errors(self) -> list[str]:
        """One line per error output ("cell 7: NameError: …"), from the notebook model, not the page."""
        return [f"cell {o['cell']}: {o['ename']}: {o['evalue'][:200]}"
                for o in self.driver.execute_script(_OUTPUTS_JS) if o["output_type"] == "error"]

    def save(self, timeout: float = 30) -> None:
        """File ▸ Save, and wait until the notebook is no longer marked as changed."""
        self._command("docmanager:save")
        wait_for("the notebook to be saved", lambda: self._status_is(None, dirty=False), timeout)

    def shut_down_kernel(self, timeout: float = 30) -> None:
        """Kernel ▸ Shut Down Kernel, and wait until the server no longer lists that kernel."""
        kernel = self.driver.execute_script("return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id")
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.jupyterapp.shell.currentWidget.sessionContext.shutdown().then(() => done(true), e => done(String(e)));"
        )
        wait_for(f"kernel {kernel} to be gone", lambda: kernel not in [k["id"] for k in self.api("api/kernels")], timeout)

    # ---- widgets --------------------------------------------------------------------------------

    def widget_errors(self) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.XPATH, f"//*[contains(text(), '{WIDGET_ERROR}')]")]

    def settle_widgets(self, timeout: float = 60) -> None:
        """Wait until no widget output still says "Loading widget…" (each becomes a view or an error)."""
        loading = f"//*[contains(@class, 'jp-OutputArea-output') and starts-with(normalize-space(.), 'Loading widget')]"
        wait_for("widget outputs to finish loading", lambda: not self.driver.find_elements(By.XPATH, loading), timeout)
        time.sleep(1)  # views of nested widgets render a moment after their container

    def explorer(self, timeout: float = 60) -> WebElement:
        """The latent explorer's output (all its sliders and images), scrolled into view."""
        element = wait_for("the latent explorer's sliders", lambda: self.driver.find_elements(By.CSS_SELECTOR, EXPLORER), timeout)[0]
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        time.sleep(0.5)
        return element

    @staticmethod
    def explorer_state(explorer: WebElement) -> dict[str, list[str]]:
        """What the explorer shows: slider labels, their readouts and the images' data URLs."""
        return {
            "labels": [e.text for e in explorer.find_elements(By.CSS_SELECTOR, ".widget-hslider .widget-label")],
            "readouts": [e.text for e in explorer.find_elements(By.CSS_SELECTOR, ".widget-hslider .widget-readout")],
            "images": [e.get_attribute("src") for e in explorer.find_elements(By.CSS_SELECTOR, ".widget-output img")],
        }

    def set_slider(self, explorer: WebElement, index: int, value: float) -> None:
        """Type `value` into slider `index`'s readout and press Enter, as a student can."""
        readout = explorer.find_elements(By.CSS_SELECTOR, ".widget-hslider .widget-readout")[index]
        readout.click()
        self.driver.execute_script("document.execCommand('selectAll', false, null)")
        readout.send_keys(f"{value}\n")

    def live_panel(self) -> dict[str, object] | None:
        """What the live training panel shows (its status and warning text, its images' sources), or None before it exists."""
        panels = self.driver.find_elements(By.CSS_SELECTOR, LIVE_PANEL)
        if not panels:
            return None
        return {"element": panels[0], "text": panels[0].text,
                "images": [e.get_attribute("src") for e in panels[0].find_elements(By.CSS_SELECTOR, "img")]}

    def progress_lines(self) -> list[str]:
        """The text beside each tqdm bar (e.g. "3/3 [00:01<00:00, 2.9step/s, final MSE 0.12]")."""
        lines = [bar.find_element(By.XPATH, "..").text for bar in self.driver.find_elements(By.CSS_SELECTOR, PROGRESS)]
        return [" ".join(line.replace("\u2007", " ").split()) for line in lines]  # tqdm pads with figure spaces

    # ---- the server -----------------------------------------------------------------------------

    def api(self, path: str) -> object:
        """GET `path` from the server's REST API (JSON)."""
        with urllib.request.urlopen(f"{self.base_url}/{path}?token={self.token}", timeout=10) as response:
            return json.load(response)

    def widget_setting(self) -> object:
        """The widget manager's settings as the server hands them to the page (saveState among them)."""
        plugin = self.api("lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin")
        return {"defaults": plugin["schema"]["properties"]["saveState"]["default"], "user": plugin.get("settings")}

    def screenshot(self, path: Path, element: WebElement | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        (element.screenshot if element is not None else self.driver.save_screenshot)(str(path))
        return path

    # ---- helpers --------------------------------------------------------------------------------

    def _command(self, command: str) -> None:
        self.driver.execute_script(f"window.jupyterapp.commands.execute({json.dumps(command)})")

    def _status_is(self, name: str | None, **expected) -> bool:
        status = self.driver.execute_script(_STATUS_JS)
        if not status or not status["ready"] or (name is not None and status["path"] != name):
            return False
        return all(status[key] == value for key, value in expected.items())
