"""Spot preemption reported per task by the job wait, and the ``max_task_requeues`` budget."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_batch_provider.exceptions import BatchRequeueBudgetError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.triggers.job import BatchJobTrigger
from tests.support.task_context import task_context


@pytest.fixture(scope="module")
def spot_pool(local_azure_stack: Any) -> Iterator[str]:
    pool = f"spot-{uuid.uuid4().hex[:6]}"
    BatchCreatePoolOperator(
        task_id="pool", pool_id=pool, vm_size="standard_d2s_v3", target_spot_nodes=1, poll_interval=0.2
    ).execute(task_context("setup", "pool"))
    yield pool
    BatchHook().delete_pool(pool)


def _preempted_job(stack: Any, hook: BatchHook, pool: str, uid: str) -> tuple[str, str, str]:
    """A job whose one task was running on the Spot node when it was preempted: (job, prefix, node)."""
    job_id = f"spot-{uid}"
    BatchCreateJobOperator(task_id="job", job_id=job_id, pool_id=pool).execute(task_context(uid, "job"))
    added = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"id": "long", "command_line": "/bin/sh -c 'sleep 5'"}]
    ).execute(task_context(uid, "add"))
    deadline = time.monotonic() + 20
    while hook.list_tasks(job_id, select=["id", "state"])[0]["state"] != "running":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    (node,) = hook.list_nodes(pool, select=["id"])
    stack.batch.preempt_node(pool, node["id"])
    return job_id, added["task_id_prefix"], str(node["id"])


def test_a_requeue_over_the_budget_fails_the_wait_naming_task_and_node(
    local_azure_stack: Any, spot_pool: str, hook: BatchHook, uid: str
) -> None:
    job_id, prefix, node_id = _preempted_job(local_azure_stack, hook, spot_pool, uid)
    sensor = BatchJobSensor(
        task_id="wait",
        job_id=job_id,
        task_id_prefix=prefix,
        max_task_requeues=0,
        poke_interval=0.1,
        timeout=30,
    )
    with pytest.raises(BatchRequeueBudgetError) as info:
        sensor.execute(task_context(uid, "wait"))
    message = str(info.value)
    assert f"{prefix}long requeued 1x" in message
    assert f"preempted node {node_id}" in message
    assert "max_task_requeues=0" in message
    hook.terminate_job(job_id)


def test_the_deferred_wait_reports_requeues_per_task_and_enforces_the_budget(
    local_azure_stack: Any, spot_pool: str, hook: BatchHook, uid: str
) -> None:
    job_id, _, node_id = _preempted_job(local_azure_stack, hook, spot_pool, uid)

    async def run(budget: int | None) -> dict[str, Any]:
        trigger = BatchJobTrigger(job_id=job_id, poll_interval=0.1, max_task_requeues=budget)
        events = [event.payload async for event in trigger.run()]
        return events[-1]

    # Without a prefix the budget still applies (the unfinished tasks are listed).
    failed = asyncio.run(run(0))
    assert (failed["status"], failed["reason"]) == ("failed", "requeue_budget")
    assert failed["requeued_tasks"][0]["requeue_count"] == 1
    assert failed["requeued_tasks"][0]["node_id"] == node_id
    # With a budget of one requeue, the task runs again and the wait succeeds, still reporting it.
    done = asyncio.run(run(1))
    assert done["status"] == "success"
    hook.terminate_job(job_id)
