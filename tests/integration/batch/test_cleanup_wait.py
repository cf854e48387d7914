"""Terminating or deleting a job or pool and waiting for it: deferrable, through real triggers, bounded."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_batch_provider.exceptions import BatchProviderError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.base import BatchCleanupBaseOperator
from airflow_batch_provider.operators.job import BatchDeleteJobOperator, BatchTerminateJobOperator
from airflow_batch_provider.operators.pool import BatchDeletePoolOperator
from airflow_batch_provider.triggers.cleanup import BatchDeletionTrigger, BatchJobTerminationTrigger
from tests.support.triggers import events_of


def _pool(hook: BatchHook, pool_id: str) -> None:
    hook.create_pool(
        {
            "id": pool_id,
            "vmSize": "standard_d2s_v3",
            "virtualMachineConfiguration": {
                "imageReference": {
                    "publisher": "canonical",
                    "offer": "ubuntu-24_04-lts",
                    "sku": "server",
                    "version": "latest",
                },
                "nodeAgentSKUId": "batch.node.ubuntu 24.04",
            },
            "targetDedicatedNodes": 1,
        }
    )


def _deferred_run(op: BatchCleanupBaseOperator, context: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``op`` until it defers, the trigger it deferred with (re-created from JSON), and the resume."""
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, BatchDeletionTrigger)
    _classpath, kwargs = trigger.serialize()
    (event,) = asyncio.run(events_of(BatchDeletionTrigger(**json.loads(json.dumps(kwargs)))))
    return event, op.execute_complete(context, event)


def test_a_deferred_pool_delete_waits_in_the_triggerer_until_the_pool_is_gone(
    hook: BatchHook, context: dict, uid: str
) -> None:
    pool_id = f"itest-delete-defer-{uid}"
    _pool(hook, pool_id)
    op = BatchDeletePoolOperator(
        task_id="delete_pool", pool_id=pool_id, wait_for_completion=True, deferrable=True, poll_interval=0.1
    )
    event, result = _deferred_run(op, context)
    assert event["status"] == "deleted"
    assert result == {"pool_id": pool_id, "outcome": "deleted"}
    assert hook.get_pool(pool_id) is None


def test_a_deferred_job_delete_waits_until_the_job_is_gone(hook: BatchHook, context: dict, uid: str) -> None:
    job_id = f"itest-delete-defer-{uid}"
    hook.create_job({"id": job_id, "poolInfo": {"poolId": f"no-pool-{uid}"}})
    op = BatchDeleteJobOperator(
        task_id="delete_job", job_id=job_id, wait_for_completion=True, deferrable=True, poll_interval=0.1
    )
    _event, result = _deferred_run(op, context)
    assert result == {"job_id": job_id, "outcome": "deleted"}
    assert hook.get_job(job_id) is None


def test_a_missing_pool_does_not_defer(hook: BatchHook, context: dict, uid: str) -> None:
    op = BatchDeletePoolOperator(
        task_id="delete_pool", pool_id=f"no-such-{uid}", wait_for_completion=True, deferrable=True
    )
    assert op.execute(context)["outcome"] == "not_found"


def test_a_deletion_wait_past_its_timeout_fails_the_task(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-delete-timeout-{uid}"
    _pool(hook, pool_id)
    try:
        trigger = BatchDeletionTrigger(
            kind="pool", resource_id=pool_id, poll_interval=0.1, timeout_at=time.time() - 1
        )
        (event,) = asyncio.run(events_of(trigger))  # the pool exists: never gone
        assert event["status"] == "timeout"
        op = BatchDeletePoolOperator(task_id="delete_pool", pool_id=pool_id, deferrable=True)
        with pytest.raises(BatchProviderError, match=r"still being deleted.*Raise timeout"):
            op.execute_complete(context, event)
    finally:
        hook.delete_pool(pool_id)


def test_a_deferred_terminate_waits_until_the_job_has_ended(hook: BatchHook, context: dict, uid: str) -> None:
    job_id = f"itest-terminate-defer-{uid}"
    hook.create_job({"id": job_id, "poolInfo": {"poolId": f"no-pool-{uid}"}})
    try:
        op = BatchTerminateJobOperator(
            task_id="terminate", job_id=job_id, wait_for_completion=True, deferrable=True, poll_interval=0.1
        )
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context)
        trigger = deferred.value.trigger
        assert isinstance(trigger, BatchJobTerminationTrigger)
        _classpath, kwargs = trigger.serialize()
        (event,) = asyncio.run(events_of(BatchJobTerminationTrigger(**json.loads(json.dumps(kwargs)))))
        assert event["status"] == "terminated"
        assert op.execute_complete(context, event) == {"job_id": job_id, "outcome": "terminated"}
        assert (hook.get_job(job_id) or {}).get("state") == "completed"
    finally:
        hook.delete_job(job_id)
