# Both entry points build .venv themselves; the stamp reinstalls when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 3
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
# A checkout beside ../shared/data (this workplace) uses it as the mirror unless told otherwise.
DEMO_MIRROR := $(or $(TRAINFLOW_MIRROR),$(if $(wildcard ../shared/data),$(abspath ../shared/data)))

.PHONY: demo test test-fast lint types pytest ui-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	TRAINFLOW_MIRROR='$(DEMO_MIRROR)' $(BIN)/trainflow run all

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check lib tasks flows tests benchmarks tools
	$(BIN)/ruff format --check lib tasks flows tests benchmarks tools

types: $(STAMP)
	$(BIN)/mypy lib tasks flows tools

# Two test processes (pytest-xdist): most tests wait on subprocesses, servers and start-up,
# so two share a 2-core machine well; each TensorFlow in them gets one intra-op thread.
# `loadgroup` (scheduler in tests/fixtures/scheduling.py): a worker takes the next test, or the
# next module whose tests share a module fixture, when it has two or fewer left, so the slow
# tail is shared and no such fixture (a CLI run of a minute or more) is made on both workers.
PYTEST_WORKERS ?= 2
PYTEST := TF_NUM_INTRAOP_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup

pytest: $(STAMP)
	$(PYTEST) --durations=15

# For iteration: everything but the tests marked slow (real data, real servers, kills, races).
test-fast: lint types
	$(PYTEST) -m "not slow"

# Opt-in: the report's plots render in both Prefect UIs (needs /usr/bin/chromium).
ui-check: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ui-check]'
	$(BIN)/python -m pytest -q -p no:cacheprovider -rs tests/e2e/test_report_renders.py

clean:
	rm -rf $(VENV) build *.egg-info
