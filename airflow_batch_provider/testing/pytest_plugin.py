"""pytest fixtures for testing DAGs offline: a real Azurite, started and stopped by the fixture.

Installed with the provider through the ``pytest11`` entry point; nothing starts unless a test asks
for a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_batch_provider.testing.azurite import AzuriteServer


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """A fresh, in-memory Azurite Blob service on a free port, for the whole test session."""
    with AzuriteServer() as server:
        yield server
