"""The one-task run killed mid-wait (SIGKILL: no ``on_kill``) and retried: the retry finds the record of
what the first try started in ``task_state_store`` and waits for the same job without adding a task.

The worker is a real process running the operator; the task state store there is a JSON file with the
``get``/``set`` of Airflow 3.3's ``TaskStateStoreAccessor``, so both tries see the same store, as two
tries of one task instance do in Airflow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.operators.run_job import RUN_STATE_KEY
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.reliability.test_crash_recovery import ROOT, _kill_when, _result, _tasks
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

#: Runs BatchRunJobOperator like a worker would, with a file-backed task state store.
WORKER = """
import json, pathlib, sys
from airflow_batch_provider.operators.run_job import BatchRunJobOperator
from tests.support.task_context import task_context

class FileTaskStateStore:
    def __init__(self, path):
        self.path = pathlib.Path(path)
    def _all(self):
        return json.loads(self.path.read_text()) if self.path.exists() else {}
    def get(self, key, default=None):
        return self._all().get(key, default)
    def set(self, key, value, *, retention=None):
        self.path.write_text(json.dumps({**self._all(), key: value}))

spec = json.loads(sys.argv[1])
context = task_context(spec["run_id"], "run", dag_id="resume")
context["task_state_store"] = FileTaskStateStore(spec["store"])
operator = BatchRunJobOperator(task_id="run", **spec["kwargs"])
print("RESULT " + json.dumps(operator.execute(context)), flush=True)
"""


@pytest.fixture
def pool_id(faulty_stack: LocalAzureStack) -> Iterator[str]:
    pool_id = f"resume-pool-{uuid.uuid4().hex[:8]}"
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        poll_interval=0.1,
    ).execute(task_context("resume"))
    yield pool_id
    BatchHook().delete_pool(pool_id)


def _worker(spec: dict[str, Any]) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(spec)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


#: The requests that start work (create job, add tasks) and the wait's polls, recorded by the emulator.
RECORDED = r"/jobs$|/addtaskcollection$|/tasks$|/taskcounts$"


def test_killed_mid_wait_the_retry_waits_for_the_same_job_without_adding(
    faulty_stack: LocalAzureStack, pool_id: str, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    job_id = f"resume-{uid}"
    store = tmp_path / "task_state_store.json"
    spec = {
        "run_id": f"manual__{uid}",
        "store": str(store),
        "kwargs": {
            "job_id": job_id,
            "pool_id": pool_id,
            "tasks": [{"id": f"part-{i}", "command_line": "/bin/sh -c 'sleep 4'"} for i in range(3)],
            "poll_interval": 0.1,
            "timeout": 120,
        },
    }
    faulty_stack.batch.set_faults(rate=1.0, kinds=["latency"], latency=0.0, path_pattern=RECORDED)
    first = _worker(spec)
    _kill_when(
        first,
        lambda: (
            sum(r.method == "GET" for r in faulty_stack.batch.fault_records) >= 2
            and any(state != "completed" for _, state in _tasks(faulty_stack, job_id))
        ),
    )
    recorded = json.loads(store.read_text())[RUN_STATE_KEY]
    assert recorded["phase"] == "waiting" and recorded["started"]["job_id"] == job_id
    assert any(state != "completed" for _, state in _tasks(faulty_stack, job_id))

    faulty_stack.batch.set_faults(rate=1.0, kinds=["latency"], latency=0.0, path_pattern=RECORDED)
    retry = _result(_worker(spec))
    starts = [(r.method, r.path) for r in faulty_stack.batch.fault_records if r.method != "GET"]
    polls = [r.path for r in faulty_stack.batch.fault_records if r.method == "GET"]
    faulty_stack.clear_faults()
    assert starts == []  # no create-job, no add-tasks request: it only waited
    assert polls and all(f"/jobs/{job_id}/" in path for path in polls)  # for the same job
    assert retry["resumed"] is True and retry["job_id"] == job_id
    assert retry["task_id_prefix"] == recorded["started"]["task_id_prefix"]
    assert retry["counts"]["succeeded"] == 3
    tasks = _tasks(faulty_stack, job_id)
    assert len(tasks) == 3 and all(state == "completed" for _, state in tasks)  # each added once
    BatchHook().delete_job(job_id)
