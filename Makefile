# The two commands a new user needs: `make run` (the main job) and `make test` (the whole suite).
# Both create .venv/ with Python 3.11 and install pinned dependencies (constraints.txt) first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Runs of `make run` land in this Dagster instance, which `make dev` then shows.
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: install run dev test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned to 2.13.0, the CPU build: pip takes it from the machine's wheel cache or the
# index given in PIP_EXTRA_INDEX_URL (https://download.pytorch.org/whl/cpu elsewhere), never CUDA.
$(VENV)/.installed: setup.py constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[tests]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME):
	mkdir -p $@

run: install | $(DAGSTER_HOME)
	$(BIN)/consumer-assets run

dev: install | $(DAGSTER_HOME)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest -q -n 2 --durations=10

bench: install
	$(BIN)/python bench/bench_ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache
