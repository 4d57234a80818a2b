# `make demo` and `make test` each do all the set-up on a fresh machine: a virtual environment in
# .venv with the pinned versions of constraints.txt, then the package in editable mode.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo science test lint

# uv, bootstrapped into the venv with its pip, installs the pinned set: it downloads in parallel and
# compiles the bytecode on every core, where pip does both one at a time (fresh clone, empty caches,
# 2 shared cores: 2:33 and 3:51 against pip's 4:58 and 6:01). --compile-bytecode, as pip does: without
# it the demo's first jobs each compile what they import (torch, MLflow: 28 CPU s an import instead of
# 10), and every job does where PYTHONDONTWRITEBYTECODE is set. uv reads no pip configuration, so the
# extra indexes pip is configured with (a local mirror) are handed to it, chosen among by pip's rule
# (the best match over all indexes).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt uv
	UV_EXTRA_INDEX_URL="$$($(BIN)/python -m pip config get global.extra-index-url 2>/dev/null)" \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python --index-strategy unsafe-best-match --compile-bytecode \
	  -c constraints.txt -e '.[workflow,test]' pip
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores all

# The science scale (docs/science.md): Table 4's claim over seeds, then its report and figure under
# benchmarks/results/ (a pre-registered run names them and its scale, e.g.
# `make science SCIENCE_RUN=run3 SCIENCE_SCALE=science_long`; `local` and `science` otherwise).
# Both reach the recipe through its environment, quoted there: never as shell text.
SCIENCE_RUN ?= local
SCIENCE_SCALE ?= science
export SCIENCE_RUN SCIENCE_SCALE
science: $(STAMP)
	started=$$(date +%s) && $(BIN)/snakemake --cores all --config scale="$$SCIENCE_SCALE" && \
	  $(BIN)/python -m benchmarks.science_report --scale "$$SCIENCE_SCALE" --started $$started \
	  --command "make science SCIENCE_RUN=$$SCIENCE_RUN SCIENCE_SCALE=$$SCIENCE_SCALE" \
	  --out "benchmarks/results/science_$${SCIENCE_RUN}_cpu.json" --figure "benchmarks/results/science_$${SCIENCE_RUN}_cpu.png"

# One pytest worker per core: the workflow tests run beside the rest instead of after it.
test: $(STAMP)
	tests/helpers/system-packages.sh
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check cycle_pkg tests benchmarks
