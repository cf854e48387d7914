"""pytest fixtures for testing DAGs offline: Azurite, the Batch emulator, or both wired together.

Not loaded into every pytest run: a test suite opts in with one line in its ``conftest.py``,
``pytest_plugins = ["airflow_batch_provider.testing.pytest_plugin"]`` (needs the ``[testing]`` extra).
Nothing starts unless a test asks for a fixture, and nothing heavy is imported until then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_batch_provider.testing.azurite import AzuriteServer
    from airflow_batch_provider.testing.emulator import BatchEmulatorServer
    from airflow_batch_provider.testing.stack import LocalAzureStack


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """A fresh, in-memory Azurite Blob service on a free port, for the whole test session."""
    from airflow_batch_provider.testing.azurite import AzuriteServer

    with AzuriteServer() as server:
        yield server


@pytest.fixture(scope="session")
def batch_emulator() -> Iterator[BatchEmulatorServer]:
    """The local Batch emulator on a free port, for the whole session (no auto-storage account).

    Use ``batch_emulator.endpoint``, ``.account_name`` and ``.account_key`` with ``BatchClient``.
    """
    from airflow_batch_provider.testing.emulator import BatchEmulatorServer

    with BatchEmulatorServer() as server:
        yield server


@pytest.fixture(scope="session")
def local_azure_stack() -> Iterator[LocalAzureStack]:
    """Azurite and the Batch emulator wired together, with ``AIRFLOW_CONN_AZBATCH_DEFAULT`` and
    ``AIRFLOW_CONN_AZBLOB_DEFAULT`` set for the session (restored afterwards)."""
    from airflow_batch_provider.testing.stack import LocalAzureStack

    with LocalAzureStack() as stack:
        variables = stack.environ()
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield stack
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
