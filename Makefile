# The two entry points of the README:
#   make run   - set up .venv and run the embedded default end to end (CPU, no network)
#   make test  - set up .venv (and the Debian packages of the Slurm test cluster) and run the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# the rules call the `adamnoise` command: put the environment's bin first, as `activate` would
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint setup slurm-packages clean

setup: $(VENV)/.installed

# torch is pinned (2.13.0): pip takes the CPU wheel from this machine's disk; on a GPU cluster the
# same pin fetches the CUDA build
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES)

slurm-packages:
	bash .ci/install-slurm.sh

test: setup slurm-packages
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

clean:
	rm -rf results/* .snakemake
