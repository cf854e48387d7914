"""Fixtures for the Batch operator tests: the local Azure stack, a fresh id per test, a task context."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook


class FakeTaskInstance:
    """Just enough of a task instance for operators run outside the task runner."""

    def __init__(self, task_id: str = "task", map_index: int = -1, dag_id: str = "itest") -> None:
        self.task_id = task_id
        self.dag_id = dag_id
        self.map_index = map_index
        self.try_number = 1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def context(uid: str) -> dict[str, Any]:
    return {"ti": FakeTaskInstance(), "run_id": f"manual__{uid}"}


@pytest.fixture
def stack(local_azure_stack: Any) -> Any:
    return local_azure_stack


@pytest.fixture
def hook(stack: Any) -> Iterator[BatchHook]:
    batch = BatchHook()
    yield batch
    batch.close()
