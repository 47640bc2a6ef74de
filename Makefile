# The two entry points of the README:
#   make run   - set up .venv and run the embedded default end to end (CPU, no network)
#   make test  - set up .venv (and the Debian packages of the Slurm test cluster) and run the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# the rules call the `adamnoise` command: put the environment's bin first, as `activate` would
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-fast lint lock setup slurm-packages clean

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

# the tests not marked slow or slurm (tests/conftest.py): about a minute on 2 cores
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not slurm"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

# Exact versions of the environment the tests pass in (archival): envs/adamnoise.lock.txt for pip,
# envs/adamnoise.pinned.yaml for conda (python pinned, the rest from the lock file). torch loses its
# local "+cpu" tag so that the same pin installs the CUDA build on a GPU cluster.
lock: setup
	@{ echo "# pip freeze of the tested environment ($$($(BIN)/python --version)), written by make lock"; \
	  $(BIN)/pip freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > envs/adamnoise.lock.txt
	@echo "wrote envs/adamnoise.lock.txt"

clean:
	rm -rf results/* .snakemake
