"""No process a task starts outlives it: task end, wall clock, terminate, job, pool and emulator end.

Each task leaves a background child and a ``setsid`` grandchild (which leaves the task's session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.credentials import AzureNamedKeyCredential

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import POLL, pool_options, unique, wait_for, wait_for_idle_nodes, wait_for_task
from tests.emulator.escapes import Escapes


@pytest.fixture
def escapes() -> Iterator[Escapes]:
    escapes = Escapes()
    yield escapes
    escapes.kill()


def _start(client: BatchClient, pool_id: str, escapes: Escapes, main_seconds: float, **task: object) -> str:
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(
        job_id, m.BatchTaskCreateOptions(id="t", command_line=escapes.command_line(main_seconds), **task)
    )
    escapes.wait_started()
    return job_id


def test_a_task_that_exits_takes_its_background_processes_with_it(
    client: BatchClient, shared_pool: str, escapes: Escapes
) -> None:
    job_id = _start(client, shared_pool, escapes, main_seconds=0.5)
    assert wait_for_task(client, job_id, "t").execution_info.result == "success"
    assert escapes.wait_gone() == []


def test_the_wall_clock_kill_ends_every_process(
    client: BatchClient, shared_pool: str, escapes: Escapes
) -> None:
    constraints = m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=2))
    job_id = _start(client, shared_pool, escapes, main_seconds=300, constraints=constraints)
    task = wait_for_task(client, job_id, "t")
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert escapes.wait_gone() == []


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(lambda client, job_id: client.terminate_task(job_id, "t"), id="terminate-task"),
        pytest.param(lambda client, job_id: client.delete_task(job_id, "t"), id="delete-task"),
        pytest.param(
            # azure-batch 15.1.0 fails client-side without an options object (see the REST notes).
            lambda client, job_id: client.begin_terminate_job(
                job_id, BatchJobTerminateOptions(termination_reason="stop"), polling_interval=POLL
            ).result(),
            id="terminate-job",
        ),
        pytest.param(
            lambda client, job_id: client.begin_delete_job(job_id, polling_interval=POLL).result(),
            id="delete-job",
        ),
    ],
)
def test_ending_the_task_or_its_job_ends_every_process(
    client: BatchClient, shared_pool: str, escapes: Escapes, end: Callable[[BatchClient, str], None]
) -> None:
    job_id = _start(client, shared_pool, escapes, main_seconds=300)
    end(client, job_id)
    assert escapes.wait_gone() == []


def test_deleting_the_pool_ends_every_process(client: BatchClient, escapes: Escapes) -> None:
    pool_id = unique("doomed")
    client.create_pool(pool_options(pool_id))
    wait_for_idle_nodes(client, pool_id, 1)
    _start(client, pool_id, escapes, main_seconds=300)
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()
    assert escapes.wait_gone() == []


def test_a_start_task_takes_its_background_processes_with_it(client: BatchClient, escapes: Escapes) -> None:
    pool_id = unique("starting")
    start_task = m.BatchStartTask(command_line=escapes.command_line(0.5), wait_for_success=True)
    client.create_pool(pool_options(pool_id, start_task=start_task))
    escapes.wait_started()
    wait_for_idle_nodes(client, pool_id, 1)
    assert escapes.wait_gone() == []
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_stopping_the_emulator_ends_every_process(escapes: Escapes) -> None:
    with BatchEmulatorServer(step_delay=0.005) as emulator:
        client = BatchClient(
            emulator.endpoint, AzureNamedKeyCredential(emulator.account_name, emulator.account_key)
        )
        pool_id = unique("pool")
        client.create_pool(pool_options(pool_id))
        wait_for_idle_nodes(client, pool_id, 1)
        job_id = _start(client, pool_id, escapes, main_seconds=300)
        wait_for(lambda: client.get_task(job_id, "t").state == "running")
    assert escapes.wait_gone() == []
