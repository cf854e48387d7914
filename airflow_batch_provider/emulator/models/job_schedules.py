"""Job schedules: the recurrence that creates ``<scheduleId>:job-<n>`` jobs, and the schedule state machine.

Each schedule has one timer on the account's event loop. It sleeps until the next thing that can
happen (the next run time, the end of a start window, ``doNotRunAfter``) and is woken early when
the schedule changes or one of its jobs ends. What to do at a given moment is decided by
:meth:`JobSchedule.plan`, a pure function of the schedule and the clock.

``recurrenceInterval`` and ``startWindow`` are multiplied by the account's
``schedule_interval_scale`` (default 1), so tests can see a ``PT1M`` recurrence in a fraction of a
second; the times the schedule reports (``nextRunTime``) are the times it will really act on.
``doNotRunUntil`` and ``doNotRunAfter`` are absolute times and are never scaled.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from airflow_batch_provider.batch.durations import format_duration
from airflow_batch_provider.emulator.errors import (
    BatchError,
    conflict,
    invalid_property,
    missing_property,
    resource_not_found,
)
from airflow_batch_provider.emulator.models.base import (
    Resource,
    get_duration,
    get_list,
    get_object,
    get_str,
    validate_id,
)
from airflow_batch_provider.emulator.odata import parse_datetime
from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.models.jobs import Job

#: The service rejects a ``startWindow`` or ``recurrenceInterval`` below this.
MINIMUM_INTERVAL = timedelta(minutes=1)
_ZERO = timedelta(0)

_CONFLICTS = {
    "JobScheduleCompleted": "The specified job schedule is already in completed state.",
    "JobScheduleBeingTerminated": "The specified job schedule is being terminated.",
    "JobScheduleBeingDeleted": (
        "The specified job schedule has been marked for deletion and is being reclaimed."
    ),
}
_STATE_CONFLICTS = {
    "completed": "JobScheduleCompleted",
    "terminating": "JobScheduleBeingTerminated",
    "deleting": "JobScheduleBeingDeleted",
}


def schedule_conflict(state: str) -> BatchError:
    code = _STATE_CONFLICTS[state]
    return conflict(code, _CONFLICTS[code])


@dataclass(frozen=True)
class Recurrence:
    """The ``schedule`` element: when jobs may be created and how often."""

    do_not_run_until: datetime | None = None
    do_not_run_after: datetime | None = None
    start_window: timedelta | None = None
    recurrence_interval: timedelta | None = None

    @classmethod
    def parse(cls, body: dict[str, Any] | None, path: str = "schedule") -> Recurrence:
        """Validate a ``schedule`` element as the service does (intervals of at least one minute)."""
        body = body or {}
        return cls(
            do_not_run_until=_get_datetime(body, "doNotRunUntil", f"{path}/doNotRunUntil"),
            do_not_run_after=_get_datetime(body, "doNotRunAfter", f"{path}/doNotRunAfter"),
            start_window=_get_interval(body, "startWindow", f"{path}/startWindow"),
            recurrence_interval=_get_interval(body, "recurrenceInterval", f"{path}/recurrenceInterval"),
        )

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.do_not_run_until is not None:
            document["doNotRunUntil"] = format_datetime(self.do_not_run_until)
        if self.do_not_run_after is not None:
            document["doNotRunAfter"] = format_datetime(self.do_not_run_after)
        if self.start_window is not None:
            document["startWindow"] = format_duration(self.start_window)
        if self.recurrence_interval is not None:
            document["recurrenceInterval"] = format_duration(self.recurrence_interval)
        return document


def _get_datetime(body: dict[str, Any], name: str, path: str) -> datetime | None:
    value = get_str(body, name, path)
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise invalid_property(path, value, "The value must be an ISO 8601 date and time.")
    return parsed


def _get_interval(body: dict[str, Any], name: str, path: str) -> timedelta | None:
    value = get_duration(body, name, None, path=path)
    if value is not None and value < MINIMUM_INTERVAL:
        raise invalid_property(path, body[name], "The value must be at least 1 minute (PT1M).")
    return value


@dataclass(frozen=True)
class Plan:
    """What a schedule does now: create a job, skip a missed run, complete, or wait."""

    action: Literal["create", "skip", "complete", "wait"]
    #: The run this action is about (create/skip).
    run_time: datetime | None = None
    #: For ``wait``: seconds until something can change on its own; ``None`` means until woken.
    seconds: float | None = None


class JobSchedule(Resource):
    """A job schedule: its recurrence, the job specification, and the jobs it has created."""

    def __init__(self, account: BatchAccount, schedule_id: str, body: dict[str, Any]) -> None:
        super().__init__(schedule_id)
        self.account = account
        self.state = "active"
        self.display_name = body.get("displayName")
        self.recurrence = Recurrence()
        self.job_specification: dict[str, Any] = {}
        self.metadata: list[dict[str, Any]] = []
        #: How many jobs the schedule has created (the ``n`` of ``<id>:job-<n>``).
        self.jobs_created = 0
        #: The run time of the last run handled (a job created, or a run missed).
        self.last_run: datetime | None = None
        self.recent_job_id: str | None = None
        #: The auto pool shared by the schedule's jobs (``poolLifetimeOption: jobschedule``).
        self.auto_pool_id: str | None = None
        self.end_time: datetime | None = None
        #: Set when something the timer waits for changes (the schedule, or the end of one of its jobs).
        self.wake = asyncio.Event()

    @property
    def url(self) -> str:
        return f"{self.account.base_url}/jobschedules/{quote(self.id)}"

    @property
    def scale(self) -> float:
        return self.account.settings.schedule_interval_scale

    def _scaled(self, interval: timedelta | None) -> timedelta | None:
        return None if interval is None else interval * self.scale

    def jobs(self) -> list[Job]:
        """The schedule's jobs that still exist, oldest first."""
        return [job for job in self.account.jobs.all() if job.job_schedule_id == self.id]

    def active_job(self) -> Job | None:
        """The job that blocks the next run: one not yet completed (the service runs one at a time)."""
        return next((job for job in self.jobs() if job.state != "completed"), None)

    # ---- the recurrence

    def next_run_time(self, now: datetime) -> datetime | None:
        """When the next job is due; ``None`` once a schedule without recurrence has had its run.

        A recurring schedule does not carry a run into the next interval: runs whose whole interval
        has passed are skipped over.
        """
        first = self.recurrence.do_not_run_until or self.creation_time
        interval = self._scaled(self.recurrence.recurrence_interval)
        if self.last_run is None:
            due = first
        elif interval is None:
            return None
        else:
            due = max(self.last_run + interval, first)
        if interval is not None and now >= due + interval:
            due += ((now - due) // interval) * interval
        return due

    def plan(self, now: datetime) -> Plan:
        """Decide what the schedule does at ``now`` (pure: no state changes)."""
        if self.state != "active":
            return Plan("wait")
        active = self.active_job() is not None
        due = self.next_run_time(now)
        deadline = self.recurrence.do_not_run_after
        if due is None or (deadline is not None and (due > deadline or now > deadline)):
            if deadline is not None and due is not None and now < deadline:
                return Plan("wait", seconds=(deadline - now).total_seconds())
            return Plan("wait") if active else Plan("complete")
        if now < due:
            return Plan("wait", run_time=due, seconds=(due - now).total_seconds())
        window = self._effective_window()
        if window is not None and now >= due + window:
            return Plan("skip", run_time=due)
        if active:
            seconds = None if window is None else (due + window - now).total_seconds()
            return Plan("wait", run_time=due, seconds=seconds)
        return Plan("create", run_time=due)

    def _effective_window(self) -> timedelta | None:
        """The start window; a recurring schedule's never reaches past its interval."""
        window = self._scaled(self.recurrence.start_window)
        interval = self._scaled(self.recurrence.recurrence_interval)
        if interval is None:
            return window
        return interval if window is None else min(window, interval)

    # ---- documents

    def execution_info(self, now: datetime) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.state in ("active", "disabled"):
            plan = self.plan(now) if self.state == "active" else None
            due = self.next_run_time(now)
            if due is not None and (plan is None or plan.action != "complete"):
                info["nextRunTime"] = format_datetime(due)
        if self.recent_job_id is not None:
            info["recentJob"] = {
                "id": self.recent_job_id,
                "url": f"{self.account.base_url}/jobs/{quote(self.recent_job_id)}",
            }
        if self.end_time is not None:
            info["endTime"] = format_datetime(self.end_time)
        return info

    def specification_document(self) -> dict[str, Any]:
        """The job specification with the service's defaults filled in."""
        try:
            job, _ = self.account.jobs.build(f"{self.id}:job-0", self.job_specification)
        except BatchError:
            # Valid when set, no longer buildable (say, an application package was removed since).
            return dict(self.job_specification)
        document = job.to_dict()
        keep = (
            "priority",
            "maxParallelTasks",
            "allowTaskPreemption",
            "usesTaskDependencies",
            "onAllTasksComplete",
            "onTaskFailure",
            "constraints",
            "poolInfo",
            "displayName",
            "networkConfiguration",
            "commonEnvironmentSettings",
            "jobManagerTask",
            "jobPreparationTask",
            "jobReleaseTask",
            "metadata",
        )
        return {key: document[key] for key in keep if key in document}

    def statistics(self, now: datetime) -> dict[str, Any]:
        """Lifetime task numbers of the schedule's jobs (the emulator measures no CPU or I/O)."""
        succeeded = failed = retries = 0
        wall_clock = _ZERO
        for job in self.jobs():
            for task in job.tasks.values():
                succeeded += task.succeeded
                failed += task.failed
                retries += int(task.execution_info.get("retryCount") or 0)
                start, end = task.execution_info.get("startTime"), task.execution_info.get("endTime")
                if start:
                    finish = parse_datetime(end) if end else now
                    began = parse_datetime(start)
                    if finish is not None and began is not None:
                        wall_clock += max(finish - began, _ZERO)
        return {
            "url": f"{self.url}/stats",
            "startTime": format_datetime(self.creation_time),
            "lastUpdateTime": format_datetime(now),
            "userCPUTime": "PT0S",
            "kernelCPUTime": "PT0S",
            "wallClockTime": format_duration(wall_clock),
            "readIOps": "0",
            "writeIOps": "0",
            "readIOGiB": 0.0,
            "writeIOGiB": 0.0,
            "numSucceededTasks": str(succeeded),
            "numFailedTasks": str(failed),
            "numTaskRetries": str(retries),
            "waitTime": "PT0S",
        }

    def to_dict(self, *, stats: bool = False) -> dict[str, Any]:
        now = utcnow()
        document = self.common_properties(self.url)
        if self.display_name is not None:
            document["displayName"] = self.display_name
        document.update(
            {
                "state": self.state,
                "stateTransitionTime": format_datetime(self.state_transition_time),
            }
        )
        if self.previous_state:
            document["previousState"] = self.previous_state
            if self.previous_state_transition_time is not None:
                document["previousStateTransitionTime"] = format_datetime(self.previous_state_transition_time)
        schedule = self.recurrence.to_dict()
        if schedule:
            document["schedule"] = schedule
        document["jobSpecification"] = self.specification_document()
        document["executionInfo"] = self.execution_info(now)
        if self.metadata:
            document["metadata"] = self.metadata
        if stats:
            document["stats"] = self.statistics(now)
        return document


def _auto_pool_specification(job_specification: dict[str, Any]) -> dict[str, Any] | None:
    spec: dict[str, Any] | None = (job_specification.get("poolInfo") or {}).get("autoPoolSpecification")
    return spec


class JobScheduleBackend:
    """Job schedule operations of the account, and the timers that create their jobs."""

    def __init__(self, account: BatchAccount) -> None:
        if account.settings.schedule_interval_scale <= 0:
            raise ValueError(
                f"schedule_interval_scale must be positive (got {account.settings.schedule_interval_scale}); "
                "use e.g. 0.01 to run a PT1M recurrence every 0.6 seconds"
            )
        self.account = account
        self._schedules: dict[str, JobSchedule] = {}

    # ---- lookup

    def get(self, schedule_id: str) -> JobSchedule:
        schedule = self._schedules.get(schedule_id.lower())
        if schedule is None:
            raise resource_not_found("job schedule", "JobScheduleNotFound")
        return schedule

    def find(self, schedule_id: str) -> JobSchedule | None:
        return self._schedules.get(schedule_id.lower())

    def all(self) -> list[JobSchedule]:
        return list(self._schedules.values())

    def active_count(self) -> int:
        """Schedules counting towards the account's active job and schedule quota."""
        return sum(1 for schedule in self._schedules.values() if schedule.state != "completed")

    # ---- create / update

    def create(self, body: dict[str, Any]) -> JobSchedule:
        schedule_id = validate_id(body.get("id"))
        if schedule_id.lower() in self._schedules:
            raise conflict("JobScheduleExists", "The specified job schedule already exists.")
        if self.account.jobs.find(schedule_id) is not None:
            raise conflict(
                "JobWithSameIdExists",
                "A job with the specified job schedule id exists. Job and job schedule cannot have "
                "the same id.",
            )
        schedule = JobSchedule(self.account, schedule_id, body)
        if get_object(body, "schedule") is None:
            raise missing_property("schedule")
        self._apply(schedule, body, replace=True)
        self.account.jobs.check_active_quota()
        self._schedules[schedule_id.lower()] = schedule
        # The first run is due at once unless doNotRunUntil says otherwise: create it before answering,
        # as the service does, so the schedule's first job is listed right after creation.
        self._advance(schedule, utcnow())
        self.account.spawn(self._run(schedule))
        return schedule

    def _apply(self, schedule: JobSchedule, body: dict[str, Any], *, replace: bool) -> None:
        """Validate and apply ``schedule``, ``jobSpecification`` and ``metadata`` (PUT or PATCH)."""
        recurrence = schedule.recurrence
        if replace or "schedule" in body:
            recurrence = Recurrence.parse(get_object(body, "schedule"))
        specification = schedule.job_specification
        if replace or "jobSpecification" in body:
            given = get_object(body, "jobSpecification")
            if given is None:
                raise missing_property("jobSpecification")
            self._validate_specification(given)
            specification = given
        metadata = schedule.metadata
        if replace or "metadata" in body:
            metadata = list(get_list(body, "metadata") or [])
        schedule.recurrence = recurrence
        schedule.job_specification = dict(specification)
        schedule.metadata = metadata

    def _validate_specification(self, specification: dict[str, Any]) -> None:
        """Check the job specification as a job create would, naming properties under it."""
        try:
            self.account.jobs.build("job-specification", specification)
        except BatchError as error:
            name = error.values.get("PropertyName")
            if name:
                error.values["PropertyName"] = f"jobSpecification/{name}"
            raise

    def update(self, schedule_id: str, body: dict[str, Any]) -> JobSchedule:
        schedule = self._writable(schedule_id)
        self._apply(schedule, body, replace=False)
        schedule.touch()
        schedule.wake.set()
        return schedule

    def replace(self, schedule_id: str, body: dict[str, Any]) -> JobSchedule:
        schedule = self._writable(schedule_id)
        self._apply(schedule, body, replace=True)
        schedule.touch()
        schedule.wake.set()
        return schedule

    def _writable(self, schedule_id: str) -> JobSchedule:
        schedule = self.get(schedule_id)
        if schedule.state in _STATE_CONFLICTS:
            raise schedule_conflict(schedule.state)
        return schedule

    # ---- state changes

    def disable(self, schedule_id: str) -> JobSchedule:
        """No new jobs until enabled; a running job carries on."""
        schedule = self._writable(schedule_id)
        if schedule.state == "active":
            schedule.set_state("disabled")
            schedule.wake.set()
        return schedule

    def enable(self, schedule_id: str) -> JobSchedule:
        schedule = self._writable(schedule_id)
        if schedule.state == "disabled":
            schedule.set_state("active")
            schedule.wake.set()
        return schedule

    def terminate(self, schedule_id: str) -> JobSchedule:
        """Stop creating jobs and terminate the active one; ``completed`` once it has ended."""
        schedule = self.get(schedule_id)
        if schedule.state in ("completed", "deleting"):
            raise schedule_conflict(schedule.state)
        self.begin_terminate(schedule)
        return schedule

    def begin_terminate(self, schedule: JobSchedule) -> None:
        if schedule.state in ("terminating", "completed", "deleting"):
            return
        schedule.set_state("terminating")
        schedule.wake.set()
        self.account.spawn(self._terminate(schedule))

    async def _terminate(self, schedule: JobSchedule) -> None:
        for job in schedule.jobs():
            if job.state not in ("completed", "deleting"):
                self.account.jobs.begin_terminate(job, "UserTerminate")
        while schedule.state == "terminating" and schedule.active_job() is not None:
            await self._wait(schedule, None)
        await self.account.step()
        if schedule.state == "terminating":
            schedule.end_time = utcnow()
            schedule.set_state("completed")
        self._release_auto_pool(schedule)

    def delete(self, schedule_id: str) -> JobSchedule:
        """``deleting`` while its jobs are deleted, then gone."""
        schedule = self.get(schedule_id)
        if schedule.state != "deleting":
            schedule.set_state("deleting")
            schedule.wake.set()
            self.account.spawn(self._delete(schedule))
        return schedule

    async def _delete(self, schedule: JobSchedule) -> None:
        for job in schedule.jobs():
            if job.state != "deleting":
                self.account.jobs.delete(job.id)
        while schedule.jobs():
            await self._wait(schedule, None)
        await self.account.step()
        self._schedules.pop(schedule.id.lower(), None)
        self._release_auto_pool(schedule)

    def job_ended(self, job: Job) -> None:
        """A job completed or was deleted: its schedule may run the next one (or finish)."""
        if job.job_schedule_id is None:
            return
        schedule = self.find(job.job_schedule_id)
        if schedule is not None:
            schedule.wake.set()

    # ---- the timer

    async def _run(self, schedule: JobSchedule) -> None:
        while schedule.state in ("active", "disabled"):
            seconds = self._advance(schedule, utcnow())
            if schedule.state not in ("active", "disabled"):
                return
            await self._wait(schedule, seconds)

    def _advance(self, schedule: JobSchedule, now: datetime) -> float | None:
        """Act on the schedule's plans until it has to wait; return how long (``None``: until woken)."""
        while True:
            plan = schedule.plan(now)
            if plan.action == "wait":
                return plan.seconds
            if plan.action == "complete":
                self.begin_terminate(schedule)
                return None
            schedule.last_run = plan.run_time
            if plan.action == "create":
                self._create_job(schedule)

    def _create_job(self, schedule: JobSchedule) -> None:
        schedule.jobs_created += 1
        job_id = f"{schedule.id}:job-{schedule.jobs_created}"
        body = {**schedule.job_specification, "id": job_id}
        try:
            auto_pool_id = self._schedule_auto_pool(schedule)
            self.account.jobs.create(body, job_schedule_id=schedule.id, auto_pool_id=auto_pool_id)
        except BatchError:
            # The specification was valid when set; what changed since (a quota, an application
            # package) costs this run, as a failed job creation does on the service.
            return
        schedule.recent_job_id = job_id

    def _schedule_auto_pool(self, schedule: JobSchedule) -> str | None:
        """The auto pool all the schedule's jobs share (lifetime ``jobschedule``), made at the first run."""
        spec = _auto_pool_specification(schedule.job_specification)
        if spec is None or str(spec.get("poolLifetimeOption")).lower() != "jobschedule":
            return None
        pool = self.account.pools.find(schedule.auto_pool_id) if schedule.auto_pool_id else None
        if pool is None or pool.state == "deleting":
            schedule.auto_pool_id = self.account.jobs.create_auto_pool(schedule.id, spec)
        return schedule.auto_pool_id

    def _release_auto_pool(self, schedule: JobSchedule) -> None:
        """Delete the schedule's auto pool when its lifetime ends, unless ``keepAlive`` asks otherwise."""
        spec = _auto_pool_specification(schedule.job_specification) or {}
        pool = self.account.pools.find(schedule.auto_pool_id) if schedule.auto_pool_id else None
        if pool is not None and pool.state != "deleting" and not spec.get("keepAlive"):
            self.account.pools.delete(pool.id)

    @staticmethod
    async def _wait(schedule: JobSchedule, seconds: float | None) -> None:
        """Sleep ``seconds`` (or until woken), returning early when the schedule is woken."""
        schedule.wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(schedule.wake.wait(), None if seconds is None else max(seconds, 0.0))
