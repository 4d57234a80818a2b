# `make demo` and `make test` each do all the set-up on a fresh machine: a virtual environment in
# .venv with the pinned versions of constraints.txt, then the package in editable mode.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[workflow,test]'
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores all

# One pytest worker per core: the workflow tests run beside the rest instead of after it.
test: $(STAMP)
	tests/system-packages.sh
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check cycle_pkg tests benchmarks
