"""No task wedges the scheduler, and nothing a task carries stalls the API.

Tasks with values that request validation would refuse are put in place on the emulator's loop
(``emulator.call``), so these tests hold whatever the validation in front of the scheduler does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from airflow_batch_provider.emulator.models.account import BatchAccount
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import error_of, unique, wait_for, wait_for_task


def _job(client: BatchClient, pool_id: str, **kwargs: Any) -> str:
    job_id = unique("job")
    pool_info = m.BatchPoolInfo(pool_id=pool_id)
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=pool_info, **kwargs))
    return job_id


def _add_broken_task(
    emulator: BatchEmulatorServer, job_id: str, task_id: str, breaks: Callable[[Any], None]
) -> None:
    """Add a valid task, broken by ``breaks(task)`` before the scheduler ever sees it."""

    def add(account: BatchAccount) -> None:
        job = account.jobs.get(job_id)
        task = account.tasks.build(job, {"id": task_id, "commandLine": "true"})
        breaks(task)
        job.tasks[task.id.lower()] = task
        account.scheduler.kick()

    emulator.call(add)


def _assert_failed_as_user_error(emulator: BatchEmulatorServer, job_id: str, task_id: str) -> None:
    """Wait for the task to complete and check its failure (read on the loop: the SDK may not parse it)."""

    def completed(account: BatchAccount) -> dict[str, Any] | None:
        task = account.tasks.get(job_id, task_id)
        return dict(task.execution_info) if task.state == "completed" else None

    info = wait_for(lambda: emulator.call(completed))
    assert info["result"] == "failure"
    assert info["failureInfo"]["category"] == "usererror"
    assert info["failureInfo"]["code"] == "InvalidTaskSpecification"


@pytest.mark.parametrize(
    "breaks",
    [
        pytest.param(lambda task: task.properties.update(affinityInfo="x"), id="affinity-info-a-string"),
        pytest.param(
            lambda task: task.properties.update(dependsOn={"taskIdRanges": [{"start": "x", "end": 2}]}),
            id="dependency-range-not-a-number",
        ),
        pytest.param(lambda task: task.properties.update(environmentSettings=["x"]), id="environment-a-list"),
        pytest.param(lambda task: task.properties.update(resourceFiles=5), id="resource-files-a-number"),
        pytest.param(
            lambda task: task.properties.update(exitConditions={"exitCodes": [{"code": "x"}]}),
            id="exit-conditions-unusable",
        ),
    ],
)
def test_a_task_that_cannot_run_fails_alone(
    client: BatchClient, emulator: BatchEmulatorServer, shared_pool: str, breaks: Callable[[Any], None]
) -> None:
    job_id = _job(client, shared_pool, uses_task_dependencies=True)
    other_job_id = _job(client, shared_pool)
    _add_broken_task(emulator, job_id, "broken", breaks)

    _assert_failed_as_user_error(emulator, job_id, "broken")
    client.create_task(job_id, m.BatchTaskCreateOptions(id="sibling", command_line="true"))
    client.create_task(other_job_id, m.BatchTaskCreateOptions(id="elsewhere", command_line="true"))
    assert wait_for_task(client, job_id, "sibling").execution_info.result == "success"
    assert wait_for_task(client, other_job_id, "elsewhere").execution_info.result == "success"


def test_a_job_environment_that_cannot_be_used_fails_its_tasks_instead_of_hanging(
    client: BatchClient, emulator: BatchEmulatorServer, shared_pool: str
) -> None:
    job_id = _job(client, shared_pool)
    emulator.call(lambda account: account.jobs.get(job_id).properties.update(commonEnvironmentSettings=["x"]))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="true"))
    _assert_failed_as_user_error(emulator, job_id, "t")


def test_dependency_ranges_are_met_blocked_and_waited_on_without_expanding_them(
    client: BatchClient, shared_pool: str
) -> None:
    job_id = _job(client, shared_pool, uses_task_dependencies=True)

    def depends(task_id: str, start: int, end: int) -> m.BatchTaskCreateOptions:
        return m.BatchTaskCreateOptions(
            id=task_id,
            command_line="true",
            depends_on=m.BatchTaskDependencies(task_id_ranges=[m.BatchTaskIdRange(start=start, end=end)]),
        )

    # The largest range there is (ids are int32): expanded, it would take the scheduler minutes and
    # hundreds of gigabytes on every pass.
    client.create_task(job_id, depends("after-two-billion", 0, 2**31 - 1))
    client.create_task(job_id, depends("after-two-and-three", 2, 3))
    client.create_task(job_id, depends("after-four", 4, 4))
    client.create_tasks(
        job_id,
        [
            m.BatchTaskCreateOptions(id="2", command_line="true"),
            m.BatchTaskCreateOptions(id="3", command_line="true"),
            m.BatchTaskCreateOptions(id="04", command_line="true"),  # not the task "4" of a range
            m.BatchTaskCreateOptions(id="4", command_line="false"),
        ],
    )
    assert wait_for_task(client, job_id, "after-two-and-three").execution_info.result == "success"
    for task_id in ("2", "3", "04", "4"):
        wait_for_task(client, job_id, task_id)
    time.sleep(0.3)  # a few scheduling passes
    assert client.get_task(job_id, "after-four").state == "active"  # blocked: task 4 failed
    assert client.get_task(job_id, "after-two-billion").state == "active"  # waiting


def test_a_command_line_over_the_service_limit_is_refused(client: BatchClient, shared_pool: str) -> None:
    job_id = _job(client, shared_pool)
    command_line = "true " + "a" * (1024 * 1024)
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task(job_id, m.BatchTaskCreateOptions(id="huge", command_line=command_line))
    assert error_of(excinfo)[0] == 413


def test_a_long_command_line_starts_without_stalling_requests(client: BatchClient, shared_pool: str) -> None:
    job_id = _job(client, shared_pool)
    client.create_task(job_id, m.BatchTaskCreateOptions(id="probe", command_line="true"))
    wait_for_task(client, job_id, "probe")
    # Nine words of 100,000 characters (one word may not exceed 128 KiB in exec): quadratic to shlex.
    command_line = "true " + " ".join(["a" * 100_000] * 9)
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            started = time.perf_counter()
            client.get_task(job_id, "probe")
            latencies.append(time.perf_counter() - started)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line=command_line))
        task = wait_for_task(client, job_id, "long", timeout=10)
    finally:
        done.set()
        poller.join()
    assert task.execution_info.result == "success"
    assert wait_for(lambda: latencies) and max(latencies) < 1.0, f"slowest get-task: {max(latencies):.2f}s"


def _dependent(task_id: str, depends_on: m.BatchTaskDependencies) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line="true", depends_on=depends_on)


def test_dependencies_beyond_the_service_limits_are_refused(client: BatchClient, shared_pool: str) -> None:
    job_id = _job(client, shared_pool, uses_task_dependencies=True)
    too_far = m.BatchTaskDependencies(task_id_ranges=[m.BatchTaskIdRange(start=1, end=2**31)])
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task(job_id, _dependent("far", too_far))
    assert error_of(excinfo)[0] == 400
    too_many = m.BatchTaskDependencies(task_ids=[f"{index:09d}" for index in range(7200)])  # 64,800 chars
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task(job_id, _dependent("many", too_many))
    assert error_of(excinfo) == (400, "TaskDependencyListTooLong")


def test_a_job_preparation_task_that_cannot_start_fails_the_tasks_instead_of_hanging(
    client: BatchClient, emulator: BatchEmulatorServer, shared_pool: str
) -> None:
    preparation = m.BatchJobPreparationTask(command_line="true")
    job_id = _job(client, shared_pool, job_preparation_task=preparation)
    emulator.call(lambda account: account.jobs.get(job_id).preparation_task.update(environmentSettings=["x"]))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="true"))
    _assert_failed_as_user_error(emulator, job_id, "t")
