#!/usr/bin/env bash
# Bring the project to life: system packages for the report (when root),
# the virtualenv with the project and its dependencies, and a final check.
# Idempotent: a second run only re-checks and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY=${PYTHON:-python3}
STAMP=$VENV/.installed
SYSTEM_PACKAGES="texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc poppler-utils"

# 1. System packages the report needs (xelatex, pandoc; pdftotext for checks).
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $SYSTEM_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages for the report:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "The PDF report needs system packages; install them with:"
    echo "  sudo apt-get install -y --no-install-recommends$missing"
  fi
fi

# 2. The virtualenv. torch and torchvision are resolved together from the
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

# 3. The kernel JupyterLab and papermill use for the notebooks.
if [ ! -f "$VENV/share/jupyter/kernels/python3/kernel.json" ]; then
  "$VENV/bin/python" -m ipykernel install --sys-prefix >/dev/null
fi

# 4. The check: everything imports, and which device training will use.
"$VENV/bin/python" - <<'PY'
import torch, torchvision  # noqa: F401
import jupyterlab, matplotlib, ipywidgets, nbconvert, papermill, pytest, nbval, gan_helpers  # noqa: F401
device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"Ready: torch {torch.__version__}, torchvision {torchvision.__version__}; training will use {device}.")
PY
