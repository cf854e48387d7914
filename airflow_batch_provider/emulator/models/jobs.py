"""Jobs: pool binding (existing or auto pool), the job state machine, task counts, prep/release status."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_batch_provider.batch.durations import UNBOUNDED, format_duration
from airflow_batch_provider.emulator.compute.runner.layout import job_directory
from airflow_batch_provider.emulator.errors import (
    BatchError,
    conflict,
    invalid_property,
    missing_property,
    resource_exists,
    resource_not_found,
)
from airflow_batch_provider.emulator.models import defaults as service_defaults
from airflow_batch_provider.emulator.models.base import (
    Resource,
    get_bool,
    get_duration,
    get_enum,
    get_int,
    get_object,
    require,
    validate_command_task,
    validate_id,
)
from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

if TYPE_CHECKING:
    from datetime import timedelta

    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.models.tasks import Task

_PASSTHROUGH = ("displayName", "commonEnvironmentSettings", "networkConfiguration", "jobManagerTask")
_ON_ALL_COMPLETE = ("noaction", "terminatejob")
_ON_FAILURE = ("noaction", "performexitoptionsjobaction")


class Job(Resource):
    """A job: its settings, its tasks and, per node, the state of its preparation and release tasks."""

    def __init__(self, account: BatchAccount, job_id: str, body: dict[str, Any]) -> None:
        super().__init__(job_id)
        self.account = account
        self.state = "active"
        self.properties: dict[str, Any] = {
            key: body[key] for key in _PASSTHROUGH if body.get(key) is not None
        }
        self.priority = 0
        self.max_parallel_tasks = -1
        self.allow_task_preemption = False
        self.max_wall_clock: timedelta | None = UNBOUNDED
        self.max_task_retry_count = 0
        self.pool_info: dict[str, Any] = {}
        self.auto_pool_id: str | None = None
        self.on_all_tasks_complete = "noaction"
        self.on_task_failure = "noaction"
        self.uses_task_dependencies = False
        self.metadata: list[dict[str, Any]] = []
        self.preparation_task: dict[str, Any] | None = None
        self.release_task: dict[str, Any] | None = None
        self.manager_task_id: str | None = None
        self.manager_kills_job = True
        self.execution_info: dict[str, Any] = {"startTime": format_datetime(self.creation_time)}
        self.tasks: dict[str, Task] = {}
        #: node id -> {"node": Node, "preparation": {...}, "release": {...}}
        self.node_status: dict[str, dict[str, Any]] = {}
        #: node id -> the running or finished preparation run (True when it succeeded).
        self.preparations: dict[str, asyncio.Task[bool]] = {}
        self.excluded_nodes: set[str] = set()
        #: When the scheduler last started one of its tasks (a counter), for fair turns between jobs.
        self.last_served = 0
        #: The job schedule that created this job, if any.
        self.job_schedule_id: str | None = None
        self._wall_clock_timer: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.account.base_url}/jobs/{quote(self.id)}"

    @property
    def pool_id(self) -> str | None:
        return self.auto_pool_id or self.pool_info.get("poolId")

    @property
    def running_tasks(self) -> int:
        return sum(1 for task in self.tasks.values() if task.in_flight)

    def apply_settings(self, body: dict[str, Any], *, replace: bool) -> None:
        """Apply priority, constraints, parallelism and completion settings (PATCH or PUT semantics)."""

        def given(name: str) -> bool:
            return replace or name in body

        if given("priority"):
            self.priority = get_int(body, "priority", 0, -1000, 1000)
        if given("maxParallelTasks"):
            value = get_int(body, "maxParallelTasks", -1, -1, None)
            if value == 0:
                raise invalid_property("maxParallelTasks", 0, "The value must be -1 or greater than 0.")
            self.max_parallel_tasks = value
        if given("allowTaskPreemption"):
            self.allow_task_preemption = get_bool(body, "allowTaskPreemption", False)
        if given("constraints"):
            constraints = get_object(body, "constraints") or {}
            self.max_wall_clock = get_duration(
                constraints, "maxWallClockTime", UNBOUNDED, path="constraints/maxWallClockTime"
            )
            self.max_task_retry_count = get_int(
                constraints, "maxTaskRetryCount", 0, -1, 100, "constraints/maxTaskRetryCount"
            )
        if given("onAllTasksComplete"):
            on_complete = get_enum(body, "onAllTasksComplete", _ON_ALL_COMPLETE, "noaction") or "noaction"
            if self.on_all_tasks_complete == "terminatejob" and on_complete == "noaction" and not replace:
                raise invalid_property(
                    "onAllTasksComplete",
                    on_complete,
                    "Once set to terminatejob it cannot be changed back to noaction.",
                )
            self.on_all_tasks_complete = on_complete
        if given("metadata"):
            self.metadata = list(body.get("metadata") or [])
        if "networkConfiguration" in body:
            self.properties["networkConfiguration"] = body["networkConfiguration"]

    def to_dict(self) -> dict[str, Any]:
        document = self.common_properties(self.url)
        document.update(self.properties)
        pool_info = service_defaults.pool_info(self.pool_info)
        document.update(
            {
                "usesTaskDependencies": self.uses_task_dependencies,
                "state": self.state,
                "stateTransitionTime": format_datetime(self.state_transition_time),
                "priority": self.priority,
                "allowTaskPreemption": self.allow_task_preemption,
                "maxParallelTasks": self.max_parallel_tasks,
                "constraints": {
                    "maxWallClockTime": format_duration(self.max_wall_clock or UNBOUNDED),
                    "maxTaskRetryCount": self.max_task_retry_count,
                },
                "poolInfo": pool_info,
                "onAllTasksComplete": self.on_all_tasks_complete,
                "onTaskFailure": self.on_task_failure,
                "executionInfo": dict(self.execution_info),
            }
        )
        if self.previous_state:
            document["previousState"] = self.previous_state
            if self.previous_state_transition_time is not None:
                document["previousStateTransitionTime"] = format_datetime(self.previous_state_transition_time)
        if "jobManagerTask" in self.properties:
            document["jobManagerTask"] = service_defaults.job_manager_task(self.properties["jobManagerTask"])
        for name, task in (
            ("jobPreparationTask", self.preparation_task),
            ("jobReleaseTask", self.release_task),
        ):
            if task is not None:
                document[name] = service_defaults.with_user_identity(task)
        if self.metadata:
            document["metadata"] = self.metadata
        return document


def _validate_preparation(body: dict[str, Any]) -> dict[str, Any] | None:
    task = get_object(body, "jobPreparationTask")
    if task is None:
        return None
    validate_command_task(task, "jobPreparationTask/")
    task = dict(task)
    task["id"] = validate_id(task.get("id") or "jobpreparation", "jobPreparationTask/id")
    task.setdefault("waitForSuccess", True)
    task.setdefault("rerunOnNodeRebootAfterSuccess", True)
    constraints = get_object(task, "constraints", "jobPreparationTask/constraints") or {}
    task["constraints"] = {
        "maxWallClockTime": format_duration(
            get_duration(constraints, "maxWallClockTime", UNBOUNDED, path="jobPreparationTask/constraints")
            or UNBOUNDED
        ),
        "retentionTime": constraints.get("retentionTime", "P7D"),
        "maxTaskRetryCount": get_int(constraints, "maxTaskRetryCount", 0, -1, 100),
    }
    return task


def _validate_release(body: dict[str, Any], has_preparation: bool) -> dict[str, Any] | None:
    task = get_object(body, "jobReleaseTask")
    if task is None:
        return None
    if not has_preparation:
        raise invalid_property(
            "jobReleaseTask", None, "A job release task can only be specified with a job preparation task."
        )
    validate_command_task(task, "jobReleaseTask/")
    task = dict(task)
    task["id"] = validate_id(task.get("id") or "jobrelease", "jobReleaseTask/id")
    task.setdefault("maxWallClockTime", "PT15M")
    task.setdefault("retentionTime", "P7D")
    return task


_JOB_CONFLICTS = {
    "JobCompleted": "The specified job is already in a completed state.",
    "JobBeingTerminated": "The specified job is being terminated.",
    "JobBeingDeleted": "The specified job has been marked for deletion and is being garbage collected.",
    "JobNotActive": "The specified job is not in active state.",
}


def job_conflict(code: str) -> BatchError:
    return conflict(code, _JOB_CONFLICTS[code])


def pool_change_needs_disabled_job() -> BatchError:
    return conflict(
        "OperationInvalidForCurrentState",
        "The specified operation is not valid for the current state of the resource.",
        Reason="The pool of a job can only be changed while the job is disabled.",
    )


class JobBackend:
    """Job operations of the account, and the job-level reactions to task outcomes."""

    def __init__(self, account: BatchAccount) -> None:
        self.account = account
        self._jobs: dict[str, Job] = {}

    # ---- lookup

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id.lower())
        if job is None:
            raise resource_not_found("job")
        return job

    def find(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id.lower())

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def for_pool(self, pool_id: str) -> list[Job]:
        return [job for job in self._jobs.values() if (job.pool_id or "").lower() == pool_id.lower()]

    def pool_metrics(self, pool_id: str) -> dict[str, float]:
        """Task numbers of the pool's jobs, for autoscale formulas."""
        active = running = succeeded = failed = 0
        for job in self.for_pool(pool_id):
            for task in job.tasks.values():
                if task.state == "active":
                    active += 1
                elif task.state in ("running", "preparing"):
                    running += 1
                elif task.succeeded:
                    succeeded += 1
                elif task.failed:
                    failed += 1
        return {
            "$ActiveTasks": active,
            "$RunningTasks": running,
            "$PendingTasks": active + running,
            "$SucceededTasks": succeeded,
            "$FailedTasks": failed,
        }

    # ---- create / update

    def create(
        self, body: dict[str, Any], *, job_schedule_id: str | None = None, auto_pool_id: str | None = None
    ) -> Job:
        """Validate ``body`` and add the job; start its job manager task and timers.

        ``job_schedule_id`` marks a job its schedule creates: the id (``<schedule>:job-<n>``) is the
        service's own, and the schedule already counts towards the active job and schedule quota.
        ``auto_pool_id`` is the schedule's auto pool (lifetime ``jobschedule``), used instead of a new one.
        """
        if job_schedule_id is None:
            job_id = validate_id(body.get("id"))
            if job_id.lower() in self._jobs:
                raise resource_exists("job")
            if self.account.job_schedules.find(job_id) is not None:
                raise conflict(
                    "JobScheduleWithSameIdExists",
                    "A job schedule with the specified job id exists. Job and job schedule cannot have "
                    "the same id.",
                )
            self.check_active_quota()
        else:
            job_id = str(body["id"])
        job, manager_task = self.build(job_id, body)
        auto_pool = job.pool_info.get("autoPoolSpecification") or {}
        if job_schedule_id is None and str(auto_pool.get("poolLifetimeOption")).lower() == "jobschedule":
            raise invalid_property(
                "poolInfo/autoPoolSpecification/poolLifetimeOption",
                auto_pool["poolLifetimeOption"],
                "The jobschedule lifetime applies only to job schedules; use job for a job's auto pool.",
            )
        job.job_schedule_id = job_schedule_id
        if auto_pool_id is not None:
            job.auto_pool_id = auto_pool_id
        elif "autoPoolSpecification" in job.pool_info:
            job.auto_pool_id = self.create_auto_pool(job.id, job.pool_info["autoPoolSpecification"])
        job.execution_info["poolId"] = job.pool_id
        self._jobs[job_id.lower()] = job
        if manager_task is not None:
            job.tasks[manager_task.id.lower()] = manager_task
        if job.max_wall_clock is not None and job.max_wall_clock < UNBOUNDED:
            job._wall_clock_timer = self.account.spawn(
                self._wall_clock(job, job.max_wall_clock.total_seconds())
            )
        self.check_all_tasks_complete(job)
        self.account.scheduler.kick()
        return job

    def check_active_quota(self) -> None:
        """409 ``ActiveJobAndScheduleQuotaReached`` when jobs not completed plus active schedules reach it."""
        active = sum(1 for job in self._jobs.values() if job.state != "completed")
        active += self.account.job_schedules.active_count()
        if active >= self.account.settings.active_job_quota:
            raise conflict(
                "ActiveJobAndScheduleQuotaReached",
                "Active job and schedule quota for the account has been reached.",
            )

    def build(self, job_id: str, body: dict[str, Any]) -> tuple[Job, Task | None]:
        """Validate a job body the way the service does: the job (not yet added) and its manager task."""
        job = Job(self.account, job_id, body)
        job.apply_settings(body, replace=True)
        job.on_task_failure = get_enum(body, "onTaskFailure", _ON_FAILURE, "noaction") or "noaction"
        job.uses_task_dependencies = get_bool(body, "usesTaskDependencies", False)
        job.preparation_task = _validate_preparation(body)
        job.release_task = _validate_release(body, job.preparation_task is not None)
        job.pool_info = self._validate_pool_info(body)
        manager = get_object(body, "jobManagerTask")
        manager_task = None
        if manager is not None:
            require(manager, "id", "jobManagerTask/id")
            manager_task = self.account.tasks.build(
                job, {**manager, "constraints": manager.get("constraints")}
            )
            job.manager_task_id = manager_task.id
            job.manager_kills_job = get_bool(
                manager, "killJobOnCompletion", True, "jobManagerTask/killJobOnCompletion"
            )
        return job, manager_task

    def _validate_pool_info(self, body: dict[str, Any]) -> dict[str, Any]:
        pool_info = get_object(body, "poolInfo")
        if pool_info is None:
            raise missing_property("poolInfo")
        has_pool, has_auto = bool(pool_info.get("poolId")), pool_info.get("autoPoolSpecification") is not None
        if has_pool == has_auto:
            raise invalid_property(
                "poolInfo",
                None,
                "Exactly one of poolInfo/poolId and poolInfo/autoPoolSpecification is required.",
            )
        if has_pool:
            validate_id(pool_info["poolId"], "poolInfo/poolId")
        else:
            spec = get_object(pool_info, "autoPoolSpecification", "poolInfo/autoPoolSpecification") or {}
            require(spec, "poolLifetimeOption", "poolInfo/autoPoolSpecification/poolLifetimeOption")
            if spec.get("pool") is None:
                raise missing_property("poolInfo/autoPoolSpecification/pool")
        return dict(pool_info)

    def create_auto_pool(self, owner_id: str, spec: dict[str, Any]) -> str:
        """Create the auto pool of ``spec`` for the job (or job schedule) ``owner_id``; its id."""
        prefix = str(spec.get("autoPoolIdPrefix") or "")
        pool_id = f"{prefix}_{uuid.uuid4()}" if prefix else str(uuid.uuid4()).upper()
        pool_body = {**spec["pool"], "id": pool_id}
        self.account.pools.create(pool_body, auto_pool_job_id=owner_id)
        return pool_id

    def update(self, job_id: str, body: dict[str, Any]) -> Job:
        job = self._writable(job_id)
        if "poolInfo" in body:
            if job.state != "disabled":
                raise pool_change_needs_disabled_job()
            job.pool_info = self._validate_pool_info(body)
            job.execution_info["poolId"] = job.pool_id
        job.apply_settings(body, replace=False)
        job.touch()
        self.check_all_tasks_complete(job)
        self.account.scheduler.kick()
        return job

    def replace(self, job_id: str, body: dict[str, Any]) -> Job:
        job = self._writable(job_id)
        pool_info = self._validate_pool_info(body)
        if (pool_info.get("poolId") or "").lower() != (job.pool_info.get("poolId") or "").lower():
            if job.state != "disabled":
                raise pool_change_needs_disabled_job()
            job.pool_info = pool_info
            job.execution_info["poolId"] = job.pool_id
        job.apply_settings(body, replace=True)
        job.touch()
        self.check_all_tasks_complete(job)
        self.account.scheduler.kick()
        return job

    def require_accepts_tasks(self, job: Job) -> None:
        """409 ``JobCompleted``/``JobBeingTerminated``/``JobBeingDeleted`` unless the job can still change."""
        if job.state == "completed":
            raise job_conflict("JobCompleted")
        if job.state == "terminating":
            raise job_conflict("JobBeingTerminated")
        if job.state == "deleting":
            raise job_conflict("JobBeingDeleted")

    def _writable(self, job_id: str) -> Job:
        job = self.get(job_id)
        self.require_accepts_tasks(job)
        return job

    # ---- state changes

    def disable(self, job_id: str, body: dict[str, Any]) -> Job:
        job = self.get(job_id)
        require(body, "disableTasks")
        option = get_enum(body, "disableTasks", ("requeue", "terminate", "wait"), "requeue")
        if job.state in ("disabling", "disabled"):
            return job
        if job.state != "active":
            self.require_accepts_tasks(job)
            raise job_conflict("JobNotActive")
        self.begin_disable(job, option or "requeue")
        job.touch()
        return job

    def begin_disable(self, job: Job, option: str) -> None:
        job.set_state("disabling")
        for task in job.tasks.values():
            if task.in_flight and option in ("requeue", "terminate"):
                self.account.scheduler.cancel(task, "requeue" if option == "requeue" else "job")
        self.account.spawn(self._finish_disable(job))

    async def _finish_disable(self, job: Job) -> None:
        await self.account.step()
        if job.state == "disabling":
            job.set_state("disabled")

    def enable(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in ("active", "enabling"):
            return job
        if job.state not in ("disabled", "disabling"):
            self.require_accepts_tasks(job)
            raise conflict(
                "OperationInvalidForCurrentState",
                "The specified operation is not valid for the current state of the resource.",
                JobState=job.state,
            )
        job.set_state("enabling")
        job.touch()
        self.account.spawn(self._finish_enable(job))
        return job

    async def _finish_enable(self, job: Job) -> None:
        await self.account.step()
        if job.state == "enabling":
            job.set_state("active")
            self.check_all_tasks_complete(job)
            self.account.scheduler.kick()

    def terminate(self, job_id: str, body: dict[str, Any]) -> Job:
        job = self.get(job_id)
        if job.state in ("completed", "deleting"):
            self.require_accepts_tasks(job)
        if job.state != "terminating":
            self.begin_terminate(job, str(body.get("terminateReason") or "UserTerminate"))
        job.touch()
        return job

    def begin_terminate(self, job: Job, reason: str) -> None:
        if job.state in ("terminating", "completed", "deleting"):
            return
        job.set_state("terminating")
        job.execution_info["terminateReason"] = reason
        self.account.spawn(self._terminate(job))

    async def _terminate(self, job: Job) -> None:
        await self._stop_tasks(job, "job")
        await self._run_release_tasks(job)
        if job.state == "terminating":
            job.set_state("completed")
            job.execution_info["endTime"] = format_datetime(utcnow())
            self.account.job_schedules.job_ended(job)
        self._cleanup_auto_pool(job)
        if job._wall_clock_timer is not None:
            job._wall_clock_timer.cancel()

    def delete(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state != "deleting":
            job.set_state("deleting")
            job.touch()
            self.account.spawn(self._delete(job))
        return job

    async def _delete(self, job: Job) -> None:
        await self._stop_tasks(job, "delete")
        if job.execution_info.get("endTime") is None:
            await self._run_release_tasks(job)
        await self.account.step()
        self._jobs.pop(job.id.lower(), None)
        self.account.job_schedules.job_ended(job)
        self._cleanup_auto_pool(job)
        if job._wall_clock_timer is not None:
            job._wall_clock_timer.cancel()
        # The job's directories on every node that ran one of its tasks (or its preparation task),
        # removed on a thread: a big job leaves many of them.
        roots = {status["node"].root for status in job.node_status.values()}
        roots.update(task.node.root for task in job.tasks.values() if task.node is not None)
        await asyncio.to_thread(_remove_job_directories, job.id, roots)
        self.account.scheduler.kick()

    async def _stop_tasks(self, job: Job, reason: str) -> None:
        for task in job.tasks.values():
            if task.in_flight:
                self.account.scheduler.cancel(task, reason)
        while any(task.in_flight for task in job.tasks.values()):
            await asyncio.sleep(0.01)
        await self.account.step()

    async def _run_release_tasks(self, job: Job) -> None:
        if job.release_task is None:
            return
        scheduler = self.account.scheduler
        await asyncio.gather(
            *(
                scheduler.run_job_release(job, status["node"])
                for status in job.node_status.values()
                if not status["node"].removed
            )
        )

    def _cleanup_auto_pool(self, job: Job) -> None:
        spec = job.pool_info.get("autoPoolSpecification") or {}
        if (
            job.auto_pool_id
            and not spec.get("keepAlive")
            and str(spec.get("poolLifetimeOption")).lower() == "job"
        ):
            pool = self.account.pools.find(job.auto_pool_id)
            if pool is not None and pool.state != "deleting":
                self.account.pools.delete(pool.id)

    async def _wall_clock(self, job: Job, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if job.state in ("active", "disabled", "disabling", "enabling"):
            self.begin_terminate(job, "MaxWallClockTimeExpiry")

    def check_all_tasks_complete(self, job: Job) -> None:
        """``onAllTasksComplete: terminatejob`` ends the job once no task is active or running.

        Like the service, a job with no tasks at all counts as complete.
        """
        if job.on_all_tasks_complete != "terminatejob" or job.state != "active":
            return
        if all(task.state == "completed" for task in job.tasks.values()):
            self.begin_terminate(job, "AllTasksComplete")

    # ---- reports

    def task_counts(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
        slots = dict(counts)
        for task in job.tasks.values():
            if task.state == "active":
                key = "active"
            elif task.state in ("running", "preparing"):
                key = "running"
            else:
                key = "completed"
            counts[key] += 1
            slots[key] += task.required_slots
            if key == "completed":
                outcome = "succeeded" if task.succeeded else "failed"
                counts[outcome] += 1
                slots[outcome] += task.required_slots
        return {"taskCounts": counts, "taskSlotCounts": slots}

    def preparation_status(self, job_id: str) -> list[dict[str, Any]]:
        job = self.get(job_id)
        if job.preparation_task is None:
            return []
        entries = []
        for node_id, status in job.node_status.items():
            node = status["node"]
            entry: dict[str, Any] = {"poolId": node.pool.id, "nodeId": node_id, "nodeUrl": node.url}
            if status.get("preparation"):
                entry["jobPreparationTaskExecutionInfo"] = status["preparation"]
            if status.get("release"):
                entry["jobReleaseTaskExecutionInfo"] = status["release"]
            entries.append(entry)
        return entries


def _remove_job_directories(job_id: str, node_roots: Iterable[Path]) -> None:
    for root in node_roots:
        shutil.rmtree(root / job_directory(job_id), ignore_errors=True)
