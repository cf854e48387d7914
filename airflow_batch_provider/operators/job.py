"""Create (or reuse), terminate and delete Batch jobs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf
from azure.core.exceptions import HttpResponseError

from airflow_batch_provider.batch.capacity import QuotaWait, QuotaWaitExpired, call_when_capacity
from airflow_batch_provider.batch.durations import to_iso_duration, to_seconds
from airflow_batch_provider.batch.ids import to_batch_id
from airflow_batch_provider.batch.job_spec import build_job_spec, job_differences
from airflow_batch_provider.batch.service_errors import error_code, error_message
from airflow_batch_provider.batch.validation import validate_batch_id
from airflow_batch_provider.exceptions import BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchJobLink
from airflow_batch_provider.operators.base import BatchBaseOperator, BatchCleanupBaseOperator
from airflow_batch_provider.utils.deprecation import renamed_arguments

if TYPE_CHECKING:
    from airflow.sdk import Context

_IF_EXISTS = ("reuse", "fail")


def _opt_int(value: Any, name: str) -> int | None:
    if value is None or value == "" or value == "None":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}.") from None


def _opt_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class BatchCreateJobOperator(BatchBaseOperator):
    """Create a Batch job bound to a pool, or reuse the existing job with that id.

    ``job_id`` may be any rendered template (``{{ dag.dag_id }}-{{ run_id }}``); it is turned into a
    valid Batch id with :func:`~airflow_batch_provider.batch.ids.make_batch_id` (valid ids are kept),
    and other Batch operators apply the same function, so they can take the same template.

    ``max_wall_clock_time`` (timedelta, seconds or ISO 8601) is the job's kill switch: the service
    terminates the job, and its running tasks, when it runs longer. Set it so forgotten jobs do not
    hold the account's active job quota. ``job_spec`` (REST or Python style) is merged last.

    A job that exists already is reused when it is bound to the same pool and still accepts tasks
    (``if_exists="reuse"``, so an Airflow retry re-attaches instead of failing); otherwise the task fails
    naming the differences. Returns ``{"job_id", "pool_id", "created"}``.

    When the account's active job quota is used up (``ActiveJobAndScheduleQuotaReached``) the task fails
    at once, unless ``quota_wait_timeout`` is set: then it tries again after ``quota_retry_delay``
    seconds, doubling the pause (up to 5 minutes) until the job is created or the bound passes. With
    ``deferrable`` the pauses are spent in the triggerer, so the wait holds no worker slot.

    :param job_id: The job id (any rendered template; made a valid Batch id).
    :param pool_id: The pool the job's tasks run on.
    :param priority: Job priority, -1000 to 1000.
    :param max_parallel_tasks: Tasks of this job that run at once, at most.
    :param max_wall_clock_time: The job's kill switch (seconds, ``timedelta`` or ISO 8601).
    :param max_task_retry_count: Retries of a failed task (-1: unlimited).
    :param job_preparation_task: A task run on each node before the job's first task there.
    :param job_release_task: A task run on each node when the job ends.
    :param common_environment_settings: Environment variables for every task of the job.
    :param uses_task_dependencies: Allow tasks to depend on other tasks.
    :param on_all_tasks_complete: ``noaction`` or ``terminatejob`` once every task completed.
    :param on_task_failure: ``noaction`` or ``performexitoptionsjobaction`` when a task fails.
    :param metadata: Name-value pairs stored on the job.
    :param job_spec: Any other job property (REST or Python style), merged last.
    :param if_exists: ``reuse`` a compatible existing job, or ``fail``.
    :param quota_wait_timeout: Seconds (or timedelta) to wait for the job quota to free up; ``None``
        (default) fails at the first quota error.
    :param quota_retry_delay: Seconds before the first new try.
    :param deferrable: Spend a quota wait's pauses in the triggerer instead of a worker slot.
    :param azbatch_conn_id: The ``azbatch`` connection.
    """

    template_fields: Sequence[str] = (
        "job_id",
        "pool_id",
        "priority",
        "max_parallel_tasks",
        "max_wall_clock_time",
        "max_task_retry_count",
        "job_preparation_task",
        "job_release_task",
        "common_environment_settings",
        "uses_task_dependencies",
        "on_all_tasks_complete",
        "on_task_failure",
        "metadata",
        "job_spec",
        "if_exists",
        "azbatch_conn_id",
    )
    template_fields_renderers = {
        "job_spec": "json",
        "job_preparation_task": "json",
        "job_release_task": "json",
    }
    operator_extra_links = (BatchJobLink(),)
    ui_color = "#e0ecff"

    def __init__(
        self,
        *,
        job_id: str,
        pool_id: str,
        priority: int | None = None,
        max_parallel_tasks: int | None = None,
        max_wall_clock_time: timedelta | float | str | None = None,
        max_task_retry_count: int | None = None,
        job_preparation_task: Mapping[str, Any] | Any | None = None,
        job_release_task: Mapping[str, Any] | Any | None = None,
        common_environment_settings: Mapping[str, Any] | None = None,
        uses_task_dependencies: bool | None = None,
        on_all_tasks_complete: str | None = None,
        on_task_failure: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        job_spec: Mapping[str, Any] | None = None,
        if_exists: str = "reuse",
        quota_wait_timeout: timedelta | float | None = None,
        quota_retry_delay: float = 5.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        azbatch_conn_id: str = BatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, **kwargs)
        self.job_id = job_id
        self.pool_id = pool_id
        self.quota_wait_timeout = quota_wait_timeout
        self.quota_retry_delay = quota_retry_delay
        self.deferrable = deferrable
        self.priority = priority
        self.max_parallel_tasks = max_parallel_tasks
        self.max_wall_clock_time = max_wall_clock_time
        self.max_task_retry_count = max_task_retry_count
        self.job_preparation_task = job_preparation_task
        self.job_release_task = job_release_task
        self.common_environment_settings = common_environment_settings
        self.uses_task_dependencies = uses_task_dependencies
        self.on_all_tasks_complete = on_all_tasks_complete
        self.on_task_failure = on_task_failure
        self.metadata = metadata
        self.job_spec = job_spec
        self.if_exists = if_exists

    def build_spec(self) -> dict[str, Any]:
        """The job body this operator sends."""
        job_id = validate_batch_id(to_batch_id(self.job_id, "job_id"), "job")
        pool_id = validate_batch_id(to_batch_id(self.pool_id, "pool_id"), "pool") if self.pool_id else ""
        wall_clock = to_iso_duration(self.max_wall_clock_time, "max_wall_clock_time")
        return build_job_spec(
            job_id=job_id,
            pool_id=pool_id,
            priority=_opt_int(self.priority, "priority"),
            max_parallel_tasks=_opt_int(self.max_parallel_tasks, "max_parallel_tasks"),
            max_wall_clock_time=wall_clock or None,
            max_task_retry_count=_opt_int(self.max_task_retry_count, "max_task_retry_count"),
            job_preparation_task=self.job_preparation_task,
            job_release_task=self.job_release_task,
            common_environment_settings=self.common_environment_settings,
            uses_task_dependencies=_opt_bool(self.uses_task_dependencies),
            on_all_tasks_complete=self.on_all_tasks_complete or None,
            on_task_failure=self.on_task_failure or None,
            metadata=self.metadata,
            extra=self.job_spec,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        if self.if_exists not in _IF_EXISTS:
            raise InvalidInputError(
                f"if_exists must be one of {', '.join(_IF_EXISTS)}, got {self.if_exists!r}."
            )
        spec = self.build_spec()
        job_id, pool_id = spec["id"], spec["poolInfo"]["poolId"]
        self.persist_link(BatchJobLink, context, job_id)
        if (
            pool_id
            and self.hook.get_job(job_id, select=["id"]) is None
            and self.hook.get_pool(pool_id, select=["id"]) is None
        ):
            # The service would accept the job, and its tasks would wait forever for the pool.
            raise InvalidInputError(
                f"Pool {pool_id!r} does not exist, so the tasks of job {job_id!r} could never run. Check "
                "pool_id, or create the pool first (BatchCreatePoolOperator upstream of this task)."
            )
        return self._create_or_reuse(spec)

    def execute_after_quota_pause(
        self, context: Context, event: Any = None, quota_wait: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resumes a deferred quota wait after its pause: tries the create again."""
        return self._create_or_reuse(self.build_spec(), quota_wait)

    def _create_or_reuse(
        self, spec: dict[str, Any], quota_wait: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        job_id, pool_id = spec["id"], spec["poolInfo"]["poolId"]
        created = self._create(spec, quota_wait)
        if created:
            self.log.info("Created job %s on pool %s", job_id, pool_id)
            return {"job_id": job_id, "pool_id": pool_id, "created": True}
        existing = self.hook.get_job(job_id) or {}
        if self.if_exists == "fail":
            raise BatchProviderError(
                f"Job {job_id!r} already exists and if_exists='fail'. Use a per-run job id such as "
                "'{{ dag.dag_id }}-{{ run_id }}', or if_exists='reuse'."
            )
        differences = job_differences(spec, existing)
        if differences:
            raise BatchProviderError(
                f"Job {job_id!r} already exists and cannot be reused:\n  - "
                + "\n  - ".join(differences)
                + "\nUse another job id (job ids of deleted jobs stay taken while they are being deleted)."
            )
        self.log.info(
            "Reusing the existing job %s on pool %s (state %s)", job_id, pool_id, existing.get("state")
        )
        return {"job_id": job_id, "pool_id": pool_id, "created": False}

    def _quota_wait(self) -> QuotaWait:
        return QuotaWait(
            timeout=to_seconds(self.quota_wait_timeout, "quota_wait_timeout") or 0.0,
            first_delay=float(self.quota_retry_delay),
            max_delay=max(300.0, float(self.quota_retry_delay)),
        )

    def _create(self, spec: dict[str, Any], deferred_wait: dict[str, Any] | None = None) -> bool:
        """Create the job; on a quota error, wait for a free slot as ``quota_wait_timeout`` allows."""
        job_id = spec["id"]
        quota_wait = self._quota_wait()
        if self.deferrable and quota_wait.timeout > 0:
            return self._create_or_defer(spec, quota_wait, deferred_wait or {"started_at": time.time()})
        try:
            return call_when_capacity(
                lambda: self.hook.create_job(spec),
                _is_job_quota_error,
                quota_wait,
                on_wait=lambda pause, err: self.log.warning(
                    "Job %s: the account's active job quota is used up (%s); trying again in %.0fs",
                    job_id,
                    error_message(err),
                    pause,
                ),
            )
        except (QuotaWaitExpired, HttpResponseError) as failure:
            if isinstance(failure, HttpResponseError) and not _is_job_quota_error(failure):
                raise
            err = failure.last_error if isinstance(failure, QuotaWaitExpired) else failure
            waited = failure.waited if isinstance(failure, QuotaWaitExpired) else None
            raise _job_quota_error(job_id, err, waited) from err

    def _create_or_defer(self, spec: dict[str, Any], quota_wait: QuotaWait, state: dict[str, Any]) -> bool:
        """Try the create once; on a quota error, defer for the next pause of the backoff (or fail
        once the bound has passed). ``state`` holds when the wait began and the tries so far."""
        try:
            return self.hook.create_job(spec)
        except HttpResponseError as err:
            if not _is_job_quota_error(err):
                raise
            refused = err
        waited = time.time() - float(state["started_at"])
        if waited >= quota_wait.timeout:
            raise _job_quota_error(spec["id"], refused, waited) from refused
        tries = int(state.get("tries") or 0) + 1
        pause = min(quota_wait.delay(tries - 1), quota_wait.timeout - waited)
        self.log.warning(
            "Job %s: the account's active job quota is used up (%s); trying again in %.0fs, waiting in "
            "the triggerer",
            spec["id"],
            error_message(refused),
            pause,
        )
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=pause)),
            method_name="execute_after_quota_pause",
            kwargs={"quota_wait": {"started_at": state["started_at"], "tries": tries}},
        )


def _job_quota_error(job_id: str, err: BaseException, waited: float | None) -> BatchProviderError:
    """The error of a job create refused by the active job quota (``waited``: seconds waited, if any)."""
    after = (
        f" It was still used up after waiting {waited:.0f}s (quota_wait_timeout)."
        if waited is not None
        else ""
    )
    return BatchProviderError(
        f"Cannot create job {job_id!r}: the account's active job quota is used up "
        f"({error_message(err)}).{after} Jobs count until they are terminated: add "
        "BatchTerminateJobOperator/BatchDeleteJobOperator as teardown tasks and set "
        "max_wall_clock_time so forgotten jobs end by themselves, or set quota_wait_timeout "
        "to wait for a free slot."
    )


def _is_job_quota_error(err: BaseException) -> bool:
    return isinstance(err, HttpResponseError) and error_code(err) == "ActiveJobAndScheduleQuotaReached"


class BatchTerminateJobOperator(BatchCleanupBaseOperator):
    """Terminate a Batch job (running tasks are stopped); a missing or completed job is not an error.

    Frees the account's active-job quota. Teardown-friendly. Returns ``{"job_id", "outcome"}`` with
    ``terminated``, ``already_completed`` or ``not_found``. With ``wait_for_completion`` the task waits
    until the job has ended (in the triggerer when ``deferrable``), at most ``timeout``.

    :param job_id: The job to terminate (templated).
    :param reason: The terminate reason the job records (templated).
    :param azbatch_conn_id: The ``azbatch`` connection.
    """

    template_fields: Sequence[str] = ("job_id", "reason", "azbatch_conn_id")
    ui_color = "#ffe0e0"
    kind = "job"
    started_outcome = "terminated"

    def __init__(
        self,
        *,
        job_id: str,
        reason: str = "TerminatedByAirflow",
        azbatch_conn_id: str = BatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, **kwargs)
        self.job_id = job_id
        self.reason = reason

    def start_cleanup(self, resource_id: str, *, wait: bool, poll_interval: float, timeout: float) -> str:
        return self.hook.terminate_job(
            resource_id, self.reason, wait=wait, poll_interval=poll_interval, timeout=timeout
        )

    def cleanup_trigger(self, resource_id: str, **kwargs: Any) -> Any:
        from airflow_batch_provider.triggers.cleanup import BatchJobTerminationTrigger

        return BatchJobTerminationTrigger(job_id=resource_id, **kwargs)


class BatchDeleteJobOperator(BatchCleanupBaseOperator):
    """Delete a Batch job and its tasks; a job that does not exist is not an error.

    Teardown-friendly (``.as_teardown()``). Returns ``{"job_id", "outcome"}`` with ``deleted``,
    ``being_deleted`` or ``not_found``. With ``wait_for_completion`` the task waits until the job is
    gone (in the triggerer when ``deferrable``), at most ``timeout``.

    :param job_id: The job to delete (templated).
    :param wait_for_completion: Block until the job is gone (formerly ``wait_for_deletion``).
    :param azbatch_conn_id: The ``azbatch`` connection.
    """

    template_fields: Sequence[str] = ("job_id", "azbatch_conn_id")
    ui_color = "#ffe0e0"
    kind = "job"

    @renamed_arguments(wait_for_deletion="wait_for_completion")
    def __init__(
        self,
        *,
        job_id: str,
        wait_for_completion: bool = False,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(wait_for_completion=wait_for_completion, azbatch_conn_id=azbatch_conn_id, **kwargs)
        self.job_id = job_id

    def start_cleanup(self, resource_id: str, *, wait: bool, poll_interval: float, timeout: float) -> str:
        return self.hook.delete_job(resource_id, wait=wait, poll_interval=poll_interval, timeout=timeout)
