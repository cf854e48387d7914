"""A job ended by a task's exit options: every later add-tasks and wait names that task as the cause."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_batch_provider.exceptions import BatchProviderError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

#: As in the parameter sweep example: any non-zero exit code ends the job.
END_THE_JOB = {"default": {"job_action": "terminate", "dependency_action": "block"}}


def test_tasks_added_after_a_failed_task_ended_the_job_name_that_task(
    local_azure_stack: Any, hook: BatchHook
) -> None:
    uid = uuid.uuid4().hex[:6]
    pool_id, job_id = f"cause-pool-{uid}", f"cause-job-{uid}"
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        poll_interval=0.2,
    ).execute(task_context(uid, "pool"))
    BatchCreateJobOperator(
        task_id="job", job_id=job_id, pool_id=pool_id, on_task_failure="performexitoptionsjobaction"
    ).execute(task_context(uid, "job"))

    def add(local_id: str, command: str) -> dict[str, Any]:
        return BatchAddTasksOperator(
            task_id=f"add_{local_id}",
            job_id=job_id,
            prefix_task_ids=False,
            tasks=[{"id": local_id, "command_line": command}],
            exit_conditions=END_THE_JOB,
        ).execute(task_context(uid, f"add_{local_id}"))

    try:
        add("point-00", "/bin/sh -c 'echo x0 must lie between 0 and 1 >&2; exit 2'")
        deadline = time.monotonic() + 60
        while str((hook.get_job(job_id) or {}).get("state")).lower() != "completed":
            assert time.monotonic() < deadline, "the failed task's exit options did not end the job"
            time.sleep(0.2)

        with pytest.raises(BatchProviderError) as refused:
            add("point-01", "/bin/sh -c 'echo fine'")
        message = str(refused.value)
        assert "point-01" in message  # what could not be added
        assert "point-00: exit code 2" in message  # the cause: the task that ended the job
        assert "x0 must lie between 0 and 1" in message  # its stderr
        assert "TaskFailed" in message
        assert "new job" not in message  # the job already is per run: that advice would be wrong

        # The race: the job was active when the operator looked, and ended before its request.
        real_get_job = BatchHook.get_job
        looks = iter([{**(real_get_job(hook, job_id) or {}), "state": "active"}])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                BatchHook, "get_job", lambda self, *a, **k: next(looks, None) or real_get_job(self, *a, **k)
            )
            with pytest.raises(BatchProviderError) as raced:
                add("point-02", "/bin/sh -c 'echo fine'")
        assert "ended while 1 task(s) were added" in str(raced.value)
        assert "point-00: exit code 2" in str(raced.value)
        assert "x0 must lie between 0 and 1" in str(raced.value)

        sensor = BatchJobSensor(task_id="wait", job_id=job_id, deferrable=True, poke_interval=0.2)
        with pytest.raises(Exception) as waited:
            try:
                sensor.execute(task_context(uid, "wait"))
            except TaskDeferred:
                pytest.fail("the wait deferred on a job that had already ended")
        assert "point-00: exit code 2" in str(waited.value)
        assert "x0 must lie between 0 and 1" in str(waited.value)
        assert "exit options" in str(waited.value)
    finally:
        hook.delete_job(job_id)
        hook.delete_pool(pool_id)
