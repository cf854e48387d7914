# The project's commands. Each target does its own setup, idempotently, from a clean clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint unit soak demo bench clean conformance conformance-sdk conformance-cli conformance-emulator

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check airflow_batch_provider tests example_dags scripts bench conformance
	$(BIN)/ruff format --check airflow_batch_provider tests example_dags scripts bench conformance
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The example workflow under 20% injected Batch and Storage faults, 20 seeds (make test runs 3).
soak: setup
	$(BIN)/python -m pytest tests/reliability -m soak $(PYTEST_ARGS)

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python -m bench

# Clients we did not write, run against the emulator; writes docs/emulator-conformance.md.
# Each client's run may fail; the report runs anyway and fails on an unexpected failure.
conformance: setup
	-$(MAKE) --no-print-directory conformance-sdk
	-$(MAKE) --no-print-directory conformance-cli
	-$(MAKE) --no-print-directory conformance-emulator
	$(BIN)/python -m conformance.report

# azure-batch's own tests (the sdist of the installed version, checksum-checked) live against the emulator.
conformance-sdk: setup
	$(BIN)/python -m conformance.sdk --results build/conformance/sdk.json

# The Azure CLI (installed into .conformance/cli-venv on first use) driven against the emulator.
conformance-cli: setup
	$(BIN)/python -m conformance.cli --results build/conformance/cli.json

conformance-emulator: setup
	$(BIN)/python -m conformance.emulator --results build/conformance/emulator.json

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .demo .conformance
