"""Trigger that waits, in the triggerer, until every task of a job (or under an id prefix) is done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.triggers._base import BatchPollingTrigger
from airflow_batch_provider.triggers._off_loop import DEFAULT_CONN_ID

if TYPE_CHECKING:  # the triggerer imports this module on its event loop: the SDK comes later, off it
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
    from airflow_batch_provider.batch.monitor.job import JobCheck
    from airflow_batch_provider.batch.monitor.live_output import OutputFollower


class BatchJobTrigger(BatchPollingTrigger["JobCheck"]):
    """Poll a job's tasks with the async Batch client until all are complete.

    Without ``task_id_prefix`` each poll is one task-counts request (whatever the number of tasks),
    and completion is confirmed with a filtered list. With a prefix, only the tasks whose id starts
    with it are watched, so several DAG runs can share one job. Emits one event
    ``{"status": "success"|"failed"|"timeout"|"error", "job_id", "task_id_prefix", "counts",
    "message", "failed_tasks", "failed_count"}``; failed tasks carry exit code, failure code and the
    tail of stderr for the first few.

    :param job_id: The job to watch.
    :param task_id_prefix: Watch only the tasks whose id starts with this prefix.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param poll_interval: Seconds between two polls.
    :param timeout_at: When to give up (UNIX timestamp); ``None`` waits without a deadline.
    :param expected_task_count: Tasks that must exist before the job counts as done.
    :param max_failed_tasks: Failed task ids reported in the event.
    :param max_failure_logs: Failed tasks whose stderr tail is read.
    :param max_consecutive_errors: Failed reads in a row that end the wait with an ``error`` event.
    :param terminate_on_kill: When the deferred Airflow task is killed or marked failed, terminate the
        job (or the prefix's unfinished tasks). A triggerer restart does not count as a kill.
    :param follow_output: :meth:`OutputFollower.settings` to log the running tasks' new output lines
        on every poll; ``None`` for none.
    :param follow_output_up_to: Follow only while the watch has at most this many tasks.
    :param max_task_requeues: End with ``failed`` (``reason="requeue_budget"``) when a watched task is
        requeued more than this many times; ``None`` only reports requeues.
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
        terminate_on_kill: bool = False,
        follow_output: dict[str, Any] | None = None,
        follow_output_up_to: int = 20,
        max_task_requeues: int | None = None,
    ) -> None:
        super().__init__(
            azbatch_conn_id=azbatch_conn_id,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_consecutive_errors=max_consecutive_errors,
        )
        self.job_id = job_id
        self.task_id_prefix = task_id_prefix or None
        self.expected_task_count = expected_task_count
        self.max_failed_tasks = int(max_failed_tasks)
        self.max_failure_logs = int(max_failure_logs)
        self.terminate_on_kill = bool(terminate_on_kill)
        self.follow_output_up_to = int(follow_output_up_to)
        self.max_task_requeues = None if max_task_requeues is None else int(max_task_requeues)
        #: Built on the first check (off the loop, with the SDK); until then the settings as given.
        self._follow_output = follow_output
        self._follower: OutputFollower | None = None
        self._last_counts: TaskCounts | None = None
        self._stalled = 0

    def serialize_fields(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "task_id_prefix": self.task_id_prefix,
            "expected_task_count": self.expected_task_count,
            "max_failed_tasks": self.max_failed_tasks,
            "max_failure_logs": self.max_failure_logs,
            "terminate_on_kill": self.terminate_on_kill,
            "follow_output": self._follower.settings() if self._follower else self._follow_output,
            "follow_output_up_to": self.follow_output_up_to,
            "max_task_requeues": self.max_task_requeues,
        }

    @property
    def resource(self) -> str:
        return f"job {self.job_id!r}"

    def progress(self) -> dict[str, Any] | None:
        return {
            "counts": self._last_counts.as_dict() if self._last_counts else None,
            "stalled_polls": self._stalled,
            "offsets": dict(self._follower.offsets) if self._follower else None,
        }

    def resume_from(self, progress: dict[str, Any]) -> None:
        if progress.get("counts"):
            self._last_counts = TaskCounts.from_dict(progress["counts"])
            self._stalled = int(progress.get("stalled_polls") or 0)
        follower = self._output_follower()
        if follower is not None and progress.get("offsets"):
            follower.offsets.update(progress["offsets"])

    async def check(self, io: AsyncBatchIO) -> JobCheck:
        from airflow_batch_provider.batch.monitor.live_output import log_lines  # loaded off the loop already

        check = await self._check_job(io)
        self._last_counts, self._stalled = check.counts, check.stalled_polls
        follower = self._output_follower()
        if follower and check.status == "running" and follower.wanted(check.counts, self.follow_output_up_to):
            try:
                log_lines(await follower.poll(io), self.log.info)
            except Exception as err:  # the output is a courtesy: it never fails the wait
                self.log.debug("Could not read the tasks' output: %s", err)
        return check

    def _output_follower(self) -> OutputFollower | None:
        from airflow_batch_provider.batch.monitor.live_output import OutputFollower

        settings = self._follow_output
        if self._follower is None and settings is not None:
            self._follower = OutputFollower(
                job_id=self.job_id,
                task_id_prefix=self.task_id_prefix,
                task_ids=tuple(settings["task_ids"]) if settings.get("task_ids") else None,
                max_tasks=int(settings.get("max_tasks", 5)),
                max_bytes=int(settings.get("max_bytes", 16384)),
                offsets=dict(settings.get("offsets") or {}),
            )
        return self._follower

    async def _check_job(self, io: AsyncBatchIO) -> JobCheck:
        from airflow_batch_provider.batch.monitor.job import check_job  # loaded off the loop already

        return await check_job(
            io,
            self.job_id,
            self.task_id_prefix,
            expected_task_count=self.expected_task_count,
            last_counts=self._last_counts,
            stalled_polls=self._stalled,
            max_failed_tasks=self.max_failed_tasks,
            max_failure_logs=self.max_failure_logs,
            max_task_requeues=self.max_task_requeues,
        )

    def on_value(self, value: JobCheck) -> None:
        if value.changed:
            self.log.info("%s", value.message)
        self._last_counts = value.counts
        self._stalled = value.stalled_polls

    def is_done(self, value: JobCheck) -> bool:
        return value.status != "running"

    def done_event(self, value: JobCheck) -> dict[str, Any]:
        return value.to_event()

    def timeout_event(self, value: JobCheck) -> dict[str, Any]:
        event = value.to_event()
        event["status"] = "timeout"
        event["message"] = f"Timed out waiting for Batch tasks. Last status: {value.message}"
        return event

    def error_event(self, message: str, last: JobCheck | None) -> dict[str, Any]:
        return {
            "status": "error",
            "job_id": self.job_id,
            "task_id_prefix": self.task_id_prefix,
            "counts": (self._last_counts or TaskCounts()).as_dict(),
            "message": message,
            "failed_tasks": [],
            "failed_count": 0,
        }

    async def on_kill(self) -> None:
        """Terminate the watched work when the user kills the deferred task (not on triggerer restarts)."""
        if not self.terminate_on_kill:
            return
        from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
        from airflow_batch_provider.batch.monitor.stop import stop_work
        from airflow_batch_provider.hooks.batch import BatchHook

        hook = BatchHook(self.azbatch_conn_id)
        try:
            done = await stop_work(AsyncBatchIO(hook), self.job_id, self.task_id_prefix)
            self.log.warning("%s because the deferred Airflow task was killed", done)
        finally:
            await hook.aclose()
