"""Shared fixtures: one emulator for the session, SDK clients, pools, and polling helpers."""

from __future__ import annotations

import asyncio
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.aio import BatchClient as AsyncBatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer

T = TypeVar("T")

#: Long-running operations poll this often in tests (the SDK default is 5 s).
POLL = 0.02
UBUNTU = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04",
)


def sh(script: str) -> str:
    """A command line running ``script`` in a shell (Batch runs command lines without one)."""
    return f"/bin/sh -c {shlex.quote(script)}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.02) -> T:
    """Call ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def error_of(excinfo: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int, str]:
    """(HTTP status, Batch error code) of an SDK exception."""
    err = excinfo.value
    assert err.response is not None
    return err.response.status_code, str(err.error.code if err.error else "")


def pool_options(pool_id: str, **overrides: Any) -> m.BatchPoolCreateOptions:
    values: dict[str, Any] = {
        "id": pool_id,
        "vm_size": "standard_d2s_v3",
        "virtual_machine_configuration": UBUNTU,
        "target_dedicated_nodes": 1,
    }
    values.update(overrides)
    return m.BatchPoolCreateOptions(**values)


def wait_for_idle_nodes(
    client: BatchClient, pool_id: str, count: int, timeout: float = 15.0
) -> list[m.BatchNode]:
    def ready() -> list[m.BatchNode] | None:
        nodes = list(client.list_nodes(pool_id))
        idle = [node for node in nodes if node.state in ("idle", "running")]
        return nodes if len(idle) == count and len(nodes) == count else None

    return wait_for(ready, timeout)


def wait_for_task(client: BatchClient, job_id: str, task_id: str, timeout: float = 15.0) -> m.BatchTask:
    return wait_for(
        lambda: task if (task := client.get_task(job_id, task_id)).state == "completed" else None, timeout
    )


@pytest.fixture(scope="session")
def emulator() -> Iterator[BatchEmulatorServer]:
    with BatchEmulatorServer(
        step_delay=0.005, dedicated_core_quota=1000, pool_quota=1000, active_job_quota=1000
    ) as server:
        yield server


@pytest.fixture(scope="session")
def client(emulator: BatchEmulatorServer) -> BatchClient:
    return BatchClient(
        emulator.endpoint, AzureNamedKeyCredential(emulator.account_name, emulator.account_key)
    )


@pytest.fixture
async def aio_client(emulator: BatchEmulatorServer) -> AsyncIterator[AsyncBatchClient]:
    credential = AzureNamedKeyCredential(emulator.account_name, emulator.account_key)
    async with AsyncBatchClient(emulator.endpoint, credential) as aio:
        yield aio


@pytest.fixture(scope="session")
def shared_pool(client: BatchClient) -> str:
    """A pool of two idle nodes with four slots each, shared by tests that only need somewhere to run."""
    pool_id = unique("shared")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=2, task_slots_per_node=4))
    wait_for_idle_nodes(client, pool_id, 2)
    return pool_id


@pytest.fixture
def job_on_shared_pool(client: BatchClient, shared_pool: str) -> str:
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=shared_pool)))
    return job_id


async def async_wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
