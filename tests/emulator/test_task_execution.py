"""How tasks run: slots, retries, timeouts, dependencies, exit conditions, environment, load."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from azure.batch import BatchClient
from azure.batch import models as m

from tests.emulator.conftest import pool_options, sh, unique, wait_for, wait_for_idle_nodes, wait_for_task

MakeJob = Callable[..., str]


def _max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _spans(tasks: list[m.BatchTask]) -> list[tuple[datetime, datetime]]:
    return [(t.execution_info.start_time, t.execution_info.end_time) for t in tasks]


@pytest.fixture
def make_job(client: BatchClient) -> MakeJob:
    def make(pool_id: str, **kwargs: object) -> str:
        job_id = unique("job")
        client.create_job(
            m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **kwargs)
        )
        return job_id

    return make


@pytest.fixture(scope="module")
def four_slot_pool(client: BatchClient) -> str:
    pool_id = unique("four")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=1, task_slots_per_node=4))
    wait_for_idle_nodes(client, pool_id, 1)
    return pool_id


def test_tasks_fill_but_never_exceed_the_slots(
    client: BatchClient, four_slot_pool: str, make_job: MakeJob
) -> None:
    job_id = make_job(four_slot_pool)
    client.create_tasks(
        job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="sleep 0.3") for i in range(8)]
    )
    tasks = [wait_for_task(client, job_id, f"t{i}") for i in range(8)]
    assert _max_overlap(_spans(tasks)) == 4


def test_required_slots_are_respected(client: BatchClient, four_slot_pool: str, make_job: MakeJob) -> None:
    job_id = make_job(four_slot_pool)
    client.create_tasks(
        job_id,
        [m.BatchTaskCreateOptions(id=f"t{i}", command_line="sleep 0.2", required_slots=3) for i in range(3)],
    )
    tasks = [wait_for_task(client, job_id, f"t{i}") for i in range(3)]
    assert _max_overlap(_spans(tasks)) == 1


def test_retries_until_success_or_exhaustion(
    client: BatchClient, shared_pool: str, make_job: MakeJob
) -> None:
    job_id = make_job(shared_pool)
    flaky = sh("n=$(cat ../count 2>/dev/null || echo 0); echo $((n+1)) > ../count; [ $n -ge 1 ]")
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="flaky", command_line=flaky, constraints=m.BatchTaskConstraints(max_task_retry_count=3)
        ),
    )
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="broken", command_line=sh("exit 4"), constraints=m.BatchTaskConstraints(max_task_retry_count=2)
        ),
    )
    flaky_task = wait_for_task(client, job_id, "flaky")
    assert (flaky_task.execution_info.result, flaky_task.execution_info.retry_count) == ("success", 1)
    assert flaky_task.execution_info.last_retry_time is not None
    broken = wait_for_task(client, job_id, "broken")
    assert (
        broken.execution_info.result,
        broken.execution_info.retry_count,
        broken.execution_info.exit_code,
    ) == (
        "failure",
        2,
        4,
    )
    assert broken.execution_info.failure_info.code == "FailureExitCode"


def test_max_wall_clock_time_kills_the_task(client: BatchClient, shared_pool: str, make_job: MakeJob) -> None:
    job_id = make_job(shared_pool)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="slow",
            command_line="sleep 30",
            constraints=m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=0.3)),
        ),
    )
    task = wait_for_task(client, job_id, "slow", timeout=10)
    assert task.execution_info.result == "failure"
    assert task.execution_info.end_time - task.execution_info.start_time < timedelta(seconds=5)


def test_dependencies_and_dependency_actions(
    client: BatchClient, shared_pool: str, make_job: MakeJob
) -> None:
    job_id = make_job(shared_pool, uses_task_dependencies=True)
    satisfy = m.ExitConditions(
        exit_codes=[m.ExitCodeMapping(code=3, exit_options=m.ExitOptions(dependency_action="satisfy"))]
    )
    tasks = [
        m.BatchTaskCreateOptions(id="1", command_line="sleep 0.2"),
        m.BatchTaskCreateOptions(id="2", command_line="true"),
        m.BatchTaskCreateOptions(id="3", command_line="true"),
        m.BatchTaskCreateOptions(
            id="after-range",
            command_line="true",
            depends_on=m.BatchTaskDependencies(task_id_ranges=[m.BatchTaskIdRange(start=1, end=3)]),
        ),
        m.BatchTaskCreateOptions(id="fails", command_line=sh("exit 2")),
        m.BatchTaskCreateOptions(
            id="blocked", command_line="true", depends_on=m.BatchTaskDependencies(task_ids=["fails"])
        ),
        m.BatchTaskCreateOptions(id="fails-ok", command_line=sh("exit 3"), exit_conditions=satisfy),
        m.BatchTaskCreateOptions(
            id="unblocked", command_line="true", depends_on=m.BatchTaskDependencies(task_ids=["fails-ok"])
        ),
    ]
    client.create_tasks(job_id, tasks)
    after = wait_for_task(client, job_id, "after-range")
    first = client.get_task(job_id, "1")
    assert after.execution_info.start_time >= first.execution_info.end_time
    assert wait_for_task(client, job_id, "unblocked").execution_info.result == "success"
    wait_for_task(client, job_id, "fails")
    time.sleep(0.2)
    assert client.get_task(job_id, "blocked").state == "active"


def test_exit_code_ranges_pick_the_job_action(
    client: BatchClient, shared_pool: str, make_job: MakeJob
) -> None:
    job_id = make_job(shared_pool, task_failure_mode="performexitoptionsjobaction")
    tolerant = m.ExitConditions(
        exit_code_ranges=[
            m.ExitCodeRangeMapping(start=10, end=20, exit_options=m.ExitOptions(job_action="none"))
        ]
    )
    client.create_task(
        job_id, m.BatchTaskCreateOptions(id="tolerated", command_line=sh("exit 15"), exit_conditions=tolerant)
    )
    assert wait_for_task(client, job_id, "tolerated").execution_info.exit_code == 15
    assert client.get_job(job_id).state == "active"
    client.create_task(
        job_id, m.BatchTaskCreateOptions(id="fatal", command_line=sh("exit 21"), exit_conditions=tolerant)
    )
    job = wait_for(lambda: j if (j := client.get_job(job_id)).state == "completed" else None)
    assert job.execution_info.termination_reason == "TaskFailed"


def test_environment_reaches_the_process(client: BatchClient, shared_pool: str, make_job: MakeJob) -> None:
    job_id = make_job(
        shared_pool, common_environment_settings=[m.EnvironmentSetting(name="SHARED", value="from-job")]
    )
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="env",
            command_line=sh('echo "$SHARED $OWN $AZ_BATCH_TASK_ID $AZ_BATCH_JOB_ID"'),
            environment_settings=[m.EnvironmentSetting(name="OWN", value="from-task")],
        ),
    )
    wait_for_task(client, job_id, "env")
    output = b"".join(client.download_task_file(job_id, "env", "stdout.txt")).decode()
    assert output == f"from-job from-task env {job_id}\n"


def test_pack_fills_one_node_first(client: BatchClient, make_job: MakeJob) -> None:
    pool_id = unique("pack")
    client.create_pool(
        pool_options(
            pool_id,
            target_dedicated_nodes=2,
            task_slots_per_node=2,
            task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type="pack"),
        )
    )
    wait_for_idle_nodes(client, pool_id, 2)
    job_id = make_job(pool_id)
    client.create_tasks(
        job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="sleep 0.3") for i in range(2)]
    )
    nodes = {wait_for_task(client, job_id, f"t{i}").node_info.node_id for i in range(2)}
    assert len(nodes) == 1


def test_api_stays_responsive_under_load(client: BatchClient, make_job: MakeJob) -> None:
    pool_id = unique("load")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=2, task_slots_per_node=100))
    wait_for_idle_nodes(client, pool_id, 2)
    job_id = make_job(pool_id)
    client.create_tasks(
        job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="sleep 1") for i in range(200)]
    )
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.running >= 150)
    slowest = 0.0
    for _ in range(10):
        started = time.monotonic()
        client.get_pool(pool_id)
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.5
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.succeeded == 200, timeout=30)
