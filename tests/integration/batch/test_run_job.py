"""The one-task run (``BatchRunJobOperator``) against the emulator: job, tasks, deferred wait and cleanup
in one Airflow task; a retry after a crash re-attaches without adding a task twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_batch_provider.exceptions import BatchTaskFailureError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.run_job import BatchRunJobOperator
from airflow_batch_provider.triggers.job import BatchJobTrigger
from tests.integration.batch.conftest import ready_pool
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

TASKS = [{"id": f"t{i}", "command_line": f"/bin/sh -c 'echo hello-{i}'"} for i in range(3)]


@pytest.fixture(scope="module")
def pool_id(local_azure_stack: Any) -> Iterator[str]:
    with ready_pool("run", task_slots_per_node=4) as pool:
        yield pool


def _run(operator: BatchRunJobOperator, context: dict[str, Any]) -> dict[str, Any]:
    """execute, and when it defers, the real trigger (rebuilt from its serialized form), then the resume."""
    try:
        return operator.execute(context)
    except TaskDeferred as deferred:
        assert deferred.method_name == "execute_complete"
        _, kwargs = deferred.trigger.serialize()
        trigger = BatchJobTrigger(**json.loads(json.dumps(kwargs)))

        async def run() -> list[dict[str, Any]]:
            return [event.payload async for event in trigger.run()]

        (event,) = asyncio.run(run())
        resume = json.loads(json.dumps(deferred.kwargs or {}))
        return getattr(operator, deferred.method_name)(context, event, **resume)


def test_one_task_runs_the_job_deferred_and_deletes_it(pool_id: str, hook: BatchHook, uid: str) -> None:
    operator = BatchRunJobOperator(
        task_id="run",
        job_id=f"run-{uid}",
        pool_id=pool_id,
        tasks=TASKS,
        cleanup="delete",
        deferrable=True,
        poll_interval=0.2,
        timeout=120,
    )
    result = _run(operator, task_context(uid, "run"))
    assert result["job_id"] == f"run-{uid}" and result["created"] is True
    assert (result["added"], result["already_existed"]) == (3, 0)
    assert result["counts"]["succeeded"] == 3 and result["failed_count"] == 0
    assert (hook.get_job(result["job_id"], select=["id", "state"]) or {}).get("state") in (None, "deleting")


def test_a_retry_re_attaches_without_adding_twice(pool_id: str, hook: BatchHook, uid: str) -> None:
    def operator() -> BatchRunJobOperator:
        return BatchRunJobOperator(
            task_id="run", job_id=f"run-{uid}", pool_id=pool_id, tasks=TASKS, poll_interval=0.2, timeout=120
        )

    first = operator().execute(task_context(uid, "run"))
    # The same DAG run's retry (as after a worker crash): same job, same task ids, nothing re-added.
    again = operator().execute(task_context(uid, "run"))
    assert (first["created"], first["added"]) == (True, 3)
    assert (again["created"], again["added"], again["already_existed"]) == (False, 0, 3)
    assert again["task_id_prefix"] == first["task_id_prefix"]
    assert len(hook.list_tasks(f"run-{uid}", select=["id"])) == 3
    assert (hook.get_job(f"run-{uid}", select=["id", "state"]) or {}).get("state") == "active"  # no cleanup
    hook.delete_job(f"run-{uid}")


def test_failed_tasks_fail_the_run_with_their_stderr(pool_id: str, hook: BatchHook, uid: str) -> None:
    operator = BatchRunJobOperator(
        task_id="run",
        job_id=f"run-{uid}",
        pool_id=pool_id,
        tasks=[{"id": "bad", "command_line": "/bin/sh -c 'echo broken >&2; exit 3'"}],
        cleanup="terminate",
        poll_interval=0.2,
        timeout=120,
    )
    with pytest.raises(BatchTaskFailureError, match="broken"):
        operator.execute(task_context(uid, "run"))
    assert (hook.get_job(f"run-{uid}", select=["id", "state"]) or {}).get("state") in (
        "terminating",
        "completed",
    )
    hook.delete_job(f"run-{uid}")
