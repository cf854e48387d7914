"""Sensor that waits for the tasks of a Batch job (all of them, or those under an id prefix)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.batch.monitor.io import SyncBatchIO, run_sync
from airflow_batch_provider.batch.monitor.job import (
    check_job,
    failure_report,
    is_failed_task,
    job_check_due_by_clock,
)
from airflow_batch_provider.batch.monitor.live_output import OutputFollower, log_lines
from airflow_batch_provider.batch.monitor.stop import stop_work
from airflow_batch_provider.exceptions import (
    BatchJobEndedError,
    BatchProviderError,
    BatchRequeueBudgetError,
    BatchTaskFailureError,
)
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchJobLink
from airflow_batch_provider.operators.base import DEFERRAL_MARGIN, BatchConnectionMixin
from airflow_batch_provider.triggers.job import BatchJobTrigger

#: The task state store key of the live output's read offsets (``mode="reschedule"``).
_OFFSETS_KEY = "batch_live_output_offsets"


def job_result(event: dict[str, Any], max_ids: int = 20) -> dict[str, Any]:
    """The small XCom a job wait returns."""
    failed = event.get("failed_tasks") or []
    return {
        "job_id": event.get("job_id"),
        "task_id_prefix": event.get("task_id_prefix"),
        "counts": event.get("counts"),
        "failed_count": event.get("failed_count", 0),
        "failed_task_ids": [task.get("id") for task in failed[:max_ids]],
        "requeued_tasks": (event.get("requeued_tasks") or [])[:max_ids],
    }


class BatchJobSensor(BatchConnectionMixin, BaseSensorOperator):
    """Wait until all tasks of a Batch job, or all tasks whose id starts with ``task_id_prefix``, complete.

    Fails with the ids, exit codes, failure codes and stderr tails of the failed tasks (or only warns
    when ``fail_on_task_failure=False``), and fails when the job ends with tasks still pending. Works
    in ``poke``, ``reschedule`` and deferrable mode; the wait is bounded by ``timeout`` (seconds or
    timedelta), after which the job (or the prefix's tasks) can be terminated.

    :param job_id: The Batch job id.
    :param task_id_prefix: Watch only tasks whose id starts with this (e.g. the ``task_id_prefix`` that
        :class:`~airflow_batch_provider.operators.tasks.BatchAddTasksOperator` returns).
    :param expected_task_count: Keep waiting until at least this many tasks exist.
    :param fail_on_task_failure: Fail when any watched task failed; ``False`` logs a warning instead.
    :param max_failed_tasks: How many failed tasks the error lists.
    :param max_failure_logs: For how many failed tasks the tail of stderr.txt is shown.
    :param terminate_on_timeout: Terminate the job (or the prefix's tasks) when the wait times out.
    :param terminate_on_kill: Terminate it (default) when the Airflow task is killed, hits
        ``execution_timeout`` or is marked failed, also while deferred; ``False`` leaves it running.
    :param follow_output: Show the new lines of the running tasks' stdout/stderr in the Airflow log on
        every poll, prefixed with the Batch task id: ``True`` (default) for the watched tasks, a list of
        Batch task ids for just those, ``False`` for none.
    :param follow_output_up_to: Follow only while the watch has at most this many tasks (unless task
        ids are listed), so a big job's polls stay cheap.
    :param follow_output_max_tasks: Tasks read per poll, at most.
    :param follow_output_max_bytes: Bytes read per file and poll, at most.
    :param max_task_requeues: Fail the wait when a watched task is requeued (Spot preemption, node
        loss) more than this many times, naming the tasks and preempted nodes; ``None`` (default) only
        reports requeues. Without ``task_id_prefix`` this costs one more list per poll.
    :param deferrable: Wait in the triggerer and free the worker slot.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param poke_interval: Time between two checks, in seconds or a ``timedelta``.

    The result (XCom) has ``requeued_tasks``: per requeued task its id, ``requeue_count`` and
    ``node_id`` (the node it last ran on).
    """

    template_fields: Sequence[str] = ("job_id", "task_id_prefix", "expected_task_count", "azbatch_conn_id")
    operator_extra_links = (BatchJobLink(),)
    ui_color = "#cce5ff"

    def __init__(
        self,
        *,
        job_id: str,
        task_id_prefix: str | None = None,
        expected_task_count: int | None = None,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        fail_on_task_failure: bool = True,
        max_failed_tasks: int = 10,
        max_failure_logs: int = 3,
        terminate_on_timeout: bool = False,
        terminate_on_kill: bool = True,
        follow_output: bool | Sequence[str] = True,
        follow_output_up_to: int = 20,
        follow_output_max_tasks: int = 5,
        follow_output_max_bytes: int = 16384,
        max_task_requeues: int | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.job_id = job_id
        self.task_id_prefix = task_id_prefix
        self.expected_task_count = expected_task_count
        self.azbatch_conn_id = azbatch_conn_id
        self.fail_on_task_failure = fail_on_task_failure
        self.max_failed_tasks = max_failed_tasks
        self.max_failure_logs = max_failure_logs
        self.terminate_on_timeout = terminate_on_timeout
        self.terminate_on_kill = terminate_on_kill
        self.deferrable = deferrable
        self.follow_output = follow_output
        self.follow_output_up_to = follow_output_up_to
        self.follow_output_max_tasks = follow_output_max_tasks
        self.follow_output_max_bytes = follow_output_max_bytes
        self.max_task_requeues = max_task_requeues
        self._follower: OutputFollower | None = None
        self._offsets_store: Any = None
        self._last_counts: TaskCounts | None = None
        self._stalled = 0
        self._last_message: str | None = None

    def _expected(self) -> int | None:
        return int(self.expected_task_count) if self.expected_task_count not in (None, "", "None") else None

    def execute(self, context: Any) -> Any:
        self.persist_link(BatchJobLink, context, self.job_id)
        if self.deferrable:
            event = self._check().to_event()
            if event["status"] != "running":
                return self._handle(event)
            timeout_at = time.time() + self.timeout
            self.defer(
                trigger=BatchJobTrigger(
                    job_id=self.job_id,
                    task_id_prefix=self.task_id_prefix,
                    azbatch_conn_id=self.azbatch_conn_id,
                    poll_interval=self.poke_interval,
                    timeout_at=timeout_at,
                    expected_task_count=self._expected(),
                    max_failed_tasks=self.max_failed_tasks,
                    max_failure_logs=self.max_failure_logs,
                    terminate_on_kill=self.terminate_on_kill,
                    follow_output=self._output_follower().settings() if self.follow_output else None,
                    follow_output_up_to=self.follow_output_up_to,
                    max_task_requeues=self.max_task_requeues,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout + DEFERRAL_MARGIN),
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout as err:
            self._on_timeout()
            raise AirflowSensorTimeout(f"{err} Last status: {self._last_message or 'unknown'}") from err

    def _check(self) -> Any:
        check = run_sync(
            check_job(
                SyncBatchIO(self.hook),
                self.job_id,
                self.task_id_prefix,
                expected_task_count=self._expected(),
                last_counts=self._last_counts,
                stalled_polls=self._stalled,
                # In reschedule mode a poke remembers nothing of earlier ones: about one in
                # JOB_CHECK_EVERY reads the job's state as well, chosen by the clock.
                force_job_check=self.reschedule
                and self._last_counts is None
                and job_check_due_by_clock(time.time(), self.poke_interval),
                max_failed_tasks=self.max_failed_tasks,
                max_failure_logs=self.max_failure_logs,
                max_task_requeues=self.max_task_requeues,
            )
        )
        if check.status == "running" and check.changed:
            self.log.info("%s", check.message)
        self._last_counts = check.counts
        self._stalled = check.stalled_polls
        follower = self._output_follower() if self.follow_output else None
        if self.reschedule and self._offsets_store is None:
            follower = None  # a poke remembers nothing: without a state store lines would repeat
        if follower and check.status == "running" and follower.wanted(check.counts, self.follow_output_up_to):
            try:
                log_lines(run_sync(follower.poll(SyncBatchIO(self.hook))), self.log.info)
                if self._offsets_store is not None:
                    self._offsets_store.set(_OFFSETS_KEY, dict(follower.offsets))
            except Exception as err:  # the output is a courtesy: it never fails the wait
                self.log.debug("Could not read the tasks' output: %s", err)
        self._last_message = check.message
        return check

    def _output_follower(self) -> OutputFollower:
        if self._follower is None:
            chosen = self.follow_output if not isinstance(self.follow_output, bool | str) else None
            self._follower = OutputFollower(
                job_id=self.job_id,
                task_id_prefix=self.task_id_prefix or None,
                task_ids=tuple(str(task_id) for task_id in chosen) if chosen else None,
                max_tasks=int(self.follow_output_max_tasks),
                max_bytes=int(self.follow_output_max_bytes),
            )
        return self._follower

    def poke(self, context: Any) -> bool | PokeReturnValue:
        if self.reschedule and self.follow_output:
            # Airflow 3.3's task state store carries the read offsets from one poke to the next.
            self._offsets_store = context.get("task_state_store")
            if self._offsets_store is not None:
                self._output_follower().offsets = dict(self._offsets_store.get(_OFFSETS_KEY) or {})
        event = self._check().to_event()
        if event["status"] == "running":
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._handle(event))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event:
            raise BatchProviderError("The Batch job trigger ended without an event.")
        return self._handle(event)

    def _handle(self, event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status")
        message = str(event.get("message") or "")
        if status == "success":
            self.log.info("All watched tasks completed successfully: %s", message)
            return job_result(event)
        if status == "timeout":
            self._on_timeout()
            raise AirflowSensorTimeout(message)
        if status == "failed":
            if event.get("reason") == "job_ended":
                raise BatchJobEndedError(message)
            if event.get("reason") == "requeue_budget":
                raise BatchRequeueBudgetError(message)
            if self.fail_on_task_failure:
                raise BatchTaskFailureError(message or failure_report(event))
            self.log.warning("%s", message or failure_report(event))
            return job_result(event)
        raise BatchProviderError(message or f"Waiting for job {self.job_id!r} failed.")

    def _on_timeout(self) -> None:
        if self.terminate_on_timeout:
            self._terminate("the wait timed out")

    def _terminate(self, why: str) -> None:
        try:
            done = run_sync(stop_work(SyncBatchIO(self.hook), self.job_id, self.task_id_prefix or None))
            self.log.warning("%s because %s", done[:1].upper() + done[1:], why)
        except Exception as err:
            self.log.error(
                "Could not terminate job %s (%s); terminate it in the portal or with "
                "BatchTerminateJobOperator: %s",
                self.job_id,
                why,
                err,
            )

    def on_kill(self) -> None:
        if self.terminate_on_kill:
            self._terminate("the Airflow task was killed")


__all__ = [
    "BatchJobEndedError",
    "BatchJobSensor",
    "BatchRequeueBudgetError",
    "BatchTaskFailureError",
    "is_failed_task",
    "job_result",
]
