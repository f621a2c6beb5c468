# srt-scale: `make quickstart` runs the main job, `make test` the test suite; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart lint test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps recbole
	touch $(STAMP)

quickstart: install
	$(BIN)/srt-scale study configs/quickstart.yaml --executor local --out sweeps/quickstart --report results/quickstart

# ruff (lint + format) and import-linter (the stage layers of pyproject's [tool.importlinter]) first: seconds
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# the suite on both cores (pytest-xdist); the Slurm tests share one worker (xdist_group "slurm"). One BLAS/OpenMP
# thread per process: two workers each spinning two BLAS threads on two cores made the small fits ~1.5x slower.
test: lint
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

clean:
	rm -rf $(VENV) .srt-cache runs sweeps
