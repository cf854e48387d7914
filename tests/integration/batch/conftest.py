"""Fixtures for the Batch operator tests: the local Azure stack and a Batch hook on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from tests.support.task_context import task_context


@pytest.fixture
def stack(local_azure_stack: Any) -> Any:
    return local_azure_stack


@pytest.fixture
def hook(stack: Any) -> Iterator[BatchHook]:
    batch = BatchHook()
    yield batch
    batch.close()


@contextmanager
def ready_pool(name_prefix: str, task_slots_per_node: int) -> Iterator[str]:
    """A one-node pool, ready when entered and deleted on exit (for module-scoped fixtures)."""
    pool = f"{name_prefix}-{uuid.uuid4().hex[:6]}"
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id=pool,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        task_slots_per_node=task_slots_per_node,
        poll_interval=0.2,
    ).execute(task_context("setup", "pool"))
    try:
        yield pool
    finally:
        BatchHook().delete_pool(pool)
