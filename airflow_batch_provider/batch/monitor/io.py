"""The reads the checks need, as one small I/O protocol over the sync and the async Batch client.

The triggerer runs the checks with :class:`AsyncBatchIO`; sensors and operators with
:class:`SyncBatchIO`, whose coroutines simply call the blocking hook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from airflow_batch_provider.batch.monitor.counts import TaskCounts

T = TypeVar("T")


class BatchIO(Protocol):
    """The reads the checks need, and the terminations a kill needs; over the sync and the async client."""

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None: ...

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]: ...

    async def read_node_file_tail(
        self, pool_id: str, node_id: str, path: str, max_bytes: int
    ) -> str | None: ...

    async def reboot_node(self, pool_id: str, node_id: str) -> None: ...

    async def resize_pool(self, pool_id: str, dedicated_nodes: int, low_priority_nodes: int) -> None: ...

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None: ...

    async def get_task_counts(self, job_id: str) -> TaskCounts: ...

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...

    async def read_task_file_tail(
        self, job_id: str, task_id: str, path: str, max_bytes: int
    ) -> str | None: ...

    async def read_task_file_from(
        self, job_id: str, task_id: str, path: str, start: int, max_bytes: int
    ) -> bytes | None: ...

    async def terminate_job(self, job_id: str, reason: str | None = None) -> str: ...

    async def terminate_task(self, job_id: str, task_id: str) -> bool: ...


class SyncBatchIO:
    """:class:`BatchIO` over a :class:`~airflow_batch_provider.hooks.batch.BatchHook` (blocking calls)."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return self.hook.get_pool(pool_id, select=select)

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        return self.hook.list_nodes(pool_id, select=select)

    async def read_node_file_tail(self, pool_id: str, node_id: str, path: str, max_bytes: int) -> str | None:
        return self.hook.read_node_file_tail(pool_id, node_id, path, max_bytes=max_bytes)

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        self.hook.reboot_node(pool_id, node_id)

    async def resize_pool(self, pool_id: str, dedicated_nodes: int, low_priority_nodes: int) -> None:
        self.hook.resize_pool(pool_id, dedicated_nodes, low_priority_nodes)

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return self.hook.get_job(job_id, select=select)

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        return self.hook.get_task_counts(job_id)

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return self.hook.list_tasks(job_id, filter=filter, select=select, limit=limit)

    async def read_task_file_tail(self, job_id: str, task_id: str, path: str, max_bytes: int) -> str | None:
        return self.hook.read_task_file_tail(job_id, task_id, path, max_bytes=max_bytes)

    async def read_task_file_from(
        self, job_id: str, task_id: str, path: str, start: int, max_bytes: int
    ) -> bytes | None:
        return self.hook.read_task_file_from(job_id, task_id, path, start, max_bytes=max_bytes)

    async def terminate_job(self, job_id: str, reason: str | None = None) -> str:
        return self.hook.terminate_job(job_id, reason)

    async def terminate_task(self, job_id: str, task_id: str) -> bool:
        return self.hook.terminate_task(job_id, task_id)


class AsyncBatchIO:
    """:class:`BatchIO` over the hook's async client (for the triggerer)."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return await self.hook.aget_pool(pool_id, select=select)

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        return await self.hook.alist_nodes(pool_id, select=select)

    async def read_node_file_tail(self, pool_id: str, node_id: str, path: str, max_bytes: int) -> str | None:
        return await self.hook.aread_node_file_tail(pool_id, node_id, path, max_bytes=max_bytes)

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        await self.hook.areboot_node(pool_id, node_id)

    async def resize_pool(self, pool_id: str, dedicated_nodes: int, low_priority_nodes: int) -> None:
        await self.hook.aresize_pool(pool_id, dedicated_nodes, low_priority_nodes)

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return await self.hook.aget_job(job_id, select=select)

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        return await self.hook.aget_task_counts(job_id)

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return await self.hook.alist_tasks(job_id, filter=filter, select=select, limit=limit)

    async def read_task_file_tail(self, job_id: str, task_id: str, path: str, max_bytes: int) -> str | None:
        return await self.hook.aread_task_file_tail(job_id, task_id, path, max_bytes=max_bytes)

    async def read_task_file_from(
        self, job_id: str, task_id: str, path: str, start: int, max_bytes: int
    ) -> bytes | None:
        return await self.hook.aread_task_file_from(job_id, task_id, path, start, max_bytes=max_bytes)

    async def terminate_job(self, job_id: str, reason: str | None = None) -> str:
        return await self.hook.aterminate_job(job_id, reason)

    async def terminate_task(self, job_id: str, task_id: str) -> bool:
        return await self.hook.aterminate_task(job_id, task_id)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a check coroutine from synchronous code (in a helper thread if a loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coro).result()
