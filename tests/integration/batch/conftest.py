"""Fixtures for the Batch operator tests: the local Azure stack and a Batch hook on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook


@pytest.fixture
def stack(local_azure_stack: Any) -> Any:
    return local_azure_stack


@pytest.fixture
def hook(stack: Any) -> Iterator[BatchHook]:
    batch = BatchHook()
    yield batch
    batch.close()
