"""Every work-around for defects of azure-batch 15.1.0, in one place.

* ``begin_terminate_job(job_id)`` without options fails with ``ValueError`` (content type ``None``):
  we always pass a terminate-options object with a reason. ``begin_reboot_node`` has the same defect:
  we always pass a reboot-options object with the reboot kind.
* Several ``*Options`` classes are not exported from ``azure.batch.models``: we import them from
  ``azure.batch.models._models`` when the public name is missing.
* ``pool_exists`` raises ``ResourceNotFoundError`` on 404 instead of returning ``False``.
* Task counts live in ``result.task_counts``, not on the result itself.
* ``download_*_file`` returns a byte iterator (sync) or an async one; we join it.
* ``create_task_collection`` turns every task into a model and every per-task result back into one,
  which costs more CPU than the request. We send the SDK's own request (its builder, through the
  client's pipeline with its authentication, retry and error policies) with the tasks' JSON as the
  body, and read the results as JSON.

When a later SDK release fixes one of these, only this module changes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from azure.batch import models as _public_models
from azure.batch._operations._operations import build_batch_create_task_collection_request
from azure.batch.models import _models as _private_models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.serialization import AzureJSONEncoder


def _model(name: str) -> Any:
    return getattr(_public_models, name, None) or getattr(_private_models, name)


BatchJobTerminateOptions: Any = _model("BatchJobTerminateOptions")
BatchNodeRebootOptions: Any = _model("BatchNodeRebootOptions")
BatchNodeReimageOptions: Any = _model("BatchNodeReimageOptions")
BatchNodeDeallocateOptions: Any = _model("BatchNodeDeallocateOptions")
BatchNodeDisableSchedulingOptions: Any = _model("BatchNodeDisableSchedulingOptions")

#: The reason recorded on a job this provider terminates, unless the caller gives one.
DEFAULT_TERMINATE_REASON = "TerminatedByAirflow"


def terminate_job_options(reason: str | None = None) -> Any:
    """Options for ``begin_terminate_job``; never ``None`` (the SDK cannot send an empty body)."""
    return BatchJobTerminateOptions(termination_reason=reason or DEFAULT_TERMINATE_REASON)


def begin_terminate_job(client: Any, job_id: str, reason: str | None = None, **kwargs: Any) -> Any:
    """Start terminating a job (sync client); returns the SDK's poller."""
    return client.begin_terminate_job(job_id, terminate_job_options(reason), **kwargs)


async def abegin_terminate_job(client: Any, job_id: str, reason: str | None = None, **kwargs: Any) -> Any:
    """Start terminating a job (async client); returns the SDK's async poller."""
    return await client.begin_terminate_job(job_id, terminate_job_options(reason), **kwargs)


def reboot_node_options(kind: str = "requeue") -> Any:
    """Options for ``begin_reboot_node``; never ``None`` (the SDK cannot send an empty body)."""
    return BatchNodeRebootOptions(node_reboot_kind=kind)


def begin_reboot_node(client: Any, pool_id: str, node_id: str, kind: str = "requeue", **kwargs: Any) -> Any:
    """Start rebooting a node (sync client); returns the SDK's poller.

    The sync poller watches the node from a daemon thread until it leaves ``rebooting``, whether or
    not anyone waits for it.
    """
    return client.begin_reboot_node(pool_id, node_id, reboot_node_options(kind), **kwargs)


async def abegin_reboot_node(
    client: Any, pool_id: str, node_id: str, kind: str = "requeue", **kwargs: Any
) -> Any:
    """Start rebooting a node (async client); returns the SDK's async poller, which polls only if awaited."""
    return await client.begin_reboot_node(pool_id, node_id, reboot_node_options(kind), **kwargs)


def create_task_collection(
    client: Any, job_id: str, tasks: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Add tasks given in the REST shape with one request; the per-task results, also in the REST shape.

    Errors are the SDK's own exceptions (its pipeline raises them, with the service's error code).
    """
    body = json.dumps({"value": list(tasks)}, cls=AzureJSONEncoder, separators=(",", ":"))
    request = build_batch_create_task_collection_request(
        job_id, content_type="application/json; odata=minimalmetadata", content=body
    )
    response = client.send_request(request)
    response.raise_for_status()
    return list(response.json().get("value") or [])


def pool_exists(client: Any, pool_id: str) -> bool:
    """Whether a pool exists; ``False`` on 404 instead of the SDK's exception."""
    try:
        return bool(client.pool_exists(pool_id))
    except ResourceNotFoundError:
        return False


async def apool_exists(client: Any, pool_id: str) -> bool:
    """Async :func:`pool_exists`."""
    try:
        return bool(await client.pool_exists(pool_id))
    except ResourceNotFoundError:
        return False


@dataclass(frozen=True)
class TaskCounts:
    """Task counts of a job, by state and by result."""

    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.active + self.running + self.completed

    @property
    def pending(self) -> int:
        return self.active + self.running

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TaskCounts:
        data = data or {}
        return cls(
            **{
                key: int(data.get(key) or 0)
                for key in ("active", "running", "completed", "succeeded", "failed")
            }
        )


def task_counts_of(result: Any) -> TaskCounts:
    """Read a ``get_job_task_counts`` result, whichever shape it has."""
    counts = getattr(result, "task_counts", None)
    if counts is None and isinstance(result, dict):
        counts = result.get("taskCounts", result)
    if counts is None:
        counts = result
    if isinstance(counts, dict):
        return TaskCounts.from_dict(counts)
    return TaskCounts(
        active=int(getattr(counts, "active", 0) or 0),
        running=int(getattr(counts, "running", 0) or 0),
        completed=int(getattr(counts, "completed", 0) or 0),
        succeeded=int(getattr(counts, "succeeded", 0) or 0),
        failed=int(getattr(counts, "failed", 0) or 0),
    )


def error_code(error: BaseException) -> str | None:
    """The Batch error code of an SDK exception (``PoolExists``, ``TaskExists``...), if any."""
    if isinstance(error, HttpResponseError):
        inner = getattr(error, "error", None)
        code = getattr(inner, "code", None)
        if code:
            return str(code)
        model = getattr(error, "model", None)
        code = getattr(model, "code", None)
        if code:
            return str(code)
    return None


def error_message(error: BaseException) -> str:
    """The service's message of an SDK exception, without the request id boilerplate."""
    if isinstance(error, HttpResponseError):
        inner = getattr(error, "error", None)
        message = getattr(inner, "message", None)
        if message:
            text = str(message).split("\nRequestId:", 1)[0].strip()
            details = getattr(inner, "details", None) or []
            extra = "; ".join(
                f"{getattr(item, 'code', '')}: {getattr(item, 'message', '')}" for item in details if item
            )
            return f"{text} ({extra})" if extra else text
        return str(getattr(error, "message", None) or error).split("\nRequestId:", 1)[0].strip()
    return str(error)


def status_code(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if code is not None else None


def join_bytes(chunks: Iterable[bytes] | bytes) -> bytes:
    """Collect a download (the SDK returns an iterator of byte chunks)."""
    if isinstance(chunks, (bytes, bytearray)):
        return bytes(chunks)
    return b"".join(chunks)


async def ajoin_bytes(chunks: AsyncIterator[bytes] | bytes) -> bytes:
    """Collect an async download."""
    if isinstance(chunks, (bytes, bytearray)):
        return bytes(chunks)
    parts = [chunk async for chunk in chunks]
    return b"".join(parts)


def content_length_of(properties: Any) -> int:
    """The size of a file from ``get_*_file_properties`` (the SDK passes the raw header string)."""
    value = getattr(properties, "content_length", None)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def tail_range(size: int, max_bytes: int) -> str | None:
    """The ``ocp-range`` header value for the last ``max_bytes`` of a file of ``size`` bytes."""
    if size <= 0:
        return None
    start = max(0, size - max_bytes)
    return f"bytes={start}-{size - 1}"
