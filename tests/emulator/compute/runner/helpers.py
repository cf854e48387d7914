"""Helpers for the runner tests: a simulated node, blob containers with SAS, output file entries."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from airflow_batch_provider.emulator.compute.runner.spec import RunKind, TaskRunSpec
from airflow_batch_provider.testing.azurite import AzuriteServer

_names = itertools.count()


@dataclass
class Node:
    """A simulated node root; ``spec()`` builds a run of a task on it."""

    root: Path

    def spec(self, command_line: str, **overrides: Any) -> TaskRunSpec:
        kind = overrides.get("kind", RunKind.TASK)
        task_id = overrides.get("task_id", "task-1")
        default_dir = (
            self.root / "startup" if kind is RunKind.START_TASK else self.root / "workitems" / task_id
        )
        values: dict[str, Any] = {
            "kind": kind,
            "account_name": "emuaccount",
            "pool_id": "pool-1",
            "node_id": "tvmps_node-1",
            "command_line": command_line,
            "node_root": self.root,
            "task_dir": default_dir,
            "job_id": None if kind is RunKind.START_TASK else "job-1",
            "task_id": None if kind is RunKind.START_TASK else task_id,
        }
        values.update(overrides)
        return TaskRunSpec(**values)


@dataclass
class Storage:
    """Blob containers in Azurite, with SAS URLs granting chosen permissions."""

    server: AzuriteServer
    service: BlobServiceClient

    def container(self, public_access: str | None = None) -> ContainerClient:
        return self.service.create_container(f"runner-{next(_names)}", public_access=public_access)

    def sas_url(self, container: ContainerClient, permission: str) -> str:
        token = generate_container_sas(
            self.server.account_name,
            container.container_name,
            account_key=self.server.account_key,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        )
        return f"{self.server.blob_endpoint}/{container.container_name}?{token}"

    def blob_url(self, container: ContainerClient, name: str, permission: str = "r") -> str:
        base, _, token = self.sas_url(container, permission).partition("?")
        return f"{base}/{name}?{token}"

    def read(self, container: ContainerClient, name: str) -> bytes:
        return container.download_blob(name).readall()

    def names(self, container: ContainerClient) -> list[str]:
        return sorted(blob.name for blob in container.list_blobs())


def output_file(
    pattern: str, container_url: str, condition: str = "taskcompletion", **destination: Any
) -> dict[str, Any]:
    """An ``outputFiles`` entry in the service's JSON shape."""
    return {
        "filePattern": pattern,
        "destination": {"container": {"containerUrl": container_url, **destination}},
        "uploadOptions": {"uploadCondition": condition},
    }
