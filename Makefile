# The lab's commands. Every target sets up what it needs first.
#   make report            the main job: PDF of the whole lab (profile chosen by device)
#   make test              the whole test suite, notebooks included (smoke parameters)
# Variables: DATA=path/to/images (default data/galaxies64), PROFILE=smoke|quick|full

PYTHON := .venv/bin/python
DATA ?=
PROFILE ?=
DATA_FLAG := $(if $(DATA),--data $(DATA))
SMOKE_NOTEBOOKS := build/smoke-notebooks

.PHONY: help setup data lab test notebooks report train clean

help:
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## create .venv, install the project, system packages for the report (as root)
	@bash tools/setup.sh

data: setup ## build the default data set in data/galaxies64 (from Debian's stellarium-data)
	$(PYTHON) -m gan_helpers data

lab: setup ## start JupyterLab on the notebooks with the project's environment
	.venv/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup ## run the unit tests and the notebook smoke tests
	$(PYTHON) -m gan_helpers notebooks inject --profile smoke --out $(SMOKE_NOTEBOOKS) $(DATA_FLAG)
	$(PYTHON) -m pytest tests $(SMOKE_NOTEBOOKS) --nbval-lax || [ $$? -eq 5 ]  # 5: no tests collected yet

notebooks: setup ## execute all notebooks with papermill into build/PROFILE/
	$(PYTHON) -m gan_helpers notebooks run --profile "$(PROFILE)" $(DATA_FLAG)

report: setup ## render report/lab_report.pdf (PROFILE: full on a GPU, quick otherwise)
	$(PYTHON) -m gan_helpers report --profile "$(PROFILE)" $(DATA_FLAG)

train: setup ## one training run from the command line: make train ARGS="--generator upsampling --epochs 50"
	$(PYTHON) -m gan_helpers train $(DATA_FLAG) $(ARGS)

clean: ## remove executed notebooks and report build files (keeps runs/ and data/)
	rm -rf build report/build
