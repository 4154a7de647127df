"""Fixtures for the browser test: smoke copies of notebooks, a private JupyterLab server, headless Chromium.

The server is the project's own ``.venv/bin/jupyter lab`` with the settings
``tools/setup.sh`` installs (widget state saved with the notebook), bound to
127.0.0.1 on a free port with a random token. Only the per-user settings and
workspaces are redirected to temporary folders, so nothing a person has set
changes what the test sees.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from gan_helpers.paths import PROJECT_ROOT
from lab_page import SHOTS, LabPage, wait_for

NOTEBOOKS = ("01_warmup", "03_dcgan", "05_latent")
SERVER_START = 120  # seconds for JupyterLab to answer
CONFIG_LINE = "config = experiment_config(profile, data=data, progress=progress)"  # notebook 03's experiment
WINDOW = (1400, 1000)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def smoke_runs() -> None:
    """The smoke experiment's two runs, trained once (a minute on 2 cores) or reused, before the browser opens.

    Training up front keeps the test the same whether or not runs/smoke
    already exists: notebook 05 then only loads them.
    """
    code = "from gan_helpers.runs.experiment import experiment_config, lab_runs; lab_runs(experiment_config('smoke'))"
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=900)


@pytest.fixture(scope="session")
def notebook_dir(tmp_path_factory, smoke_runs) -> Path:
    """Notebooks 01, 03 and 05 with the smoke parameters injected, and progress bars and widgets on as a student has them.

    Notebook 03 trains into a fresh runs folder (the smoke runs would only be reused), so its training
    cell shows the live panel epoch by epoch.
    """
    folder = tmp_path_factory.mktemp("notebooks")
    command = [sys.executable, "-m", "gan_helpers", "notebooks", "inject", "--profile", "smoke", "--out", str(folder)]
    for stem in NOTEBOOKS:
        command += ["--notebook", stem]
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, timeout=120, stdout=subprocess.DEVNULL)
    for stem in ("03_dcgan", "05_latent"):
        path = folder / f"{stem}.ipynb"
        nb = nbformat.read(path, as_version=4)
        injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        assert "progress = False" in injected.source, "the runner no longer injects progress = False; update this fixture"
        injected.source = injected.source.replace("progress = False", "progress = True")
        if stem == "05_latent":
            assert "interactive = False" in injected.source, "the runner no longer injects interactive = False; update this fixture"
            injected.source = injected.source.replace("interactive = False", "interactive = True")
        if stem == "03_dcgan":
            setup = next(c for c in nb.cells if c.cell_type == "code" and CONFIG_LINE in c.source)
            setup.source = setup.source.replace(CONFIG_LINE, f"{CONFIG_LINE[:-1]}, runs_dir={str(folder / 'runs')!r})")
        nbformat.write(nb, path)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def lab_server(notebook_dir, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(base URL, token) of a JupyterLab serving `notebook_dir`; stopped (its whole process group) afterwards."""
    jupyter = PROJECT_ROOT / ".venv" / "bin" / "jupyter"
    assert jupyter.is_file(), f"{jupyter} is missing; run `make setup` first"
    home = tmp_path_factory.mktemp("jupyter")
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no news pop-up over the screenshots
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    port, token = _free_port(), secrets.token_hex(16)
    command = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebook_dir}",
               "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: the command registry the menus use
    if os.geteuid() == 0:
        command.append("--allow-root")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):  # only this run's screenshots
        old.unlink()
    log = (SHOTS / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, cwd=notebook_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"JupyterLab to answer on {base} (log: {SHOTS / 'jupyterlab.log'})",
                 lambda: server.poll() is not None or _answers(f"{base}/api/status?token={token}"), SERVER_START)
        assert server.poll() is None, f"JupyterLab exited with {server.returncode}; see {SHOTS / 'jupyterlab.log'}"
        yield base, token
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def driver(lab_server):
    """Headless Chromium from Debian (`chromium`, `chromium-driver`) through its own WebDriver, never a download."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, webdriver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and webdriver_path, "Chromium is not installed; run `make setup-browser` (apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(flag)  # no sandbox: CI runs as root; /dev/shm is small in containers
    chrome = webdriver.Chrome(service=Service(webdriver_path), options=options)
    chrome.set_page_load_timeout(60)
    chrome.set_script_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def page(driver, lab_server, request) -> Iterator[LabPage]:
    """The browser tab; a screenshot of the whole window lands in build/browser/ when the test fails."""
    base, token = lab_server
    lab = LabPage(driver, base, token)
    yield lab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        lab.screenshot(SHOTS / f"failed-{request.node.name}.png")
