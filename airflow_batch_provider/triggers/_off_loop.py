"""A trigger's Batch client, prepared off the triggerer's event loop.

The triggerer imports trigger classes and runs every trigger on one event loop: importing the Azure
SDK (and aiohttp with it) or building a client there stalls every other trigger for a few hundred
milliseconds, which Airflow reports as a badly written trigger. So the trigger modules import only
Airflow, and :func:`prepare_batch_io` does the imports and builds the client in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
    from airflow_batch_provider.hooks.batch import BatchHook

#: The connection the triggers use by default (``BatchHook.default_conn_name``, without importing it).
DEFAULT_CONN_ID = "azbatch_default"


def _new_hook(conn_id: str) -> tuple[BatchHook, AsyncBatchIO]:
    # The checks' modules too: the triggers import them later, already loaded.
    import airflow_batch_provider.batch.monitor.job
    import airflow_batch_provider.batch.monitor.pool
    import airflow_batch_provider.batch.service_errors  # noqa: F401
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
    from airflow_batch_provider.hooks.batch import BatchHook

    hook = BatchHook(conn_id)
    return hook, AsyncBatchIO(hook)


async def prepare_batch_io(conn_id: str) -> tuple[BatchHook, AsyncBatchIO]:
    """The hook and its async I/O, the SDK imported; close with ``await hook.aclose()``.

    The hook's first request builds the async client, in a worker thread too
    (:meth:`~airflow_batch_provider.hooks.batch.BatchHook.aget_client`).
    """
    return await asyncio.to_thread(_new_hook, conn_id)
