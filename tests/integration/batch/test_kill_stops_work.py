"""Kill means stop: an Airflow task that is killed, times out or is killed while deferred terminates the
Batch work it watches (by default), against the emulator, through Airflow's own task runner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.triggers.job import BatchJobTrigger
from tests.integration.batch.conftest import ready_pool
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

SLEEPER = [{"id": f"t{i}", "command_line": "/bin/sh -c 'sleep 120'"} for i in range(2)]


@pytest.fixture(scope="module")
def pool_id(local_azure_stack: Any) -> Iterator[str]:
    with ready_pool("kill", task_slots_per_node=4) as pool:
        yield pool


@pytest.fixture
def job_id(pool_id: str, hook: BatchHook, uid: str) -> Iterator[str]:
    job = BatchCreateJobOperator(task_id="job", job_id=f"kill-{uid}", pool_id=pool_id).execute(
        task_context(uid, "job")
    )["job_id"]
    yield job
    hook.delete_job(job)


def _states(hook: BatchHook, job_id: str) -> dict[str, str]:
    return {str(t["id"]): str(t["state"]) for t in hook.list_tasks(job_id, select=["id", "state"])}


def _wait_for(what: str, condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for {what}")
        time.sleep(0.2)


def _all_running(hook: BatchHook, job_id: str, count: int) -> bool:
    states = _states(hook, job_id)
    return len(states) == count and set(states.values()) == {"running"}


def _all_completed(hook: BatchHook, job_id: str) -> bool:
    states = _states(hook, job_id)
    return bool(states) and set(states.values()) == {"completed"}


@pytest.mark.parametrize("terminate_on_kill", [True, False])
def test_execution_timeout_terminates_the_watched_tasks_unless_opted_out(
    run_dag: Callable[..., tuple[Any, dict[str, Any]]],
    hook: BatchHook,
    job_id: str,
    uid: str,
    terminate_on_kill: bool,
) -> None:
    with DAG(f"kill_timeout_{uid}_{terminate_on_kill}", schedule=None) as dag:
        add = BatchAddTasksOperator(task_id="add", job_id=job_id, tasks=SLEEPER)
        wait = BatchJobSensor(
            task_id="wait",
            job_id=job_id,
            task_id_prefix="{{ ti.xcom_pull('add')['task_id_prefix'] }}",
            poke_interval=0.2,
            timeout=300,
            execution_timeout=timedelta(seconds=4),
            terminate_on_kill=terminate_on_kill,
        )
        add >> wait
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "failed"
    if terminate_on_kill:
        _wait_for("the Batch tasks to be terminated", lambda: _all_completed(hook, job_id), 20)
        results = {t["executionInfo"].get("result") for t in hook.list_tasks(job_id)}
        assert results == {"failure"}
        assert (hook.get_job(job_id) or {}).get("state") == "active"  # only the prefix's tasks stop
    else:
        time.sleep(1)
        assert set(_states(hook, job_id).values()) <= {"active", "preparing", "running"}


DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
    from airflow_batch_provider.sensors.job import BatchJobSensor

    with DAG("kill_sigterm", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        add = BatchAddTasksOperator(task_id="add", job_id="{job_id}", tasks={tasks})
        wait = BatchJobSensor(
            task_id="wait", job_id="{job_id}", poke_interval=0.2, timeout=600
        )
        add >> wait
    """
)


def test_sigterm_of_the_running_airflow_task_terminates_its_job(
    local_azure_stack: Any, hook: BatchHook, job_id: str, tmp_path: Path
) -> None:
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "kill_sigterm.py").write_text(DAG_FILE.format(job_id=job_id, tasks=repr(SLEEPER)))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "kill_sigterm"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            _wait_for("the Batch tasks to run", lambda: _all_running(hook, job_id, len(SLEEPER)), 120)
        except AssertionError as err:
            raise AssertionError((tmp_path / "run.log").read_text()[-4000:]) from err
        time.sleep(1)  # the sensor is poking now
        assert run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        run.send_signal(signal.SIGTERM)
        _wait_for("the job to be terminated", lambda: _all_completed(hook, job_id), 30)
        job = hook.get_job(job_id) or {}
        assert job.get("state") in ("terminating", "completed")
        assert (job.get("executionInfo") or {}).get("terminateReason") == "AirflowTaskKilled"
    finally:
        if run.poll() is None:
            run.kill()
        run.wait(30)
        log.close()


def test_killing_the_deferred_task_terminates_the_job_through_the_trigger(
    hook: BatchHook, job_id: str
) -> None:
    BatchAddTasksOperator(task_id="add", job_id=job_id, tasks=SLEEPER).execute(task_context("r", "add"))
    _wait_for("the Batch tasks to run", lambda: _all_running(hook, job_id, len(SLEEPER)))
    sensor = BatchJobSensor(task_id="wait", job_id=job_id, deferrable=True, poke_interval=0.2, timeout=300)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context("r", "wait"))
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "airflow_batch_provider.triggers.job.BatchJobTrigger"
    # What the triggerer does when the user marks the deferred task failed: on_kill() on the trigger
    # rebuilt from its serialized form.
    asyncio.run(BatchJobTrigger(**json.loads(json.dumps(kwargs))).on_kill())
    _wait_for("the job to be terminated", lambda: _all_completed(hook, job_id))
    assert (hook.get_job(job_id) or {}).get("state") in ("terminating", "completed")


def test_a_trigger_without_terminate_on_kill_leaves_the_job_running(hook: BatchHook, job_id: str) -> None:
    BatchAddTasksOperator(task_id="add", job_id=job_id, tasks=SLEEPER).execute(task_context("r", "add"))
    _wait_for("the Batch tasks to run", lambda: _all_running(hook, job_id, len(SLEEPER)))
    asyncio.run(BatchJobTrigger(job_id=job_id, poll_interval=0.2).on_kill())
    time.sleep(1)
    assert (hook.get_job(job_id) or {}).get("state") == "active"
    assert set(_states(hook, job_id).values()) == {"running"}


def test_execution_timeout_of_the_one_task_run_terminates_its_job(
    run_dag: Callable[..., tuple[Any, dict[str, Any]]], hook: BatchHook, pool_id: str, uid: str
) -> None:
    from airflow_batch_provider.operators.run_job import BatchRunJobOperator

    job_id = f"kill-run-{uid}"
    with DAG(f"kill_run_{uid}", schedule=None) as dag:
        BatchRunJobOperator(
            task_id="run",
            job_id=job_id,
            pool_id=pool_id,
            tasks=SLEEPER,
            poll_interval=0.2,
            execution_timeout=timedelta(seconds=5),
        )
    dag_run, _ = run_dag(dag)
    assert dag_run.state == "failed"
    try:
        _wait_for("the job to be terminated", lambda: _all_completed(hook, job_id), 20)
        assert (hook.get_job(job_id) or {}).get("state") in ("terminating", "completed")
    finally:
        hook.delete_job(job_id)


def test_timeout_while_adding_tasks_terminates_the_tasks_it_added(
    run_dag: Callable[..., tuple[Any, dict[str, Any]]],
    local_azure_stack: Any,
    hook: BatchHook,
    job_id: str,
    uid: str,
) -> None:
    many = [{"id": f"t{i:03d}", "command_line": "/bin/sh -c 'sleep 120'"} for i in range(300)]
    # Each add request (100 tasks) takes 1.5 s, so the 2 s execution timeout lands mid-collection.
    local_azure_stack.batch.set_faults(
        rate=1.0, kinds=["latency"], latency=1.5, path_pattern="/addtaskcollection$"
    )
    try:
        with DAG(f"kill_adding_{uid}", schedule=None) as dag:
            BatchAddTasksOperator(
                task_id="add",
                job_id=job_id,
                tasks=many,
                max_concurrency=1,
                execution_timeout=timedelta(seconds=2),
            )
        dag_run, _ = run_dag(dag)
    finally:
        local_azure_stack.batch.clear_faults()
    assert dag_run.state == "failed"
    time.sleep(2)  # a request in flight when the task was killed may still land
    states = _states(hook, job_id)
    assert 0 < len(states) < len(many)  # killed part-way through the collection
    _wait_for("the added tasks to be terminated", lambda: _all_completed(hook, job_id), 20)
    results = {t["executionInfo"].get("result") for t in hook.list_tasks(job_id)}
    assert results == {"failure"}  # terminated, not run to the end
