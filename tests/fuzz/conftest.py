"""The fuzz tests' own emulator (default quotas), so generated requests touch no other test's state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_batch_provider.testing.emulator import BatchEmulatorServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in item.nodeid:
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(scope="session")
def fuzz_emulator() -> Iterator[BatchEmulatorServer]:
    with BatchEmulatorServer(step_delay=0.005) as server:
        yield server
