#!/usr/bin/env bash
# Bring the project to life: the virtualenv with the project and its
# dependencies, JupyterLab's settings for the lab, and a final check.
#   tools/setup.sh            the Python environment every command uses (make setup, make lab)
#   tools/setup.sh --report   also the system packages the PDF report needs (make report, make test)
#   tools/setup.sh --browser  also Chromium and its WebDriver for the browser test (make browser-test)
# System packages are installed when run as root; otherwise the apt-get
# command is printed. Idempotent: a second run only re-checks and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY=${PYTHON:-python3}
STAMP=$VENV/.installed
REPORT_PACKAGES="texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc poppler-utils"
BROWSER_PACKAGES="chromium chromium-driver"
# JupyterLab reads every file in overrides.d as default settings; the user's
# own overrides.json and settings stay theirs.
LAB_SETTINGS=$VENV/share/jupyter/lab/settings/overrides.d/gan-lab.json

wanted=""
for arg in "$@"; do
  case "$arg" in
    --report) wanted="$wanted $REPORT_PACKAGES" ;;
    --browser) wanted="$wanted $BROWSER_PACKAGES" ;;
    *) echo "tools/setup.sh: unknown option $arg (use --report and/or --browser)" >&2; exit 2 ;;
  esac
done

# 1. The virtualenv. torch and torchvision are resolved together from the
# package index (never a stray local torch wheel that torchvision cannot
# load against), then the project is installed editable on top.
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "Installing the project and its dependencies into $VENV (first time: a few minutes)"
  # (the filter hides pip's notes about this machine's extra, empty package folders)
  "$VENV/bin/pip" install -q --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
  "$VENV/bin/pip" install -q -e . 2> >(grep -v "is ignored: it is neither" >&2)
  touch "$STAMP"
fi

# 2. The kernel JupyterLab and papermill use for the notebooks.
if [ ! -f "$VENV/share/jupyter/kernels/python3/kernel.json" ]; then
  "$VENV/bin/python" -m ipykernel install --sys-prefix >/dev/null
fi

# 3. JupyterLab settings the lab ships (tools/lab-settings.json): widget
# state is saved with the notebook, so the latent explorer and progress bars
# still display after a reload or a kernel shutdown.
if ! cmp -s tools/lab-settings.json "$LAB_SETTINGS"; then
  mkdir -p "$(dirname "$LAB_SETTINGS")"
  cp tools/lab-settings.json "$LAB_SETTINGS.tmp"
  mv -f "$LAB_SETTINGS.tmp" "$LAB_SETTINGS"
fi

# 4. System packages asked for: the report's (xelatex, pandoc; pdftotext for
# checks) and the browser test's (Chromium driven through chromedriver).
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "Some commands need system packages; install them with:"
    echo "  sudo apt-get install -y --no-install-recommends$missing"
  fi
fi

# 5. The check: everything imports, the widget setting names a real option,
# and which device training will use.
"$VENV/bin/python" - "$LAB_SETTINGS" <<'PY'
import json, sys
from pathlib import Path

import torch, torchvision  # noqa: F401
import jupyterlab, matplotlib, ipywidgets, nbconvert, papermill, pytest, nbval, selenium, gan_helpers  # noqa: F401

# JupyterLab ignores a setting whose plugin id or option it does not know, without a word.
share = Path(sys.prefix, "share/jupyter")
for plugin, options in json.loads(Path(sys.argv[1]).read_text()).items():
    package, name = plugin.split(":")
    schemas = (share / "labextensions" / package / "schemas" / package / f"{name}.json", share / "lab" / "schemas" / package / f"{name}.json")
    known = next((json.loads(s.read_text())["properties"] for s in schemas if s.is_file()), {})
    unknown = sorted(set(options) - set(known))
    if not known or unknown:
        raise SystemExit(f"tools/lab-settings.json: the installed JupyterLab has no setting {plugin} {', '.join(unknown)}; "
                         "check its name against the installed extension's schema.")
device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"Ready: torch {torch.__version__}, torchvision {torchvision.__version__}; training will use {device}.")
PY
