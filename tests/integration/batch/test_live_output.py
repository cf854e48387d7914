"""Live task output: new stdout/stderr lines of running Batch tasks reach the Airflow log while the wait
runs (deferrable and poke), once each, through ranged reads, and not for big watches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.triggers.job import BatchJobTrigger
from tests.integration.batch.conftest import ready_pool
from tests.support.state_store import MemoryTaskStateStore
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

#: Prints two lines, one to stderr, then a third a second later, then keeps running.
TALKER = (
    "/bin/sh -c 'echo first-line; echo oops-line >&2; sleep 1; echo second-line; "
    "printf partial-no-newline; sleep 60'"
)


@pytest.fixture(scope="module")
def pool_id(local_azure_stack: Any) -> Iterator[str]:
    with ready_pool("live", task_slots_per_node=8) as pool:
        yield pool


@pytest.fixture
def job_id(pool_id: str, hook: BatchHook, uid: str) -> Iterator[str]:
    job = BatchCreateJobOperator(task_id="job", job_id=f"live-{uid}", pool_id=pool_id).execute(
        task_context(uid, "job")
    )["job_id"]
    yield job
    hook.terminate_job(job)
    hook.delete_job(job)


def _add(job_id: str, count: int = 1) -> str:
    result = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"id": f"t{i}", "command_line": TALKER} for i in range(count)]
    ).execute(task_context("r", "add"))
    return str(result["task_id_prefix"])


def test_deferred_wait_logs_task_output_before_the_tasks_finish(
    hook: BatchHook, job_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = _add(job_id)
    capfd.readouterr()
    sensor = BatchJobSensor(
        task_id="wait", job_id=job_id, task_id_prefix=prefix, deferrable=True, poke_interval=0.3, timeout=6
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context("r", "wait"))
    _, kwargs = deferred.value.trigger.serialize()
    trigger = BatchJobTrigger(**json.loads(json.dumps(kwargs)))

    async def run() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    (event,) = asyncio.run(run())
    out = capfd.readouterr()
    logged = out.out + out.err
    assert event["status"] == "timeout"
    (task,) = hook.list_tasks(job_id, select=["id", "state"])
    assert task["state"] == "running"  # the lines came while the Batch task still ran
    task_id = task["id"]
    # Read once, however many polls, whether before deferring or in the trigger (offsets carry over).
    assert logged.count(f"[{task_id}] first-line") == 1
    assert logged.count(f"[{task_id}] second-line") == 1
    assert logged.count(f"[{task_id} stderr] oops-line") == 1
    assert "partial-no-newline" not in logged  # an unfinished line waits for its end
    offsets = trigger.serialize()[1]["follow_output"]["offsets"]
    assert offsets[f"{task_id}/stdout.txt"] == len(b"first-line\nsecond-line\n")


def test_poking_wait_logs_each_line_once_and_big_watches_are_not_followed(
    job_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = _add(job_id, count=3)
    small = BatchJobSensor(task_id="wait", job_id=job_id, task_id_prefix=prefix, poke_interval=0.3, timeout=4)
    big = BatchJobSensor(
        task_id="wait",
        job_id=job_id,
        task_id_prefix=prefix,
        poke_interval=0.3,
        timeout=4,
        follow_output_up_to=2,
    )
    capfd.readouterr()
    with pytest.raises(AirflowSensorTimeout):
        big.execute(task_context("r", "wait"))
    quiet = capfd.readouterr()
    assert "first-line" not in quiet.out + quiet.err
    with pytest.raises(AirflowSensorTimeout):
        small.execute(task_context("r", "wait"))
    out = capfd.readouterr()
    logged = out.out + out.err
    for i in range(3):
        assert logged.count(f"[{prefix}t{i}] second-line") == 1, logged[-3000:]


def test_chosen_tasks_only(job_id: str, capfd: pytest.CaptureFixture[str]) -> None:
    prefix = _add(job_id, count=2)
    sensor = BatchJobSensor(
        task_id="wait",
        job_id=job_id,
        follow_output=[f"{prefix}t1"],
        follow_output_up_to=0,
        poke_interval=0.3,
        timeout=3,
    )
    capfd.readouterr()
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(task_context("r", "wait"))
    out = capfd.readouterr()
    logged = out.out + out.err
    assert f"[{prefix}t1] first-line" in logged
    assert f"[{prefix}t0]" not in logged


def test_lines_logged_before_a_triggerer_restart_are_not_logged_again(
    hook: BatchHook, job_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = _add(job_id)
    sensor = BatchJobSensor(
        task_id="wait", job_id=job_id, task_id_prefix=prefix, deferrable=True, poke_interval=0.2, timeout=4
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context("r", "wait"))
    _, kwargs = deferred.value.trigger.serialize()
    deferred_with = json.loads(json.dumps(kwargs))  # what the triggerer reads back from the DB
    store = MemoryTaskStateStore()
    capfd.readouterr()

    async def run(trigger: BatchJobTrigger, seconds: float | None) -> list[dict[str, Any]]:
        trigger.state_store = store

        async def events() -> list[dict[str, Any]]:
            return [event.payload async for event in trigger.run()]

        try:
            return await asyncio.wait_for(events(), seconds)
        except TimeoutError:
            return []  # the triggerer went away mid-wait

    assert asyncio.run(run(BatchJobTrigger(**deferred_with), 2.0)) == []  # each in its own event loop
    before = capfd.readouterr()
    (task,) = hook.list_tasks(job_id, select=["id"])
    assert f"[{task['id']}] second-line" in before.out + before.err  # logged before the restart
    (event,) = asyncio.run(run(BatchJobTrigger(**deferred_with), None))
    after = capfd.readouterr()
    assert event["status"] == "timeout"
    assert "second-line" not in after.out + after.err  # the offsets came from the store, not the DB
    assert "first-line" not in after.out + after.err


def test_reschedule_mode_keeps_offsets_in_the_task_state_store(
    hook: BatchHook, job_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = _add(job_id)
    store = MemoryTaskStateStore()
    capfd.readouterr()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # each poke a fresh sensor, as each reschedule is a fresh process
        sensor = BatchJobSensor(
            task_id="wait", job_id=job_id, task_id_prefix=prefix, mode="reschedule", poke_interval=0.2
        )
        context = {**task_context("r", "wait"), "task_state_store": store}
        assert sensor.poke(context) is False
        time.sleep(0.2)
    out = capfd.readouterr()
    logged = out.out + out.err
    (task,) = hook.list_tasks(job_id, select=["id"])
    assert logged.count(f"[{task['id']}] first-line") == 1
    assert logged.count(f"[{task['id']}] second-line") == 1
    assert store.get("batch_live_output_offsets")[f"{task['id']}/stdout.txt"] == len(
        b"first-line\nsecond-line\n"
    )
