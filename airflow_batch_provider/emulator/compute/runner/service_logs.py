"""``uploadbatchservicelogs``: a node's agent log, uploaded to a blob container as the service does.

Each node keeps an agent log (``batch-agent.log``, beside the node's files, not among them) with a
timestamped line for its allocation, its boot, its start task and the tasks placed on it, brought
up to date from the node's state whenever logs are requested (earlier lines are kept). A log file is
uploaded when one of its lines falls in the requested time range, to
``<poolId>/<nodeId>/<unique id>/<file>`` in the container. As on the service the call answers at
once with that directory and the number of files, and the upload runs in the background: a
container that cannot be written is logged (without its SAS), not returned.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError

from airflow_batch_provider.emulator.compute.runner.storage import StorageSession, redact_url
from airflow_batch_provider.emulator.errors import invalid_property, missing_property
from airflow_batch_provider.emulator.models.base import get_object, get_str
from airflow_batch_provider.emulator.odata import parse_datetime
from airflow_batch_provider.emulator.serialization import format_datetime

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.nodes import Node

log = logging.getLogger(__name__)

AGENT_LOG = "batch-agent.log"


@dataclass(frozen=True)
class LogUpload:
    """What one request uploads: the files, their destination container and virtual directory."""

    container_url: str
    virtual_directory: str
    files: list[Path]

    def result(self) -> dict[str, Any]:
        return {"virtualDirectoryName": self.virtual_directory, "numberOfFilesUploaded": len(self.files)}


def plan_upload(node: Node, body: dict[str, Any]) -> LogUpload:
    """Check the request and pick the node's log files with a line in ``[startTime, endTime]``."""
    container_url = get_str(body, "containerUrl")
    if not container_url:
        raise missing_property("containerUrl")
    parts = urlsplit(container_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_property(
            "containerUrl",
            redact_url(container_url),
            "The value must be the absolute https URL of a blob container, with a SAS granting write "
            "(or an identityReference with write access).",
        )
    start = _time(body, "startTime", required=True)
    end = _time(body, "endTime", required=False)
    if start is not None and end is not None and end < start:
        raise invalid_property("endTime", body["endTime"], "endTime must not be before startTime.")
    identity = get_object(body, "identityReference")
    if identity is not None and not get_str(identity, "resourceId", "identityReference/resourceId"):
        raise missing_property("identityReference/resourceId")
    files = [path for path in write_agent_log(node) if _has_line_between(path, start, end)]
    return LogUpload(container_url, f"{node.pool.id}/{node.id}/{uuid.uuid4()}", files)


async def upload(plan: LogUpload) -> None:
    """Upload the planned files; failures are logged with the URL's SAS removed."""
    async with StorageSession() as storage:
        container = storage.container_from_url(plan.container_url)
        for path in plan.files:
            blob_name = f"{plan.virtual_directory}/{path.name}"
            try:
                await container.upload_blob(blob_name, path.read_bytes(), overwrite=True)
            except (AzureError, OSError) as err:
                log.warning(
                    "Batch service log upload to %s failed: %s",
                    redact_url(plan.container_url),
                    type(err).__name__,
                )
                return


def agent_log_dir(node: Node) -> Path:
    return node.pool.account.state_dir / "agent-logs" / node.pool.id / node.id


def write_agent_log(node: Node) -> list[Path]:
    """Bring the node's agent log up to date from its state (earlier lines are kept); its files."""
    directory = agent_log_dir(node)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / AGENT_LOG
    lines = set(path.read_text().splitlines()) if path.exists() else set()
    lines.update(f"{stamp} INFO {message}" for stamp, message in _events(node))
    path.write_text("".join(f"{line}\n" for line in sorted(lines)))
    return [path]


def _events(node: Node) -> list[tuple[str, str]]:
    pool = node.pool
    events = [
        (
            format_datetime(node.allocation_time),
            f"node {node.id} allocated to pool {pool.id} ({pool.vm_size.lower()}, "
            f"{'dedicated' if node.is_dedicated else 'spot'})",
        )
    ]
    if node.last_boot_time is not None:
        events.append((format_datetime(node.last_boot_time), "node agent started"))
    info = node.start_task_info or {}
    if info.get("startTime"):
        events.append((info["startTime"], f"start task started (retry {info.get('retryCount', 0)})"))
    if info.get("endTime"):
        events.append(
            (
                info["endTime"],
                f"start task {info.get('result', 'completed')}, exit code {info.get('exitCode')}",
            )
        )
    for task in list(node.running.values()) + list(node.recent_tasks):
        execution = task.execution_info
        name = f"{task.job.id}/{task.id}"
        if execution.get("startTime"):
            events.append((execution["startTime"], f"task {name} placed on the node and started"))
        if execution.get("endTime"):
            events.append(
                (
                    execution["endTime"],
                    f"task {name} {execution.get('result', 'completed')}, "
                    f"exit code {execution.get('exitCode')}",
                )
            )
    return events


def _time(body: dict[str, Any], name: str, required: bool) -> datetime | None:
    raw = body.get(name)
    if raw is None:
        if required:
            raise missing_property(name)
        return None
    value = parse_datetime(raw) if isinstance(raw, str) else None
    if value is None:
        raise invalid_property(name, raw, "The value must be an ISO 8601 date and time.")
    return value


def _has_line_between(path: Path, start: datetime | None, end: datetime | None) -> bool:
    for line in path.read_text().splitlines():
        stamp = parse_datetime(line.split(" ", 1)[0])
        if stamp is not None and (start is None or stamp >= start) and (end is None or stamp <= end):
            return True
    return False
