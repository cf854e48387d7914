"""Job schedules through the SDK: defaults, validation, recurrence, one job at a time, states, deletion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.aio import BatchClient as AsyncBatchClient
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import (
    POLL,
    UBUNTU,
    error_of,
    pool_options,
    sh,
    unique,
    wait_for,
    wait_for_idle_nodes,
)

#: In the fast emulator a PT1M recurrence comes round every 0.6 s.
SCALE = 0.01
INTERVAL = SCALE * 60


def _spec(pool_id: str = "no-such-pool", **kwargs: object) -> m.BatchJobSpecification:
    return m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id=pool_id), **kwargs)


def _schedule(
    schedule_id: str, job_specification: m.BatchJobSpecification | None = None, **schedule: object
) -> m.BatchJobScheduleCreateOptions:
    return m.BatchJobScheduleCreateOptions(
        id=schedule_id,
        schedule=m.BatchJobScheduleConfiguration(**schedule),
        job_specification=_spec() if job_specification is None else job_specification,
    )


def _job_ids(client: BatchClient, schedule_id: str) -> list[str]:
    return sorted(job.id for job in client.list_jobs_from_schedule(schedule_id))


def _property_name(excinfo: pytest.ExceptionInfo[HttpResponseError]) -> str:
    assert excinfo.value.error is not None
    return str({detail.code: detail.message for detail in excinfo.value.error.details}["PropertyName"])


def _in_state(client: BatchClient, schedule_id: str, state: str) -> m.BatchJobSchedule:
    return wait_for(
        lambda: schedule if (schedule := client.get_job_schedule(schedule_id)).state == state else None
    )


@pytest.fixture(scope="module")
def fast_emulator() -> Iterator[BatchEmulatorServer]:
    """An emulator whose schedule intervals run a hundred times faster."""
    with BatchEmulatorServer(step_delay=0.005, schedule_interval_scale=SCALE) as server:
        yield server


@pytest.fixture(scope="module")
def fast_client(fast_emulator: BatchEmulatorServer) -> BatchClient:
    credential = AzureNamedKeyCredential(fast_emulator.account_name, fast_emulator.account_key)
    return BatchClient(fast_emulator.endpoint, credential)


def test_create_runs_the_first_job_at_once_with_the_service_defaults(client: BatchClient) -> None:
    schedule_id = unique("sched")
    client.create_job_schedule(_schedule(schedule_id, start_window=timedelta(hours=1)))

    schedule = client.get_job_schedule(schedule_id)
    assert schedule.state == "active"
    assert schedule.previous_state is None
    assert schedule.schedule.start_window == timedelta(hours=1)
    assert schedule.schedule.recurrence_interval is None
    spec = schedule.job_specification
    assert spec.priority == 0
    assert spec.max_parallel_tasks == -1
    assert spec.all_tasks_complete_mode == "noaction"
    assert spec.task_failure_mode == "noaction"
    assert spec.uses_task_dependencies is False
    assert spec.constraints.max_task_retry_count == 0
    assert spec.constraints.max_wall_clock_time > timedelta(days=10_000)
    assert spec.pool_info.pool_id == "no-such-pool"
    # The first job exists as soon as the create call returns, named as the service names it.
    first_job = f"{schedule_id}:job-1"
    assert schedule.execution_info.recent_job.id == first_job
    assert schedule.execution_info.recent_job.url.endswith("/jobs/" + first_job.replace(":", "%3A"))
    # Without a recurrence there is no next run.
    assert schedule.execution_info.next_run_time is None
    assert _job_ids(client, schedule_id) == [first_job]
    job = client.get_job(first_job)
    assert job.state == "active"
    assert job.pool_info.pool_id == "no-such-pool"
    assert client.job_schedule_exists(schedule_id) is True
    assert schedule_id in {s.id for s in client.list_job_schedules()}


def test_validation_as_the_service_does(client: BatchClient) -> None:
    schedule_id = unique("sched")
    for body, expected in [
        (
            m.BatchJobScheduleCreateOptions(id=unique("s"), schedule=None, job_specification=_spec()),
            "schedule",
        ),  # type: ignore[arg-type]
        (
            m.BatchJobScheduleCreateOptions(
                id=unique("s"),
                schedule=m.BatchJobScheduleConfiguration(),
                job_specification=None,  # type: ignore[arg-type]
            ),
            "jobSpecification",
        ),
        (
            _schedule(unique("s"), m.BatchJobSpecification(pool_info=None)),  # type: ignore[arg-type]
            "jobSpecification/poolInfo",
        ),
    ]:
        with pytest.raises(HttpResponseError) as excinfo:
            client.create_job_schedule(body)
        assert error_of(excinfo) == (400, "MissingRequiredProperty")
        assert _property_name(excinfo) == expected
    for name, value in [
        ("recurrence_interval", timedelta(seconds=30)),
        ("start_window", timedelta(seconds=59)),
    ]:
        with pytest.raises(HttpResponseError) as excinfo:
            client.create_job_schedule(_schedule(unique("s"), **{name: value}))
        assert error_of(excinfo) == (400, "InvalidPropertyValue")
        assert _property_name(excinfo) == "schedule/" + name.replace("_i", "I").replace("_w", "W")
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job_schedule(_schedule(unique("s"), _spec(priority=5000)))
    assert error_of(excinfo) == (400, "InvalidPropertyValue")
    assert _property_name(excinfo) == "jobSpecification/priority"

    client.create_job_schedule(_schedule(schedule_id))
    with pytest.raises(ResourceExistsError) as excinfo:
        client.create_job_schedule(_schedule(schedule_id.upper()))
    assert error_of(excinfo) == (409, "JobScheduleExists")
    with pytest.raises(ResourceExistsError) as excinfo:
        client.create_job(m.BatchJobCreateOptions(id=schedule_id, pool_info=m.BatchPoolInfo(pool_id="p")))
    assert error_of(excinfo) == (409, "JobScheduleWithSameIdExists")
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="p")))
    with pytest.raises(ResourceExistsError) as excinfo:
        client.create_job_schedule(_schedule(job_id))
    assert error_of(excinfo) == (409, "JobWithSameIdExists")
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_job_schedule("no-such-schedule")
    assert error_of(excinfo) == (404, "JobScheduleNotFound")
    # azure-batch 15.1.0 raises on the 404 of an exists check (see the REST notes).
    with pytest.raises(ResourceNotFoundError):
        client.job_schedule_exists("no-such-schedule")
    with pytest.raises(ResourceNotFoundError) as excinfo:
        list(client.list_jobs_from_schedule("no-such-schedule"))
    assert error_of(excinfo) == (404, "JobScheduleNotFound")


def test_recurrence_creates_a_job_each_interval(fast_client: BatchClient) -> None:
    schedule_id = unique("sched")
    spec = _spec(all_tasks_complete_mode="terminatejob")  # no tasks: each job completes at once
    fast_client.create_job_schedule(_schedule(schedule_id, spec, recurrence_interval=timedelta(minutes=1)))

    assert _job_ids(fast_client, schedule_id) == [f"{schedule_id}:job-1"]
    started = time.monotonic()
    wait_for(lambda: len(_job_ids(fast_client, schedule_id)) >= 3, timeout=10 * INTERVAL + 5)
    # Runs come one interval apart, not all at once.
    assert time.monotonic() - started >= 2 * INTERVAL * 0.9
    ids = _job_ids(fast_client, schedule_id)
    assert ids[:3] == [f"{schedule_id}:job-{n}" for n in (1, 2, 3)]
    schedule = fast_client.get_job_schedule(schedule_id)
    assert schedule.state == "active"
    assert schedule.execution_info.recent_job.id.startswith(f"{schedule_id}:job-")
    next_run = schedule.execution_info.next_run_time
    assert next_run is not None
    assert datetime.now(timezone.utc) - timedelta(seconds=1) < next_run
    assert next_run < datetime.now(timezone.utc) + timedelta(seconds=INTERVAL + 1)
    assert fast_client.get_job(ids[0]).state == "completed"


def test_only_one_active_job_at_a_time(fast_client: BatchClient) -> None:
    schedule_id = unique("sched")
    fast_client.create_job_schedule(_schedule(schedule_id, recurrence_interval=timedelta(minutes=1)))
    first = f"{schedule_id}:job-1"

    time.sleep(3 * INTERVAL)
    assert _job_ids(fast_client, schedule_id) == [first], "a second job started while the first was active"
    fast_client.begin_terminate_job(
        first, BatchJobTerminateOptions(termination_reason="done"), polling_interval=POLL
    ).result()
    wait_for(lambda: _job_ids(fast_client, schedule_id) == [first, f"{schedule_id}:job-2"], timeout=5)


def test_jobs_of_a_schedule_run_their_tasks(fast_client: BatchClient) -> None:
    pool_id = unique("pool")
    fast_client.create_pool(pool_options(pool_id))
    wait_for_idle_nodes(fast_client, pool_id, 1)
    schedule_id = unique("sched")
    manager = m.BatchJobManagerTask(id="manager", command_line=sh("echo managed"))
    fast_client.create_job_schedule(
        _schedule(
            schedule_id, _spec(pool_id, job_manager_task=manager), recurrence_interval=timedelta(minutes=1)
        )
    )

    # The job manager completes, which completes its job (killJobOnCompletion), so the next run starts.
    wait_for(lambda: len(_job_ids(fast_client, schedule_id)) >= 2, timeout=10 * INTERVAL + 10)
    first = f"{schedule_id}:job-1"
    task = fast_client.get_task(first, "manager")
    assert task.state == "completed"
    assert task.execution_info.exit_code == 0
    assert fast_client.get_job(first).execution_info.termination_reason == "JMComplete"
    stats = fast_client.get_job_schedule(schedule_id, expand=["stats"]).job_schedule_statistics
    assert stats is not None
    assert stats.succeeded_tasks_count >= 1
    assert stats.failed_tasks_count == 0


def test_do_not_run_until_and_after(client: BatchClient) -> None:
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    waiting = unique("sched")
    client.create_job_schedule(_schedule(waiting, do_not_run_until=later))
    schedule = client.get_job_schedule(waiting)
    assert schedule.state == "active"
    assert abs(schedule.execution_info.next_run_time - later) < timedelta(milliseconds=1)
    assert _job_ids(client, waiting) == []

    # The deadline passes before the first run: the schedule completes without ever running.
    ending = unique("sched")
    client.create_job_schedule(
        _schedule(
            ending, do_not_run_until=later, do_not_run_after=datetime.now(timezone.utc) + timedelta(seconds=1)
        )
    )
    schedule = _in_state(client, ending, "completed")
    assert schedule.execution_info.end_time is not None
    assert schedule.execution_info.next_run_time is None
    assert _job_ids(client, ending) == []


def test_a_schedule_without_recurrence_completes_when_its_job_does(client: BatchClient) -> None:
    schedule_id = unique("sched")
    client.create_job_schedule(_schedule(schedule_id))
    client.begin_terminate_job(
        f"{schedule_id}:job-1", BatchJobTerminateOptions(termination_reason="done"), polling_interval=POLL
    ).result()
    schedule = _in_state(client, schedule_id, "completed")
    assert schedule.previous_state == "terminating"
    assert schedule.execution_info.end_time is not None


def test_state_machine_updates_and_conditions(client: BatchClient) -> None:
    schedule_id = unique("sched")
    client.create_job_schedule(_schedule(schedule_id, recurrence_interval=timedelta(days=1)))
    first = f"{schedule_id}:job-1"

    client.disable_job_schedule(schedule_id)
    client.disable_job_schedule(schedule_id)
    schedule = client.get_job_schedule(schedule_id)
    assert (schedule.state, schedule.previous_state) == ("disabled", "active")
    # A disabled schedule leaves its running job alone.
    assert client.get_job(first).state == "active"
    client.enable_job_schedule(schedule_id)
    assert client.get_job_schedule(schedule_id).state == "active"

    etag = client.get_job_schedule(schedule_id).etag
    client.update_job_schedule(
        schedule_id,
        m.BatchJobScheduleUpdateOptions(
            schedule=m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(hours=5)),
            metadata=[m.BatchMetadataItem(name="team", value="data")],
        ),
    )
    schedule = client.get_job_schedule(schedule_id)
    assert schedule.etag != etag
    assert schedule.schedule.recurrence_interval == timedelta(hours=5)
    assert schedule.job_specification.pool_info.pool_id == "no-such-pool"  # left as it was
    assert [(item.name, item.value) for item in schedule.metadata] == [("team", "data")]
    with pytest.raises(HttpResponseError) as excinfo:
        client.update_job_schedule(
            schedule_id,
            m.BatchJobScheduleUpdateOptions(metadata=[]),
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )
    assert error_of(excinfo) == (412, "ConditionNotMet")

    # Replace resets what it does not name: no schedule element and no metadata any more.
    client.replace_job_schedule(schedule_id, m.BatchJobSchedule(job_specification=_spec("other-pool")))
    schedule = client.get_job_schedule(schedule_id)
    assert schedule.schedule is None or schedule.schedule.recurrence_interval is None
    assert schedule.metadata is None
    assert schedule.job_specification.pool_info.pool_id == "other-pool"
    # Jobs already created keep the specification they were created with.
    assert client.get_job(first).pool_info.pool_id == "no-such-pool"

    # Terminating the schedule terminates its active job too.
    client.begin_terminate_job_schedule(schedule_id, polling_interval=POLL).result()
    schedule = client.get_job_schedule(schedule_id)
    assert schedule.state == "completed"
    assert schedule.execution_info.end_time is not None
    assert client.get_job(first).state == "completed"
    for call, code in [
        (lambda: client.enable_job_schedule(schedule_id), "JobScheduleCompleted"),
        (lambda: client.disable_job_schedule(schedule_id), "JobScheduleCompleted"),
        (
            lambda: client.update_job_schedule(schedule_id, m.BatchJobScheduleUpdateOptions(metadata=[])),
            "JobScheduleCompleted",
        ),
    ]:
        with pytest.raises(HttpResponseError) as excinfo:
            call()
        assert error_of(excinfo) == (409, code)


def test_delete_deletes_the_schedule_and_its_jobs(client: BatchClient) -> None:
    schedule_id = unique("sched")
    client.create_job_schedule(_schedule(schedule_id))
    first = f"{schedule_id}:job-1"
    assert client.get_job(first).state == "active"

    client.begin_delete_job_schedule(schedule_id, polling_interval=POLL).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job_schedule(schedule_id)
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_job(first)
    assert error_of(excinfo) == (404, "JobNotFound")


def test_list_queries(client: BatchClient) -> None:
    ids = [unique("listed") for _ in range(3)]
    for schedule_id in ids:
        client.create_job_schedule(_schedule(schedule_id))
    client.disable_job_schedule(ids[0])

    disabled = list(client.list_job_schedules(filter="state eq 'disabled'", select=["id", "state"]))
    assert ids[0] in {s.id for s in disabled}
    assert not {ids[1], ids[2]} & {s.id for s in disabled}
    selected = next(s for s in disabled if s.id == ids[0])
    assert selected.job_specification is None  # $select left it out
    paged = list(client.list_job_schedules(max_results=1))
    assert set(ids) <= {s.id for s in paged}
    jobs = list(client.list_jobs_from_schedule(ids[1], filter="state eq 'active'", select=["id"]))
    assert [job.id for job in jobs] == [f"{ids[1]}:job-1"]


async def test_async_client_terminates_and_deletes(aio_client: AsyncBatchClient) -> None:
    schedule_id = unique("sched")
    await aio_client.create_job_schedule(_schedule(schedule_id, recurrence_interval=timedelta(hours=1)))
    assert (await aio_client.get_job_schedule(schedule_id)).state == "active"
    poller = await aio_client.begin_terminate_job_schedule(schedule_id, polling_interval=POLL)
    await poller.result()
    assert (await aio_client.get_job_schedule(schedule_id)).state == "completed"
    poller = await aio_client.begin_delete_job_schedule(schedule_id, polling_interval=POLL)
    await poller.result()
    with pytest.raises(ResourceNotFoundError):
        await aio_client.get_job_schedule(schedule_id)


def test_jobs_share_the_schedules_auto_pool(fast_client: BatchClient) -> None:
    """``poolLifetimeOption: jobschedule``: one auto pool for every job, deleted with the schedule."""
    schedule_id = unique("sched")
    auto_pool = m.BatchAutoPoolSpecification(
        pool_lifetime_option="jobschedule",
        auto_pool_id_prefix="nightly",
        pool=m.BatchPoolSpecification(
            vm_size="standard_d2s_v3", virtual_machine_configuration=UBUNTU, target_dedicated_nodes=1
        ),
    )
    spec = m.BatchJobSpecification(
        pool_info=m.BatchPoolInfo(auto_pool_specification=auto_pool), all_tasks_complete_mode="terminatejob"
    )
    fast_client.create_job_schedule(_schedule(schedule_id, spec, recurrence_interval=timedelta(minutes=1)))

    wait_for(lambda: len(_job_ids(fast_client, schedule_id)) >= 2, timeout=10 * INTERVAL + 5)
    pools = {
        fast_client.get_job(job_id).execution_info.pool_id for job_id in _job_ids(fast_client, schedule_id)
    }
    assert len(pools) == 1
    pool_id = pools.pop()
    assert pool_id.startswith("nightly_")
    assert fast_client.get_pool(pool_id).state == "active"

    fast_client.begin_terminate_job_schedule(schedule_id, polling_interval=POLL).result()

    def pool_is_going() -> bool:
        try:
            return fast_client.get_pool(pool_id).state == "deleting"
        except ResourceNotFoundError:
            return True

    wait_for(pool_is_going)


def test_a_job_cannot_use_the_schedule_lifetime(client: BatchClient) -> None:
    auto_pool = m.BatchAutoPoolSpecification(
        pool_lifetime_option="jobschedule",
        pool=m.BatchPoolSpecification(vm_size="standard_d2s_v3", virtual_machine_configuration=UBUNTU),
    )
    job_id = unique("job")
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job(
            m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(auto_pool_specification=auto_pool))
        )
    assert error_of(excinfo) == (400, "InvalidPropertyValue")
    assert _property_name(excinfo) == "poolInfo/autoPoolSpecification/poolLifetimeOption"
    with pytest.raises(ResourceNotFoundError):
        client.get_job(job_id)


def test_schedules_count_towards_the_active_job_and_schedule_quota() -> None:
    with BatchEmulatorServer(step_delay=0.005, active_job_quota=2) as server:
        client = BatchClient(
            server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key)
        )
        client.create_job_schedule(_schedule("first"))  # the schedule and its active job: 2
        with pytest.raises(ResourceExistsError) as excinfo:
            client.create_job_schedule(_schedule("second"))
        assert error_of(excinfo) == (409, "ActiveJobAndScheduleQuotaReached")
        with pytest.raises(ResourceExistsError) as excinfo:
            client.create_job(m.BatchJobCreateOptions(id="plain", pool_info=m.BatchPoolInfo(pool_id="p")))
        assert error_of(excinfo) == (409, "ActiveJobAndScheduleQuotaReached")
