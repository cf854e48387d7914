"""Triggers: serialisable to JSON primitives, re-creatable from their classpath, and honest events."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import pytest

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.triggers.job import BatchJobTrigger
from airflow_batch_provider.triggers.pool import BatchPoolTrigger


def _round_trip(trigger: Any) -> Any:
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON primitives only
    module, _, name = classpath.rpartition(".")
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.serialize() == (classpath, kwargs)
    return clone


def test_job_trigger_round_trip() -> None:
    trigger = BatchJobTrigger(
        job_id="j",
        task_id_prefix="run-1-",
        azbatch_conn_id="c",
        poll_interval=5,
        timeout_at=1_900_000_000.5,
        expected_task_count=10,
        max_failed_tasks=4,
        max_failure_logs=2,
    )
    clone = _round_trip(trigger)
    assert clone.task_id_prefix == "run-1-" and clone.expected_task_count == 10


def test_pool_trigger_round_trip() -> None:
    clone = _round_trip(BatchPoolTrigger(pool_id="p", min_usable_nodes=2, poll_interval=1, timeout_at=None))
    assert clone.min_usable_nodes == 2
    assert clone.max_start_task_reboots == 0 and clone.reboots.counts == {}


def test_pool_trigger_round_trip_keeps_the_reboot_budget_and_counts() -> None:
    trigger = BatchPoolTrigger(
        pool_id="p",
        max_start_task_reboots=2,
        start_task_reboots={"counts": {"n0": 1}, "rebooted_for": {"n0": "t1|t2"}},
    )
    trigger.reboots.record({"id": "n1", "lastBootTime": "t3"})  # a reboot made while it ran
    clone = _round_trip(trigger)
    assert clone.max_start_task_reboots == 2
    assert clone.reboots.counts == {"n0": 1, "n1": 1}


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, None])
def test_pool_trigger_refuses_a_bad_reboot_budget(bad: Any) -> None:
    with pytest.raises(
        InvalidInputError, match="max_start_task_reboots must be a whole number of at least 0"
    ):
        BatchPoolTrigger(pool_id="p", max_start_task_reboots=bad)


@pytest.fixture
def fake_account(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"counts": [], "tasks": [], "closed": 0, "pool": None, "nodes": []}

    async def aget_task_counts(self: BatchHook, job_id: str) -> TaskCounts:
        return state["counts"].pop(0) if len(state["counts"]) > 1 else state["counts"][0]

    async def alist_tasks(self: BatchHook, job_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        flt = kwargs.get("filter") or ""
        tasks = state["tasks"]
        if "ne 'completed'" in flt:
            return [t for t in tasks if t["state"] != "completed"][: kwargs.get("limit") or None]
        if "result eq 'failure'" in flt:
            return [t for t in tasks if t.get("executionInfo", {}).get("result") == "failure"]
        return tasks

    async def aread_task_file_tail(self: BatchHook, job_id: str, task_id: str, path: str, **kw: Any) -> str:
        return f"stderr of {task_id}"

    async def aget_job(self: BatchHook, job_id: str, select: Any = None) -> dict[str, Any]:
        return {"id": job_id, "state": "active"}

    async def aget_pool(self: BatchHook, pool_id: str, select: Any = None) -> Any:
        return state["pool"]

    async def alist_nodes(self: BatchHook, pool_id: str, select: Any = None) -> list[dict[str, Any]]:
        return state["nodes"]

    async def aread_node_file_tail(self: BatchHook, pool_id: str, node_id: str, path: str, **kw: Any) -> str:
        return f"startup stderr of {node_id}"

    async def areboot_node(self: BatchHook, pool_id: str, node_id: str) -> None:
        state.setdefault("reboots", []).append(node_id)
        state["nodes"] = [{"id": node_id, "state": "idle"}]  # the start task worked this time

    async def aclose(self: BatchHook) -> None:
        state["closed"] += 1

    for name, fn in list(locals().items()):
        if name.startswith("a") and callable(fn):
            monkeypatch.setattr(BatchHook, name, fn)
    return state


async def _events(trigger: Any) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def test_job_trigger_reports_success_once_and_closes_the_client(fake_account: dict[str, Any]) -> None:
    fake_account["counts"] = [TaskCounts(active=1), TaskCounts(completed=1, succeeded=1)]
    fake_account["tasks"] = [
        {"id": "t", "state": "completed", "executionInfo": {"result": "success", "exitCode": 0}}
    ]
    (event,) = asyncio.run(_events(BatchJobTrigger(job_id="j", poll_interval=0)))
    assert event["status"] == "success" and event["counts"]["succeeded"] == 1
    assert fake_account["closed"] == 1


def test_job_trigger_failure_event_carries_ids_and_stderr(fake_account: dict[str, Any]) -> None:
    fake_account["counts"] = [TaskCounts(completed=1, failed=1)]
    fake_account["tasks"] = [
        {
            "id": "t9",
            "state": "completed",
            "executionInfo": {
                "result": "failure",
                "exitCode": 2,
                "failureInfo": {"code": "FailureExitCode", "message": "exit 2", "category": "usererror"},
            },
        }
    ]
    (event,) = asyncio.run(_events(BatchJobTrigger(job_id="j", poll_interval=0)))
    assert event["status"] == "failed" and event["failed_count"] == 1
    assert event["failed_tasks"][0]["exit_code"] == 2
    assert event["failed_tasks"][0]["stderr_tail"] == "stderr of t9"
    assert json.loads(json.dumps(event)) == event


def test_job_trigger_times_out_with_last_status(fake_account: dict[str, Any]) -> None:
    fake_account["counts"] = [TaskCounts(active=3)]
    (event,) = asyncio.run(_events(BatchJobTrigger(job_id="j", poll_interval=0, timeout_at=0)))
    assert event["status"] == "timeout" and "0/3 completed" in event["message"]


def test_pool_trigger_ready(fake_account: dict[str, Any]) -> None:
    fake_account["pool"] = {
        "id": "p",
        "state": "active",
        "allocationState": "steady",
        "targetDedicatedNodes": 1,
    }
    fake_account["nodes"] = [{"id": "n", "state": "idle"}]
    (event,) = asyncio.run(_events(BatchPoolTrigger(pool_id="p", poll_interval=0)))
    assert event == {
        "carry": None,
        "status": "ready",
        "pool_id": "p",
        "message": event["message"],
        "usable_nodes": 1,
    }


def test_pool_trigger_error_after_repeated_failures(
    fake_account: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: BatchHook, pool_id: str, select: Any = None) -> Any:
        raise ConnectionError("down")

    monkeypatch.setattr(BatchHook, "aget_pool", broken)
    (event,) = asyncio.run(_events(BatchPoolTrigger(pool_id="p", poll_interval=0, max_consecutive_errors=2)))
    assert event["status"] == "error" and "ConnectionError" in event["message"]


def _one_node_whose_start_task_failed(account: dict[str, Any]) -> None:
    """A steady pool ``p`` with one target node, ``n``, in ``starttaskfailed``."""
    account["pool"] = {"id": "p", "state": "active", "allocationState": "steady", "targetDedicatedNodes": 1}
    account["nodes"] = [{"id": "n", "state": "starttaskfailed", "startTaskInfo": {"exitCode": 1}}]


def test_pool_trigger_reboots_a_failed_node_and_keeps_the_count(fake_account: dict[str, Any]) -> None:
    _one_node_whose_start_task_failed(fake_account)
    trigger = BatchPoolTrigger(pool_id="p", poll_interval=0, max_start_task_reboots=1)
    (event,) = asyncio.run(_events(trigger))
    assert event["status"] == "ready" and fake_account["reboots"] == ["n"]
    assert trigger.reboots.counts == {"n": 1}
    assert trigger.serialize()[1]["start_task_reboots"]["counts"] == {"n": 1}


def test_pool_trigger_checkpoints_after_a_reboot_when_asked(fake_account: dict[str, Any]) -> None:
    _one_node_whose_start_task_failed(fake_account)
    trigger = BatchPoolTrigger(
        pool_id="p", poll_interval=0, max_start_task_reboots=2, checkpoint_each_reboot=True, timeout_at=9e9
    )
    (event,) = asyncio.run(_events(trigger))
    # The reboot ends the trigger before the pool is ready: the task defers again with the count.
    assert event["status"] == "checkpoint" and fake_account["reboots"] == ["n"]
    resumed = _round_trip(BatchPoolTrigger(**event["trigger_kwargs"]))
    assert resumed.reboots.counts == {"n": 1} and resumed.timeout_at == 9e9
    assert resumed.checkpoint_each_reboot is True
    assert event["progress"] == {"start_task_reboots": resumed.reboots.to_json()}

    (ready,) = asyncio.run(_events(resumed))  # no reboot in this one: no checkpoint
    assert ready["status"] == "ready" and fake_account["reboots"] == ["n"]
