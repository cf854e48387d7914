"""One Airflow task for a whole Batch run: create (or reuse) the job, add the tasks, wait, clean up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf
from airflow.sdk.exceptions import TaskDeferred

from airflow_batch_provider.batch.monitor.io import SyncBatchIO, run_sync
from airflow_batch_provider.batch.monitor.stop import stop_work
from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchJobLink
from airflow_batch_provider.operators.base import BatchBaseOperator
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

_CLEANUPS = (None, "terminate", "delete")
#: The ``task_state_store`` key (Airflow 3.3+) of what a try started: the job, its tasks, the phase.
RUN_STATE_KEY = "batch_run_job"


class BatchRunJobOperator(BatchBaseOperator):
    """Run a Batch job in one Airflow task: the job, its tasks, the wait, and an optional cleanup.

    It runs the step operators' own code (:class:`BatchCreateJobOperator`, :class:`BatchAddTasksOperator`,
    :class:`BatchJobSensor` and its trigger), so ids, checks, failure reports and deferral behave the
    same. Ids are derived from the DAG run, so a retry after a worker crash re-attaches: the job is
    reused and no task is added twice. Where Airflow offers ``task_state_store`` (3.3+), each try also
    records what it started (key ``batch_run_job``): a retry of a try that had added all its tasks
    goes straight back to waiting for that job, without a single create or add request. Killing the
    Airflow task terminates the job (the tasks it added, while deferred) unless
    ``terminate_on_kill=False``.

    :param job_id: The job id (any rendered template; made a valid Batch id).
    :param pool_id: The pool the job runs on.
    :param tasks: The tasks, as for :class:`BatchAddTasksOperator` (or use ``task_factory``).
    :param task_factory: A task factory, as for :class:`BatchAddTasksOperator`.
    :param job_options: More :class:`BatchCreateJobOperator` arguments (``max_wall_clock_time``, ...).
    :param task_options: More :class:`BatchAddTasksOperator` arguments (``output_container``, ...).
    :param wait_options: More :class:`BatchJobSensor` arguments (``follow_output``, ...).
    :param cleanup: After the wait, ``"terminate"`` or ``"delete"`` the job; ``None`` keeps it.
    :param timeout: How long to wait for the tasks, in seconds or a ``timedelta``.
    :param poll_interval: Time between two polls, in seconds or a ``timedelta``.
    :param terminate_on_kill: Terminate the job when the Airflow task is killed or times out.
    :param deferrable: Wait in the triggerer.

    Returns ``{"job_id", "created", "task_id_prefix", "added", "already_existed", "resumed", "counts",
    "failed_count", "failed_task_ids", "requeued_tasks"}`` (``resumed`` when an earlier try's record
    was used).
    """

    template_fields: Sequence[str] = (
        "job_id",
        "pool_id",
        "tasks",
        "job_options",
        "task_options",
        "azbatch_conn_id",
        "azblob_conn_id",
    )
    template_fields_renderers = {"tasks": "json", "job_options": "json", "task_options": "json"}
    operator_extra_links = (BatchJobLink(),)
    ui_color = "#cce5ff"

    def __init__(
        self,
        *,
        job_id: str,
        pool_id: str,
        tasks: Sequence[Mapping[str, Any] | Any] | None = None,
        task_factory: Any | None = None,
        job_options: Mapping[str, Any] | None = None,
        task_options: Mapping[str, Any] | None = None,
        wait_options: Mapping[str, Any] | None = None,
        cleanup: str | None = None,
        timeout: timedelta | float = 7 * 24 * 3600,
        poll_interval: timedelta | float = 30,
        terminate_on_kill: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        azbatch_conn_id: str = BatchHook.default_conn_name,
        azblob_conn_id: str = AZBLOB_DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, azblob_conn_id=azblob_conn_id, **kwargs)
        if cleanup not in _CLEANUPS:
            raise InvalidInputError(f"cleanup must be None, 'terminate' or 'delete', got {cleanup!r}.")
        self.job_id = job_id
        self.pool_id = pool_id
        self.tasks = tasks
        self.task_factory = task_factory
        self.job_options = job_options
        self.task_options = task_options
        self.wait_options = dict(wait_options or {})
        self.cleanup = cleanup
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.terminate_on_kill = terminate_on_kill
        self.deferrable = deferrable
        self._running_job: str | None = None

    def _sensor(self, job_id: str, task_id_prefix: str | None) -> BatchJobSensor:
        return BatchJobSensor(
            task_id=self.task_id,
            job_id=job_id,
            task_id_prefix=task_id_prefix,
            azbatch_conn_id=self.azbatch_conn_id,
            terminate_on_kill=self.terminate_on_kill,
            deferrable=self.deferrable,
            poke_interval=self.poll_interval,
            timeout=self.timeout,
            **self.wait_options,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        started = self._resumable(store)
        if started is None:
            started = self._start(context, store)
        self.log.info(
            "Job %s: waiting for its tasks (prefix %s)", started["job_id"], started["task_id_prefix"]
        )
        return self._finish(started, lambda sensor: sensor.execute(context))

    def _resumable(self, store: Any) -> dict[str, Any] | None:
        """What an earlier try started and fully submitted, when its job still exists."""
        recorded = store.get(RUN_STATE_KEY) if store is not None else None
        if not isinstance(recorded, dict) or recorded.get("phase") != "waiting":
            return None
        started = dict(recorded.get("started") or {})
        job_id = str(started.get("job_id") or "")
        if not job_id or self.hook.get_job(job_id, select=["id"]) is None:
            self.log.warning("Job %r recorded by an earlier try is gone: starting the run again", job_id)
            return None
        self.log.info(
            "Re-attaching to job %s: an earlier try created it and added its tasks (prefix %s)",
            job_id,
            started.get("task_id_prefix"),
        )
        return {**started, "resumed": True}

    def _start(self, context: Context, store: Any) -> dict[str, Any]:
        created = BatchCreateJobOperator(
            task_id=self.task_id,
            job_id=self.job_id,
            pool_id=self.pool_id,
            azbatch_conn_id=self.azbatch_conn_id,
            # A quota wait here blocks: only this operator's own wait defers.
            **{**dict(self.job_options or {}), "deferrable": False},
        ).execute(context)
        job_id = str(created["job_id"])
        self._running_job = job_id
        if store is not None:
            store.set(RUN_STATE_KEY, {"phase": "adding", "started": {"job_id": job_id}})
        added = BatchAddTasksOperator(
            task_id=self.task_id,
            job_id=job_id,
            tasks=self.tasks,
            task_factory=self.task_factory,
            azbatch_conn_id=self.azbatch_conn_id,
            azblob_conn_id=self.azblob_conn_id or AZBLOB_DEFAULT_CONN_ID,
            **dict(self.task_options or {}),
        ).execute(context)
        started = {
            "job_id": job_id,
            "created": bool(created["created"]),
            "task_id_prefix": added["task_id_prefix"],
            "added": added["added"],
            "already_existed": added["already_existed"],
            "resumed": False,
        }
        if store is not None:
            store.set(RUN_STATE_KEY, {"phase": "waiting", "started": started})
        return started

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, started: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resumes after the deferred wait, with what :meth:`execute` started."""
        return self._finish(started or {}, lambda sensor: sensor.execute_complete(context, event))

    def _finish(self, started: dict[str, Any], wait: Any) -> dict[str, Any]:
        job_id = str(started.get("job_id") or self.job_id)
        self._running_job = job_id
        deferred = False
        try:
            waited = wait(self._sensor(job_id, started.get("task_id_prefix")))
        except TaskDeferred as deferral:
            # The wait goes on in the triggerer and resumes in execute_complete with ``started``.
            deferred = True
            raise TaskDeferred(
                trigger=deferral.trigger,
                method_name="execute_complete",
                kwargs={"started": started},
                timeout=deferral.timeout,
            ) from None
        finally:
            # _running_job stays set: on_kill runs after the timeout's exception has left this frame.
            if not deferred:
                self._clean_up(job_id)
        return {
            **started,
            **{k: waited[k] for k in ("counts", "failed_count", "failed_task_ids", "requeued_tasks")},
        }

    def _clean_up(self, job_id: str) -> None:
        if self.cleanup == "terminate":
            self.log.info("Job %s: %s", job_id, self.hook.terminate_job(job_id, "AirflowRunFinished"))
        elif self.cleanup == "delete":
            self.log.info("Job %s: %s", job_id, self.hook.delete_job(job_id))

    def on_kill(self) -> None:
        if self.terminate_on_kill and self._running_job:
            try:
                done = run_sync(stop_work(SyncBatchIO(self.hook), self._running_job, None))
                self.log.warning("%s because the Airflow task was killed", done)
            except Exception as err:
                self.log.error("Could not terminate job %s: %s", self._running_job, err)


__all__ = ["BatchRunJobOperator"]
