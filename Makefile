# The two commands a new user needs: `make run` (the main job) and `make test` (the whole suite).
# Both create .venv/ with Python 3.11 and install pinned dependencies (constraints.txt) first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Every command records its runs in one Dagster instance: $DAGSTER_HOME, else data/dagster_home
# (`consumer-assets dagster-home` creates it with telemetry off and prints it).

.PHONY: install install-tests run dev test lint format bench clean

# The UI test drives Debian's Chromium through Playwright (never Playwright's own browser downloads).
CHROMIUM := /usr/bin/chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned to 2.13.0, the CPU build: pip takes it from the machine's wheel cache or the
# index given in PIP_EXTRA_INDEX_URL (https://download.pytorch.org/whl/cpu elsewhere), never CUDA.
# The product alone (make run, make dev); the test and bench tools on top of it (make test, lint, bench).
$(VENV)/.installed: setup.py constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-tests: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[tests]'
	touch $@

install: $(VENV)/.installed

install-tests: $(VENV)/.installed-tests

# ARGS passes options to the main job, e.g. make run ARGS="--profiles 5000 --verbose".
run: install
	$(BIN)/consumer-assets run $(ARGS)

# The UI's port: make dev PORT=3001.
PORT ?= 3000

dev: install
	DAGSTER_HOME=$$($(BIN)/consumer-assets dagster-home) VIRTUAL_ENV=$(CURDIR)/$(VENV) \
		$(BIN)/dg dev --host 127.0.0.1 --port $(PORT)

lint: install-tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-tests
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# $(call apt_install,PACKAGE,WHO): install Debian's PACKAGE with apt-get when run as root; else say
# that WHO needs it, with the command to run, and fail.
define apt_install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	else \
		echo "$(2) needs Debian's $(1): run 'sudo apt-get install -y $(1)' (make test installs it when run as root)." >&2; \
		exit 1; \
	fi
endef

$(CHROMIUM):
	$(call apt_install,chromium,The UI test)
	@test -x $(CHROMIUM) || { echo "apt-get installed no $(CHROMIUM)" >&2; exit 1; }

# The production-instance test runs Debian's PostgreSQL server (initdb and postgres from its
# /usr/lib/postgresql/<version>/bin) on loopback.
POSTGRES_BIN := $(firstword $(wildcard /usr/lib/postgresql/*/bin/postgres))

.PHONY: postgresql
postgresql:
ifeq ($(POSTGRES_BIN),)
	$(call apt_install,postgresql,The production-instance test)
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "apt-get installed no PostgreSQL server" >&2; exit 1; }
endif

# loadfile: a module's tests run on one worker, so a module-scoped fixture (one Dagster webserver and
# daemon, a Spark cluster) starts once. (xdist 3.8's loadgroup does not group under pytest 9.2.)
test: lint $(CHROMIUM) postgresql
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=10

bench: install-tests
	$(BIN)/python bench/bench_ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache
