"""Pools, jobs and task lists the Batch benchmarks share."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_batch_provider.hooks.batch import BatchHook

IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSkuId": "batch.node.ubuntu 24.04",
}
VM_SIZE = "standard_d2s_v3"
#: A pool with no nodes: tasks added to its jobs stay queued, so only submission is measured.
IDLE_POOL_ID = "bench-idle-pool"


def pool_spec(pool_id: str, nodes: int, slots_per_node: int = 1) -> dict[str, Any]:
    return {
        "id": pool_id,
        "vmSize": VM_SIZE,
        "targetDedicatedNodes": nodes,
        "taskSlotsPerNode": slots_per_node,
        "virtualMachineConfiguration": IMAGE,
    }


def ensure_idle_pool(hook: BatchHook) -> str:
    """Create the no-node pool once; returns its id."""
    hook.create_pool(pool_spec(IDLE_POOL_ID, 0))
    return IDLE_POOL_ID


def create_job(hook: BatchHook, job_id: str, pool_id: str) -> str:
    hook.create_job({"id": job_id, "poolInfo": {"poolId": pool_id}})
    return job_id


def trivial_tasks(count: int, command: str = "/bin/true") -> list[dict[str, Any]]:
    """``count`` tasks in the REST shape with ids ``t00000``... and a command that does nothing."""
    width = max(5, len(str(count)))
    return [{"id": f"t{index:0{width}d}", "commandLine": command} for index in range(count)]


def wait_for_idle_nodes(hook: BatchHook, pool_id: str, count: int, timeout: float = 120.0) -> None:
    """Block until ``count`` nodes of the pool are idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = hook.list_nodes(pool_id, select=["id", "state"])
        if sum(1 for node in nodes if str(node.get("state")).lower() == "idle") >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"pool {pool_id} did not get {count} idle node(s) within {timeout:.0f}s")


def delete_jobs(hook: BatchHook, job_ids: list[str]) -> None:
    for job_id in job_ids:
        hook.delete_job(job_id)
