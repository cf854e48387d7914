"""Stopping the remote work an Airflow task started, when that task is killed, times out or is marked
failed: the whole job, or only the unfinished tasks under the task's id prefix."""

from __future__ import annotations

from airflow_batch_provider.batch.monitor.io import BatchIO
from airflow_batch_provider.batch.monitor.job import prefix_filter

#: The termination reason the job shows in the portal and in ``executionInfo.terminateReason``.
KILL_REASON = "AirflowTaskKilled"


async def stop_work(io: BatchIO, job_id: str, task_id_prefix: str | None, reason: str = KILL_REASON) -> str:
    """Terminate the unfinished tasks under ``task_id_prefix`` (other runs sharing the job keep
    running), or the whole job without a prefix; returns what was done, for the log."""
    if task_id_prefix:
        pending = await io.list_tasks(
            job_id, filter=f"{prefix_filter(task_id_prefix)} and state ne 'completed'", select=["id"]
        )
        stopped = 0
        for task in pending:
            stopped += bool(await io.terminate_task(job_id, str(task["id"])))
        return f"terminated {stopped} unfinished task(s) under {task_id_prefix!r} in job {job_id!r}"
    outcome = await io.terminate_job(job_id, reason)
    return f"job {job_id!r}: {outcome.replace('_', ' ')}"
