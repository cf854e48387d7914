"""A worker killed mid-task (SIGKILL: no ``on_kill``, no cleanup) and the task run again.

Two kill points, each detected from the emulator's side rather than by timing: while the tasks are
being added (some of the collection exists, not all), and while the job is being monitored (the
sensor has polled, tasks are still running). The second run must re-attach to the same job and
tasks: nothing added twice, nothing lost, every task completes once.

The operators derive every id from the DAG run (pool, job, ``<prefix>-<local id>`` for tasks), so a
re-run finds its work by id; there is no window between "submitted" and "id recorded" to lose.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: Runs one operator's ``execute`` like a worker would, printing its XCom as the last line.
WORKER = """
import json, sys
from tests.support.task_context import task_context
spec = json.loads(sys.argv[1])
if spec["operator"] == "add":
    from airflow_batch_provider.operators.tasks import BatchAddTasksOperator as Operator
else:
    from airflow_batch_provider.sensors.job import BatchJobSensor as Operator
operator = Operator(task_id=spec["task_id"], **spec["kwargs"])
context = task_context(spec["run_id"], spec["task_id"], dag_id="crash")
print("STARTED", flush=True)
print("RESULT " + json.dumps(operator.execute(context)), flush=True)
"""


@pytest.fixture
def hook(faulty_stack: LocalAzureStack) -> Iterator[BatchHook]:
    batch = BatchHook()
    yield batch
    faulty_stack.clear_faults()
    batch.close()


@pytest.fixture
def job_id(faulty_stack: LocalAzureStack, hook: BatchHook) -> Iterator[str]:
    uid = uuid.uuid4().hex[:8]
    context = task_context(f"manual__{uid}")
    pool_id, job_id = f"crash-pool-{uid}", f"crash-job-{uid}"
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=2,
        task_slots_per_node=4,
        poll_interval=0.1,
    ).execute(context)
    BatchCreateJobOperator(task_id="job", job_id=job_id, pool_id=pool_id).execute(context)
    yield job_id
    hook.delete_job(job_id)
    hook.delete_pool(pool_id)


def _worker(spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(spec)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _result(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-4000:]
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def _kill_when(process: subprocess.Popen[str], condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the worker finished before the kill point was reached"
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def _tasks(stack: LocalAzureStack, job_id: str) -> list[tuple[str, str]]:
    return stack.batch.call(
        lambda account: sorted((task.id, task.state) for task in account.tasks.all(job_id))
    )


def _add_spec(job_id: str, count: int) -> dict[str, Any]:
    tasks = [{"id": f"part-{index:03d}", "command_line": "/bin/true"} for index in range(count)]
    return {
        "operator": "add",
        "task_id": "add_tasks",
        "run_id": f"crash-{job_id}",
        "kwargs": {"job_id": job_id, "tasks": tasks, "max_concurrency": 1},
    }


def _wait_spec(job_id: str) -> dict[str, Any]:
    return {
        "operator": "wait",
        "task_id": "wait",
        "run_id": f"crash-{job_id}",
        "kwargs": {"job_id": job_id, "poke_interval": 0.1, "timeout": 120},
    }


def test_killed_while_adding_tasks_resumes_without_duplicates(
    faulty_stack: LocalAzureStack, hook: BatchHook, job_id: str
) -> None:
    count = 350
    # Slow each add request down so the kill lands between two chunks of the collection.
    faulty_stack.batch.set_faults(
        rate=1.0, kinds=["latency"], latency=0.4, path_pattern="/addtaskcollection$"
    )
    first = _worker(_add_spec(job_id, count))
    _kill_when(first, lambda: 0 < len(_tasks(faulty_stack, job_id)) < count)
    time.sleep(0.5)  # a request the killed worker had in flight may still land: that is the hard case
    existing_after_kill = len(_tasks(faulty_stack, job_id))
    assert 0 < existing_after_kill < count

    faulty_stack.clear_faults()
    second = _result(_worker(_add_spec(job_id, count)))
    assert second["task_count"] == count
    assert second["already_existed"] == existing_after_kill
    assert second["added"] == count - existing_after_kill

    tasks = _tasks(faulty_stack, job_id)
    assert len(tasks) == count  # nothing lost, nothing twice
    prefix = second["task_id_prefix"]
    assert {task_id for task_id, _ in tasks} == {f"{prefix}part-{index:03d}" for index in range(count)}
    waited = _result(_worker(_wait_spec(job_id)))
    assert waited["counts"]["succeeded"] == count and waited["counts"]["completed"] == count


def test_killed_while_monitoring_reattaches_to_the_running_tasks(
    faulty_stack: LocalAzureStack, hook: BatchHook, job_id: str
) -> None:
    spec = _add_spec(job_id, 12)
    for task in spec["kwargs"]["tasks"]:
        task["command_line"] = "/bin/sh -c 'sleep 2'"
    added = _result(_worker(spec))
    assert added["added"] == 12

    # Record every task-counts poll of the sensor, so the kill lands mid-wait.
    faulty_stack.batch.set_faults(rate=1.0, kinds=["latency"], latency=0.0, path_pattern="/taskcounts$")
    first = _worker(_wait_spec(job_id))
    _kill_when(
        first,
        lambda: (
            len(faulty_stack.batch.fault_records) >= 2
            and any(state != "completed" for _, state in _tasks(faulty_stack, job_id))
        ),
    )
    assert any(state != "completed" for _, state in _tasks(faulty_stack, job_id))
    faulty_stack.clear_faults()

    waited = _result(_worker(_wait_spec(job_id)))
    assert waited["counts"]["completed"] == 12 and waited["counts"]["succeeded"] == 12
    tasks = _tasks(faulty_stack, job_id)
    assert len(tasks) == 12 and all(state == "completed" for _, state in tasks)
    # Each task ran once: the killed sensor did not stop, restart or re-add anything.
    retries = faulty_stack.batch.call(
        lambda account: [task.to_dict()["executionInfo"]["retryCount"] for task in account.tasks.all(job_id)]
    )
    assert retries == [0] * 12


def test_retry_after_the_job_ended_finds_its_tasks_already_added(
    faulty_stack: LocalAzureStack, hook: BatchHook, job_id: str
) -> None:
    """The worker died after the last add but before reporting success, and the job ended meanwhile."""
    pool_id = (hook.get_job(job_id) or {})["poolInfo"]["poolId"]
    ending_job = f"{job_id}-ends"
    context = task_context(f"manual__{ending_job}")
    BatchCreateJobOperator(task_id="job", job_id=ending_job, pool_id=pool_id).execute(context)
    spec = _add_spec(ending_job, 5)
    assert _result(_worker(spec))["added"] == 5
    assert hook.terminate_job(ending_job, wait=True, poll_interval=0.1) == "terminated"
    assert (hook.get_job(ending_job) or {}).get("state") == "completed"

    again = _result(_worker(spec))
    assert again == {**again, "task_count": 5, "added": 0, "already_existed": 5}
    assert len(_tasks(faulty_stack, ending_job)) == 5

    other = _add_spec(ending_job, 6)  # one task this job never had
    process = _worker(other)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "is 'completed' and accepts no new tasks, and 1 of the 6 task(s)" in output
    hook.delete_job(ending_job)
