"""Trigger that waits, in the triggerer, until every task of a job (or under an id prefix) is done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batch_provider.triggers._off_loop import DEFAULT_CONN_ID, prepare_batch_io

if TYPE_CHECKING:
    from airflow_batch_provider.hooks._sdk_compat import TaskCounts


class BatchJobTrigger(BaseTrigger):
    """Poll a job's tasks with the async Batch client until all are complete.

    Without ``task_id_prefix`` each poll is one task-counts request (whatever the number of tasks),
    and completion is confirmed with a filtered list. With a prefix, only the tasks whose id starts
    with it are watched, so several DAG runs can share one job. Emits one event
    ``{"status": "success"|"failed"|"timeout"|"error", "job_id", "task_id_prefix", "counts",
    "message", "failed_tasks", "failed_count"}``; failed tasks carry exit code, failure code and the
    tail of stderr for the first few.
    """

    def __init__(
        self,
        job_id: str,
        task_id_prefix: str | None = None,
        azbatch_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 30.0,
        timeout_at: float | None = None,
        expected_task_count: int | None = None,
        max_failed_tasks: int = 10,
        max_failure_logs: int = 3,
        max_consecutive_errors: int = 3,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.task_id_prefix = task_id_prefix or None
        self.azbatch_conn_id = azbatch_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at
        self.expected_task_count = expected_task_count
        self.max_failed_tasks = int(max_failed_tasks)
        self.max_failure_logs = int(max_failure_logs)
        self.max_consecutive_errors = int(max_consecutive_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "task_id_prefix": self.task_id_prefix,
                "azbatch_conn_id": self.azbatch_conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "expected_task_count": self.expected_task_count,
                "max_failed_tasks": self.max_failed_tasks,
                "max_failure_logs": self.max_failure_logs,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook, io = await prepare_batch_io(self.azbatch_conn_id)
        # Already imported by prepare_batch_io, off the event loop.
        from airflow_batch_provider.hooks._sdk_compat import TaskCounts, error_message
        from airflow_batch_provider.utils.batch_status import check_job

        last_counts: TaskCounts | None = None
        stalled = 0
        errors = 0
        try:
            while True:
                try:
                    check = await check_job(
                        io,
                        self.job_id,
                        self.task_id_prefix,
                        expected_task_count=self.expected_task_count,
                        last_counts=last_counts,
                        stalled_polls=stalled,
                        max_failed_tasks=self.max_failed_tasks,
                        max_failure_logs=self.max_failure_logs,
                    )
                    errors = 0
                except Exception as err:
                    errors += 1
                    if errors >= self.max_consecutive_errors:
                        yield TriggerEvent(
                            {
                                "status": "error",
                                "job_id": self.job_id,
                                "task_id_prefix": self.task_id_prefix,
                                "counts": (last_counts or TaskCounts()).as_dict(),
                                "message": f"Could not read job {self.job_id!r}: "
                                f"{type(err).__name__}: {error_message(err)}",
                                "failed_tasks": [],
                                "failed_count": 0,
                            }
                        )
                        return
                    self.log.warning("Reading job %s failed (%s); will retry", self.job_id, err)
                    await asyncio.sleep(self.poll_interval)
                    continue
                if check.changed:
                    self.log.info("%s", check.message)
                last_counts = check.counts
                stalled = check.stalled_polls
                if check.status != "running":
                    yield TriggerEvent(check.to_event())
                    return
                if self.timeout_at is not None and time.time() >= self.timeout_at:
                    event = check.to_event()
                    event["status"] = "timeout"
                    event["message"] = f"Timed out waiting for Batch tasks. Last status: {check.message}"
                    yield TriggerEvent(event)
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.aclose()
