"""Jobs through the SDK: defaults, validation, state machine, completion rules, prep/release tasks."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.aio import BatchClient as AsyncBatchClient
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import (
    POLL,
    async_wait_for,
    error_of,
    pool_options,
    sh,
    unique,
    wait_for,
    wait_for_idle_nodes,
    wait_for_task,
)


def _job(job_id: str, pool_id: str, **kwargs: object) -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **kwargs)


def _terminate(client: BatchClient, job_id: str, reason: str = "UserTerminate") -> None:
    # azure-batch 15.1.0 fails client-side without an options object (see the REST notes).
    client.begin_terminate_job(
        job_id, BatchJobTerminateOptions(termination_reason=reason), polling_interval=POLL
    ).result()


def _job_in_state(client: BatchClient, job_id: str, state: str) -> m.BatchJob:
    return wait_for(lambda: job if (job := client.get_job(job_id)).state == state else None)


def test_create_fills_in_the_service_defaults(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    job = client.get_job(job_id)
    assert job.state == "active"
    assert job.priority == 0
    assert job.max_parallel_tasks == -1
    assert job.all_tasks_complete_mode == "noaction"
    assert job.task_failure_mode == "noaction"
    assert job.uses_task_dependencies is False
    assert job.constraints.max_task_retry_count == 0
    assert job.constraints.max_wall_clock_time > timedelta(days=10_000)
    assert job.execution_info.pool_id == shared_pool
    assert job.execution_info.start_time is not None


def test_validation_and_lookups(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    with pytest.raises(ResourceExistsError) as excinfo:
        client.create_job(_job(job_id.upper(), shared_pool))
    assert error_of(excinfo) == (409, "JobExists")
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job(m.BatchJobCreateOptions(id=unique("job"), pool_info=None))  # type: ignore[arg-type]
    assert error_of(excinfo) == (400, "MissingRequiredProperty")
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job(_job(unique("job"), shared_pool, priority=5000))
    assert error_of(excinfo) == (400, "InvalidPropertyValue")
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_job("no-such-job")
    assert error_of(excinfo) == (404, "JobNotFound")


def test_job_on_a_missing_pool_is_accepted_and_waits_for_it(client: BatchClient) -> None:
    """Like the service: the job is created, its tasks stay active until the pool exists."""
    pool_id, job_id = unique("later"), unique("job")
    client.create_job(_job(job_id, pool_id))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="echo ok"))
    time.sleep(0.2)
    assert client.get_task(job_id, "t").state == "active"
    client.create_pool(pool_options(pool_id))
    assert wait_for_task(client, job_id, "t").execution_info.result == "success"


def test_patch_and_put(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(
        _job(job_id, shared_pool, priority=5, metadata=[m.BatchMetadataItem(name="a", value="1")])
    )
    client.update_job(job_id, m.BatchJobUpdateOptions(priority=100, max_parallel_tasks=3))
    job = client.get_job(job_id)
    assert (job.priority, job.max_parallel_tasks, job.metadata[0].name) == (100, 3, "a")

    job.priority = None
    job.max_parallel_tasks = None
    job.metadata = None
    client.replace_job(job_id, job)
    replaced = client.get_job(job_id)
    assert (replaced.priority, replaced.max_parallel_tasks, replaced.metadata) == (0, -1, None)

    with pytest.raises(HttpResponseError) as excinfo:
        client.update_job(job_id, m.BatchJobUpdateOptions(pool_info=m.BatchPoolInfo(pool_id="other")))
    assert error_of(excinfo) == (409, "OperationInvalidForCurrentState")


def test_disable_holds_tasks_and_enable_releases_them(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    client.begin_disable_job(
        job_id, m.BatchJobDisableOptions(disable_tasks="requeue"), polling_interval=POLL
    ).result()
    job = client.get_job(job_id)
    assert (job.state, job.previous_state) == ("disabled", "disabling")
    client.create_task(job_id, m.BatchTaskCreateOptions(id="held", command_line="echo ok"))
    time.sleep(0.2)
    assert client.get_task(job_id, "held").state == "active"
    client.begin_enable_job(job_id, polling_interval=POLL).result()
    assert client.get_job(job_id).state == "active"
    assert wait_for_task(client, job_id, "held").execution_info.exit_code == 0


def test_terminate_completes_the_job_and_blocks_new_tasks(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="sleep 30"))
    wait_for(lambda: client.get_task(job_id, "long").state == "running")
    _terminate(client, job_id, "done here")
    job = client.get_job(job_id)
    assert job.state == "completed"
    assert job.execution_info.termination_reason == "done here"
    assert job.execution_info.end_time is not None
    long_task = client.get_task(job_id, "long")
    assert long_task.state == "completed"
    assert long_task.execution_info.failure_info.code == "TaskEnded"
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task(job_id, m.BatchTaskCreateOptions(id="late", command_line="echo"))
    assert error_of(excinfo) == (409, "JobCompleted")
    with pytest.raises(HttpResponseError) as excinfo:
        _terminate(client, job_id)
    assert error_of(excinfo) == (409, "JobCompleted")


def test_delete_kills_running_tasks(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="sleep 30"))
    task = wait_for(lambda: t if (t := client.get_task(job_id, "long")).state == "running" else None)
    node_id = task.node_info.node_id
    client.begin_delete_job(job_id, polling_interval=POLL).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job(job_id)
    node = client.get_node(shared_pool, node_id)
    assert all(
        recent.job_id != job_id for recent in node.recent_tasks or [] if recent.task_state == "running"
    )
    # The job's task directories go with it, as on a real node.
    names = [f.name for f in client.list_node_files(shared_pool, node_id, recursive=True)]
    assert names and not [name for name in names if name.startswith(f"workitems/{job_id}/")]


def test_task_counts(client: BatchClient, job_on_shared_pool: str) -> None:
    job_id = job_on_shared_pool
    client.create_task(job_id, m.BatchTaskCreateOptions(id="ok", command_line="true"))
    client.create_task(
        job_id, m.BatchTaskCreateOptions(id="bad", command_line=sh("exit 1"), required_slots=2)
    )
    wait_for_task(client, job_id, "ok")
    wait_for_task(client, job_id, "bad")
    result = client.get_job_task_counts(job_id)
    counts, slots = result.task_counts, result.task_slot_counts
    assert (counts.active, counts.running, counts.completed, counts.succeeded, counts.failed) == (
        0,
        0,
        2,
        1,
        1,
    )
    assert (slots.completed, slots.succeeded, slots.failed) == (3, 1, 2)


def test_all_tasks_complete_terminates_the_job(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    client.create_tasks(job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(3)])
    client.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = _job_in_state(client, job_id, "completed")
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert all(task.state == "completed" for task in client.list_tasks(job_id))


def test_an_empty_job_with_terminatejob_completes_at_once(client: BatchClient, shared_pool: str) -> None:
    """The service treats 'no tasks' as 'all tasks complete': add tasks first, then set terminatejob."""
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool, all_tasks_complete_mode="terminatejob"))
    assert _job_in_state(client, job_id, "completed").execution_info.termination_reason == "AllTasksComplete"


def test_task_failure_can_terminate_the_job(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool, task_failure_mode="performexitoptionsjobaction"))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="fails", command_line=sh("exit 2")))
    job = _job_in_state(client, job_id, "completed")
    assert job.execution_info.termination_reason == "TaskFailed"


def test_job_max_wall_clock_time_terminates_it(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(
        _job(
            job_id, shared_pool, constraints=m.BatchJobConstraints(max_wall_clock_time=timedelta(seconds=0.5))
        )
    )
    client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="sleep 30"))
    job = _job_in_state(client, job_id, "completed")
    assert job.execution_info.termination_reason == "MaxWallClockTimeExpiry"
    assert client.get_task(job_id, "long").state == "completed"


def test_preparation_and_release_tasks(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(
        _job(
            job_id,
            shared_pool,
            job_preparation_task=m.BatchJobPreparationTask(command_line="echo preparing"),
            job_release_task=m.BatchJobReleaseTask(command_line="echo releasing"),
        )
    )
    client.create_tasks(job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(4)])
    for i in range(4):
        assert wait_for_task(client, job_id, f"t{i}").execution_info.result == "success"
    statuses = list(client.list_job_preparation_and_release_task_status(job_id))
    assert statuses and all(s.pool_id == shared_pool for s in statuses)
    for status in statuses:
        prep = status.job_preparation_task_execution_info
        assert (prep.state, prep.exit_code, prep.result) == ("completed", 0, "success")
        assert prep.task_root_directory.endswith(f"{job_id}/job-1/jobpreparation")
    _terminate(client, job_id)
    released = list(client.list_job_preparation_and_release_task_status(job_id))
    assert all(s.job_release_task_execution_info.state == "completed" for s in released)
    prep_dir = released[0].job_preparation_task_execution_info.task_root_directory
    output = b"".join(client.download_node_file(shared_pool, released[0].node_id, f"{prep_dir}/stdout.txt"))
    assert output == b"preparing\n"


def test_preparation_status_needs_a_preparation_task(client: BatchClient, job_on_shared_pool: str) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        list(client.list_job_preparation_and_release_task_status(job_on_shared_pool))
    assert error_of(excinfo) == (409, "JobPreparationTaskNotSpecified")


def test_auto_pool_lives_and_dies_with_the_job(client: BatchClient) -> None:
    job_id = unique("job")
    spec = m.BatchAutoPoolSpecification(
        auto_pool_id_prefix="auto",
        pool_lifetime_option="job",
        pool=m.BatchPoolSpecification(
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=pool_options("x").virtual_machine_configuration,
            target_dedicated_nodes=1,
        ),
    )
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(auto_pool_specification=spec))
    )
    pool_id = client.get_job(job_id).execution_info.pool_id
    assert pool_id.startswith("auto_")
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="echo auto"))
    assert wait_for_task(client, job_id, "t").node_info.pool_id == pool_id
    _terminate(client, job_id)
    wait_for(lambda: not any(pool.id == pool_id for pool in client.list_pools()))


def test_priority_and_fairness_order_the_queue(client: BatchClient) -> None:
    pool_id = unique("single")
    client.create_pool(pool_options(pool_id, task_slots_per_node=1))
    wait_for_idle_nodes(client, pool_id, 1)
    blocker = unique("blocker")
    client.create_job(_job(blocker, pool_id))
    client.create_task(blocker, m.BatchTaskCreateOptions(id="b", command_line="sleep 0.5"))
    wait_for(lambda: client.get_task(blocker, "b").state == "running")
    low, high_a, high_b = unique("low"), unique("high-a"), unique("high-b")
    client.create_job(_job(low, pool_id, priority=-10))
    client.create_job(_job(high_a, pool_id, priority=10))
    client.create_job(_job(high_b, pool_id, priority=10))
    for job_id in (low, high_a, high_b):
        client.create_tasks(
            job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(2)]
        )
    starts = []
    for job_id in (low, high_a, high_b):
        for i in range(2):
            task = wait_for_task(client, job_id, f"t{i}")
            starts.append((task.execution_info.start_time, job_id))
    order = [job_id for _, job_id in sorted(starts)]
    assert set(order[:4]) == {high_a, high_b}
    assert order[4:] == [low, low]
    # Equal priority takes turns: the two high jobs alternate.
    assert order[0] != order[1] and order[2] != order[3]


def test_max_parallel_tasks_limits_concurrency(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool, max_parallel_tasks=1))
    client.create_tasks(
        job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="sleep 0.1") for i in range(3)]
    )
    tasks = [wait_for_task(client, job_id, f"t{i}") for i in range(3)]
    spans = sorted((t.execution_info.start_time, t.execution_info.end_time) for t in tasks)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert second_start >= first_end


async def test_async_job_lifecycle(aio_client: AsyncBatchClient, shared_pool: str) -> None:
    job_id = unique("ajob")
    await aio_client.create_job(_job(job_id, shared_pool))
    await aio_client.create_tasks(
        job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(3)]
    )

    async def all_done() -> bool:
        return (await aio_client.get_job_task_counts(job_id)).task_counts.succeeded == 3

    await async_wait_for(all_done)
    poller = await aio_client.begin_terminate_job(
        job_id, BatchJobTerminateOptions(termination_reason="async done"), polling_interval=POLL
    )
    await poller.result()
    job = await aio_client.get_job(job_id)
    assert (job.state, job.execution_info.termination_reason) == ("completed", "async done")
    poller = await aio_client.begin_delete_job(job_id, polling_interval=POLL)
    await poller.result()
    with pytest.raises(ResourceNotFoundError):
        await aio_client.get_job(job_id)


def test_active_job_quota() -> None:
    with BatchEmulatorServer(active_job_quota=2) as server:
        client = BatchClient(
            server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key)
        )
        client.create_job(_job("one", "p"))
        client.create_job(_job("two", "p"))
        with pytest.raises(HttpResponseError) as excinfo:
            client.create_job(_job("three", "p"))
        assert error_of(excinfo) == (409, "ActiveJobAndScheduleQuotaReached")
        _terminate(client, "one")
        client.create_job(_job("three", "p"))


@pytest.mark.parametrize(("option", "expected"), [("terminate", "completed"), ("wait", "running")])
def test_disable_options_for_running_tasks(
    client: BatchClient, shared_pool: str, option: str, expected: str
) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, shared_pool))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="sleep 30"))
    wait_for(lambda: client.get_task(job_id, "long").state == "running")
    client.begin_disable_job(
        job_id, m.BatchJobDisableOptions(disable_tasks=option), polling_interval=POLL
    ).result()
    task = wait_for(lambda: t if (t := client.get_task(job_id, "long")).state == expected else None)
    if expected == "completed":
        assert task.execution_info.failure_info.code == "TaskEnded"
    client.begin_delete_job(job_id, polling_interval=POLL).result()


def test_a_disabled_job_can_move_to_another_pool(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id, "not-there"))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="true"))
    client.begin_disable_job(
        job_id, m.BatchJobDisableOptions(disable_tasks="requeue"), polling_interval=POLL
    ).result()
    client.update_job(job_id, m.BatchJobUpdateOptions(pool_info=m.BatchPoolInfo(pool_id=shared_pool)))
    client.begin_enable_job(job_id, polling_interval=POLL).result()
    assert client.get_job(job_id).execution_info.pool_id == shared_pool
    assert wait_for_task(client, job_id, "t").node_info.pool_id == shared_pool
