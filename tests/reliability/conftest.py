"""Fixtures for the reliability tests: a local Azure stack whose Batch and Storage endpoints can fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.support.example_dags import load_example

ROOT = Path(__file__).resolve().parents[2]
#: Retries fast enough for tests: the faults are the point, not the waiting.
FAST_RETRIES = {
    "AIRFLOW__AZURE_BATCH_PROVIDER__RETRY_TOTAL": "8",
    "AIRFLOW__AZURE_BATCH_PROVIDER__RETRY_BACKOFF_FACTOR": "0.02",
    "AIRFLOW__AZURE_BATCH_PROVIDER__RETRY_BACKOFF_MAX": "0.5",
    "AIRFLOW__AZURE_BATCH_PROVIDER__BLOB_RETRY_TOTAL": "8",
    "AIRFLOW__AZURE_BATCH_PROVIDER__BLOB_RETRY_INITIAL_BACKOFF": "0.02",
    "AIRFLOW__AZURE_BATCH_PROVIDER__BLOB_RETRY_INCREMENT_BASE": "0.1",
    "AIRFLOW__AZURE_BATCH_PROVIDER__BLOB_RETRY_JITTER": "0.02",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long fault-injection runs, only with `make soak` (-m soak)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="soak test: run with `make soak` (pytest -m soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def faulty_stack() -> Iterator[LocalAzureStack]:
    """Azurite behind a fault proxy plus the Batch emulator, as the default connections, fast retries."""
    with pytest.MonkeyPatch.context() as patch, LocalAzureStack(storage_faults=True) as stack:
        for name, value in {**stack.environ(), **FAST_RETRIES}.items():
            patch.setenv(name, value)
        try:
            yield stack
        finally:
            stack.clear_faults()


def load_workflow_dag(monkeypatch: pytest.MonkeyPatch, poll_seconds: float = 0.2) -> Any:
    """The example workflow DAG, loaded fresh, polling every ``poll_seconds``."""
    return load_example(
        monkeypatch, "azure_batch_workflow", AZURE_BATCH_WORKFLOW_POLL_SECONDS=str(poll_seconds)
    )


def write_inputs(directory: Path, count: int) -> list[str]:
    """``count`` small CSVs of numbers; returns their names."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        name = f"sample-{index:02d}.csv"
        rows = "\n".join(str((index + 1) * value) for value in range(1, 11))
        (directory / name).write_text("value\n" + rows + "\n")
        names.append(name)
    return names
