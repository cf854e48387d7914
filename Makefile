# The project's commands. Each target does its own setup, idempotently, from a clean clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint unit soak demo system-test bench clean

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
	$(BIN)/ruff check airflow_batch_provider tests example_dags scripts bench
	$(BIN)/ruff format --check airflow_batch_provider tests example_dags scripts bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The example workflow under 20% injected Batch and Storage faults, 20 seeds (make test runs 3).
soak: setup
	$(BIN)/python -m pytest tests/reliability -m soak $(PYTEST_ARGS)

demo: setup
	$(BIN)/python scripts/demo.py

# Every example DAG on a real deployment: PostgreSQL, LocalExecutor, separate Airflow processes, a browser.
system-test: setup
	$(BIN)/python scripts/system_test.py

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .demo .system-test
