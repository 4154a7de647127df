# The lab's commands. Every target sets up what it needs first (the targets that train or run notebooks: the data set too).
#   make report            the main job: PDF of the whole lab (profile chosen by device)
#   make test              the whole test suite, notebooks included (smoke parameters)
# Variables: DATA=path/to/images (default data/galaxies64), PROFILE=smoke|quick|full

PYTHON := .venv/bin/python
DATA ?=
PROFILE ?=
DATA_FLAG := $(if $(DATA),--data $(DATA))
SMOKE_NOTEBOOKS := build/smoke-notebooks

.PHONY: help setup setup-report setup-browser data lab test browser-test notebooks report train clean

help:
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## create .venv with the project, its dependencies and the lab's JupyterLab settings
	@bash tools/setup.sh

setup-report: ## setup, plus the report's system packages (texlive, pandoc; installed as root)
	@bash tools/setup.sh --report

setup-browser: ## setup, plus Chromium and chromium-driver for the browser test (installed as root)
	@bash tools/setup.sh --browser

data: setup ## build the default data set in data/galaxies64 (from Debian's stellarium-data) unless DATA names another
	$(if $(DATA),@echo "DATA=$(DATA) replaces the default data set; not building it",$(PYTHON) -m gan_helpers data)

lab: data ## start JupyterLab on the notebooks with the project's environment
	.venv/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup-report data ## run the unit tests and the notebook smoke tests
	$(PYTHON) -m gan_helpers notebooks inject --profile smoke --out $(SMOKE_NOTEBOOKS) $(DATA_FLAG)
	$(PYTHON) -m pytest $(SMOKE_NOTEBOOKS) --nbval-lax  # one process, in order: 05 and 06 read the runs 03 and 04 train
	$(PYTHON) -m pytest tests -n auto --dist loadfile --no-loadscope-reorder  # every core (pytest-xdist), a file per worker: module fixtures built once; files in name order, so the longest, test_bf16.py (emulated bfloat16 on CPUs without it), starts early

browser-test: setup-browser data ## JupyterLab in headless Chromium: run 01 and 05, move a slider, reload (stops after 20 min)
	LAB_BROWSER_TEST=1 timeout --signal=INT --kill-after=60 1200 $(PYTHON) -m pytest tests/browser  # INT: pytest still stops JupyterLab and Chromium

notebooks: data ## execute all notebooks with papermill into build/PROFILE/
	$(PYTHON) -m gan_helpers notebooks run --profile "$(PROFILE)" $(DATA_FLAG)

report: setup-report data ## render report/lab_report.pdf (PROFILE: full on a GPU or from results/reference, else quick)
	$(PYTHON) -m gan_helpers report --profile "$(PROFILE)" $(DATA_FLAG)

train: data ## one training run from the command line: make train ARGS="--generator upsampling --epochs 50"
	$(PYTHON) -m gan_helpers train $(DATA_FLAG) $(ARGS)

clean: ## remove executed notebooks and report build files (keeps runs/ and data/)
	rm -rf build report/build
