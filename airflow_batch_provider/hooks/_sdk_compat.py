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
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from airflow_batch_provider.batch.monitor.counts import TaskCounts

#: SDK option classes read through this module, some of them not exported by ``azure.batch.models``.
_OPTION_MODELS = frozenset(
    {
        "BatchJobTerminateOptions",
        "BatchNodeRebootOptions",
        "BatchNodeReimageOptions",
        "BatchNodeDeallocateOptions",
        "BatchNodeDisableSchedulingOptions",
    }
)


def model(name: str) -> Any:
    """An ``azure.batch`` model class, exported or not (the SDK is imported on first use)."""
    from azure.batch import models as public_models
    from azure.batch.models import _models as private_models

    return getattr(public_models, name, None) or getattr(private_models, name)


def __getattr__(name: str) -> Any:
    """``BatchJobTerminateOptions`` and the other option classes, resolved when first asked for."""
    if name in _OPTION_MODELS:
        return model(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The reason recorded on a job this provider terminates, unless the caller gives one.
DEFAULT_TERMINATE_REASON = "TerminatedByAirflow"


def terminate_job_options(reason: str | None = None) -> Any:
    """Options for ``begin_terminate_job``; never ``None`` (the SDK cannot send an empty body)."""
    return model("BatchJobTerminateOptions")(termination_reason=reason or DEFAULT_TERMINATE_REASON)


def begin_terminate_job(client: Any, job_id: str, reason: str | None = None, **kwargs: Any) -> Any:
    """Start terminating a job (sync client); returns the SDK's poller."""
    return client.begin_terminate_job(job_id, terminate_job_options(reason), **kwargs)


async def abegin_terminate_job(client: Any, job_id: str, reason: str | None = None, **kwargs: Any) -> Any:
    """Start terminating a job (async client); returns the SDK's async poller."""
    return await client.begin_terminate_job(job_id, terminate_job_options(reason), **kwargs)


def reboot_node_options(kind: str = "requeue") -> Any:
    """Options for ``begin_reboot_node``; never ``None`` (the SDK cannot send an empty body)."""
    return model("BatchNodeRebootOptions")(node_reboot_kind=kind)


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


def resize_pool_options(target_dedicated_nodes: int, target_low_priority_nodes: int) -> Any:
    """Options for ``begin_resize_pool``: the node counts to reach."""
    return model("BatchPoolResizeOptions")(
        target_dedicated_nodes=target_dedicated_nodes, target_low_priority_nodes=target_low_priority_nodes
    )


def begin_resize_pool(
    client: Any, pool_id: str, target_dedicated_nodes: int, target_low_priority_nodes: int, **kwargs: Any
) -> Any:
    """Start resizing a pool (sync client); returns the SDK's poller, which polls from a daemon thread."""
    options = resize_pool_options(target_dedicated_nodes, target_low_priority_nodes)
    return client.begin_resize_pool(pool_id, options, **kwargs)


async def abegin_resize_pool(
    client: Any, pool_id: str, target_dedicated_nodes: int, target_low_priority_nodes: int, **kwargs: Any
) -> Any:
    """Start resizing a pool (async client); returns the SDK's async poller, which polls only if awaited."""
    options = resize_pool_options(target_dedicated_nodes, target_low_priority_nodes)
    return await client.begin_resize_pool(pool_id, options, **kwargs)


def create_task_collection(
    client: Any, job_id: str, tasks: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Add tasks given in the REST shape with one request; the per-task results, also in the REST shape.

    Errors are the SDK's own exceptions (its pipeline raises them, with the service's error code).
    """
    from azure.batch._operations._operations import build_batch_create_task_collection_request
    from azure.core.serialization import AzureJSONEncoder

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
