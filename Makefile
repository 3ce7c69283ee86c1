# The two commands: `make reproduce` and `make test`. Both create .venv and install the project first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install reproduce test sync-check nbtest pytest lab docs readme sidebar clean-runs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.py settings.ini | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (visionlab_nb)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

## every series' quick profile on embedded data, then the report (extra CLI flags: make reproduce ARGS="--device cpu")
reproduce: install
	$(BIN)/visionlab reproduce all --profile quick $(ARGS)

## the whole suite: the package and notebooks in sync, the notebooks' own tests, then pytest
test: install sync-check nbtest pytest

sync-check: install
	@before="$$(git status --porcelain; git diff)"; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbdev_export && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbdev_clean; \
	after="$$(git status --porcelain; git diff)"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev_export or nbdev_clean changed files: the package or a notebook was not in sync. Changed:"; \
	  git status --short; exit 1; \
	else echo "sync-check: package and notebooks in sync"; fi

nbtest: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbdev_test --n_workers 2 --timing

pytest: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q tests/

lab: install
	$(BIN)/jupyter lab nbs/

## the sidebar of the docs site (nbs/sidebar.yml), generated from the folders of nbs/: rerun it after adding a series or a notebook
sidebar: install
	$(BIN)/python -c "from visionlab_nb.core.docs import write_sidebar; print('wrote', write_sidebar())"

## the docs site into _docs/ (needs Quarto: https://quarto.org/docs/get-started/ or `pip install quarto-cli`); README.md as `make readme` writes it
docs: install sidebar
	@command -v quarto >/dev/null 2>&1 || { echo "Quarto is not installed: get it from https://quarto.org/docs/get-started/ (or 'pip install quarto-cli'), then run 'make docs' again."; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbdev_docs
	$(BIN)/python -c "from visionlab_nb.core.docs import write_readme; print('wrote', write_readme())"

## README.md from nbs/index.ipynb, its series table and scoreboard relinked to the series that exist (no Quarto needed); the sidebar too
readme: install sidebar
	$(BIN)/python -c "from visionlab_nb.core.docs import write_readme; print('wrote', write_readme())"

