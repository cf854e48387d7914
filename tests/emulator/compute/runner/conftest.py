"""Fixtures for the runner tests: a simulated node in a temporary directory, and blob containers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from airflow_batch_provider.testing.azurite import AzuriteServer

from .helpers import Node, Storage


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path / "node")


@pytest.fixture(scope="session")
def storage_service(azurite: AzuriteServer) -> Iterator[BlobServiceClient]:
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        yield service


@pytest.fixture
def storage(azurite: AzuriteServer, storage_service: BlobServiceClient) -> Storage:
    return Storage(azurite, storage_service)
