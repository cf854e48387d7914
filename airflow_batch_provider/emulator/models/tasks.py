"""Tasks: validation, the add-collection rules, state changes, retries, exit conditions, dependencies."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_batch_provider.batch.durations import UNBOUNDED, format_duration
from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.layout import task_directory
from airflow_batch_provider.emulator.errors import (
    BatchError,
    conflict,
    invalid_property,
    missing_property,
    not_emulated,
    resource_exists,
    resource_not_found,
)
from airflow_batch_provider.emulator.models import defaults as service_defaults
from airflow_batch_provider.emulator.models.base import (
    Resource,
    get_duration,
    get_int,
    get_list,
    get_object,
    validate_command_task,
    validate_id,
)
from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_batch_provider.emulator.compute.runner.spec import TaskRunResult
    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.models.jobs import Job
    from airflow_batch_provider.emulator.models.nodes import Node

MAX_TASKS_PER_COLLECTION = 100
MAX_COLLECTION_BYTES = 1024 * 1024
DEFAULT_RETENTION = timedelta(days=7)
#: The service's limits on dependencies: all ``taskIds`` together, and the ends of a range (int32).
MAX_DEPENDENCY_ID_CHARACTERS = 64000
MAX_TASK_ID_NUMBER = 2**31 - 1

#: Properties the client owns, returned by GET as sent.
_PASSTHROUGH = (
    "displayName",
    "commandLine",
    "resourceFiles",
    "outputFiles",
    "environmentSettings",
    "affinityInfo",
    "userIdentity",
    "exitConditions",
    "dependsOn",
    "applicationPackageReferences",
    "containerSettings",
)
_JOB_ACTIONS = ("none", "disable", "terminate")
_DEPENDENCY_ACTIONS = ("satisfy", "block")


class Task(Resource):
    """One task of a job: what the client sent plus its execution state on a simulated node."""

    def __init__(self, job: Job, task_id: str, body: dict[str, Any]) -> None:
        super().__init__(task_id)
        self.job = job
        self.properties: dict[str, Any] = {
            key: body[key] for key in _PASSTHROUGH if body.get(key) is not None
        }
        self.command_line: str = body["commandLine"]
        self.required_slots = get_int(body, "requiredSlots", 1, 1, 256)
        constraints = get_object(body, "constraints") or {}
        self.max_wall_clock = get_duration(
            constraints, "maxWallClockTime", UNBOUNDED, path="constraints/maxWallClockTime"
        )
        self.retention = get_duration(
            constraints, "retentionTime", DEFAULT_RETENTION, path="constraints/retentionTime"
        )
        self.max_retries = get_int(
            constraints,
            "maxTaskRetryCount",
            job.max_task_retry_count,
            -1,
            100,
            "constraints/maxTaskRetryCount",
        )
        self.state = "active"
        self.execution_info: dict[str, Any] = {"retryCount": 0, "requeueCount": 0}
        self.node: Node | None = None
        self.node_info: dict[str, Any] | None = None
        self.cancel_event: asyncio.Event | None = None
        self.cancel_reason: str | None = None
        self.exit_options: dict[str, Any] | None = None
        self.deleted = False

    # ---- derived state

    @property
    def url(self) -> str:
        return f"{self.job.url}/tasks/{quote(self.id)}"

    @property
    def in_flight(self) -> bool:
        return self.cancel_event is not None

    @property
    def succeeded(self) -> bool:
        return self.state == "completed" and self.execution_info.get("result") == "success"

    @property
    def failed(self) -> bool:
        return self.state == "completed" and self.execution_info.get("result") == "failure"

    @property
    def relative_dir(self) -> str:
        return task_directory(self.job.id, self.id)

    def task_dir(self, node: Node) -> Path:
        return node.root / self.relative_dir

    def constraints(self) -> dict[str, Any]:
        return {
            "maxWallClockTime": format_duration(self.max_wall_clock or UNBOUNDED),
            "retentionTime": format_duration(self.retention or DEFAULT_RETENTION),
            "maxTaskRetryCount": self.max_retries,
        }

    def set_state(self, state: str) -> None:
        """Change state; a task's ETag and Last-Modified change only with the client's updates."""
        etag, last_modified = self.etag, self.last_modified
        super().set_state(state)
        self.etag, self.last_modified = etag, last_modified

    def to_dict(self) -> dict[str, Any]:
        document = self.common_properties(self.url)
        document.update(self.properties)
        document["userIdentity"] = service_defaults.user_identity(self.properties.get("userIdentity"))
        if "containerSettings" in self.properties:
            document["containerSettings"] = service_defaults.container_settings(
                self.properties["containerSettings"]
            )
        document.update(
            {
                "state": self.state,
                "stateTransitionTime": format_datetime(self.state_transition_time),
                "constraints": self.constraints(),
                "requiredSlots": self.required_slots,
                "executionInfo": dict(self.execution_info),
            }
        )
        if self.previous_state:
            document["previousState"] = self.previous_state
            if self.previous_state_transition_time is not None:
                document["previousStateTransitionTime"] = format_datetime(self.previous_state_transition_time)
        if self.node_info is not None:
            document["nodeInfo"] = self.node_info
        return document

    def task_info(self) -> dict[str, Any]:
        """The ``recentTasks`` entry of a node."""
        return {
            "taskUrl": self.url,
            "jobId": self.job.id,
            "taskId": self.id,
            "taskState": self.state,
            "executionInfo": dict(self.execution_info),
        }


def _validate_exit_options(options: Any, path: str, job: Job) -> None:
    if options is None:
        return
    action = options.get("jobAction")
    if action is not None:
        if str(action).lower() not in _JOB_ACTIONS:
            raise invalid_property(f"{path}/jobAction", action)
        if str(action).lower() != "none" and job.on_task_failure == "noaction":
            raise invalid_property(
                f"{path}/jobAction",
                action,
                "A job action other than none needs onTaskFailure=performexitoptionsjobaction on the job.",
            )
    dependency_action = options.get("dependencyAction")
    if dependency_action is not None and str(dependency_action).lower() not in _DEPENDENCY_ACTIONS:
        raise invalid_property(f"{path}/dependencyAction", dependency_action)


def _validate_exit_conditions(body: dict[str, Any], job: Job) -> None:
    conditions = get_object(body, "exitConditions")
    if conditions is None:
        return
    for index, mapping in enumerate(get_list(conditions, "exitCodes", "exitConditions/exitCodes") or []):
        _validate_exit_options(
            mapping.get("exitOptions"), f"exitConditions/exitCodes[{index}]/exitOptions", job
        )
    for index, mapping in enumerate(
        get_list(conditions, "exitCodeRanges", "exitConditions/exitCodeRanges") or []
    ):
        _validate_exit_options(
            mapping.get("exitOptions"), f"exitConditions/exitCodeRanges[{index}]/exitOptions", job
        )
    for name in ("preProcessingError", "fileUploadError", "default"):
        _validate_exit_options(conditions.get(name), f"exitConditions/{name}", job)


def _validate_dependencies(body: dict[str, Any], job: Job) -> None:
    depends_on = get_object(body, "dependsOn")
    if depends_on is None:
        return
    if not job.uses_task_dependencies:
        raise BatchError(
            400,
            "TaskDependenciesNotSpecifiedOnJob",
            "A task was specified as depending on other tasks, but the job did not specify that it would use "
            "task dependencies.",
        )
    task_ids = get_list(depends_on, "taskIds", "dependsOn/taskIds") or []
    for task_id in task_ids:
        validate_id(task_id, "dependsOn/taskIds")
    if sum(len(task_id) for task_id in task_ids) > MAX_DEPENDENCY_ID_CHARACTERS:
        raise BatchError(
            400,
            "TaskDependencyListTooLong",
            "The task's dependsOn taskIds exceed the maximum length; use taskIdRanges instead.",
            {"MaxLimit": str(MAX_DEPENDENCY_ID_CHARACTERS)},
        )
    for index, id_range in enumerate(get_list(depends_on, "taskIdRanges", "dependsOn/taskIdRanges") or []):
        path = f"dependsOn/taskIdRanges[{index}]"
        start = get_int(id_range, "start", -1, 0, MAX_TASK_ID_NUMBER, f"{path}/start")
        end = get_int(id_range, "end", -1, 0, MAX_TASK_ID_NUMBER, f"{path}/end")
        if start < 0 or end < start:
            raise invalid_property(path, json.dumps(id_range), "The range needs 0 <= start <= end.")


def task_completed() -> BatchError:
    return conflict("TaskCompleted", "The specified task is already in a completed state.")


class TaskBackend:
    """Task operations: create (one or a collection), get, list, update, terminate, reactivate, delete."""

    def __init__(self, account: BatchAccount) -> None:
        self.account = account

    # ---- lookup

    def get(self, job_id: str, task_id: str) -> Task:
        job = self.account.jobs.get(job_id)
        task = job.tasks.get(task_id.lower())
        if task is None:
            raise resource_not_found("task")
        return task

    def all(self, job_id: str) -> list[Task]:
        return list(self.account.jobs.get(job_id).tasks.values())

    # ---- create

    def build(self, job: Job, body: dict[str, Any]) -> Task:
        """Validate a task body the way the service does and make the task (not yet added)."""
        task_id = validate_id(body.get("id"))
        validate_command_task(body)
        if body.get("multiInstanceSettings") is not None:
            raise not_emulated("Multi-instance (MPI) tasks")
        _validate_exit_conditions(body, job)
        _validate_dependencies(body, job)
        self.account.applications.validate(body.get("applicationPackageReferences"))
        task = Task(job, task_id, body)
        pool = self.account.pools.find(job.pool_id)
        if pool is not None and task.required_slots > pool.task_slots_per_node:
            raise invalid_property(
                "requiredSlots",
                task.required_slots,
                f"The pool's taskSlotsPerNode is {pool.task_slots_per_node}; the task could never run.",
            )
        return task

    def create(self, job_id: str, body: dict[str, Any]) -> Task:
        job = self.account.jobs.get(job_id)
        self.account.jobs.require_accepts_tasks(job)
        task = self.build(job, body)
        if task.id.lower() in job.tasks:
            raise resource_exists("task")
        self._add(job, task)
        return task

    def create_collection(self, job_id: str, body: Any, body_size: int) -> list[dict[str, Any]]:
        """``addtaskcollection``: per-task results, ``clienterror`` for invalid or duplicate tasks."""
        if body_size > MAX_COLLECTION_BYTES:
            raise BatchError(
                413,
                "RequestBodyTooLarge",
                "The request body is too large and exceeds the maximum permissible limit.",
                {"MaxLimit": str(MAX_COLLECTION_BYTES)},
            )
        job = self.account.jobs.get(job_id)
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise missing_property("value")
        if len(values) > MAX_TASKS_PER_COLLECTION:
            raise BatchError(
                413,
                "RequestBodyTooLarge",
                "The number of tasks in the request exceeds the maximum of 100 tasks per request.",
                {"MaxLimit": str(MAX_TASKS_PER_COLLECTION)},
            )
        self.account.jobs.require_accepts_tasks(job)
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in values:
            task_id = item.get("id") if isinstance(item, dict) else None
            try:
                task = self.build(job, item)
                if task.id.lower() in job.tasks or task.id.lower() in seen:
                    raise resource_exists("task")
            except BatchError as err:
                results.append(
                    {
                        "status": "clienterror",
                        "taskId": task_id,
                        "error": err.to_dict(self.account.base_url),
                    }
                )
                continue
            seen.add(task.id.lower())
            self._add(job, task)
            results.append(
                {
                    "status": "success",
                    "taskId": task.id,
                    "eTag": task.etag,
                    "lastModified": format_datetime(task.last_modified),
                    "location": task.url,
                }
            )
        return results

    def _add(self, job: Job, task: Task) -> None:
        job.tasks[task.id.lower()] = task
        self.account.scheduler.kick()

    # ---- update

    def replace(self, job_id: str, task_id: str, body: dict[str, Any]) -> Task:
        """PUT: only the constraints of a task can change."""
        task = self.get(job_id, task_id)
        if task.state == "completed":
            raise task_completed()
        constraints = get_object(body, "constraints") or {}
        task.max_wall_clock = get_duration(constraints, "maxWallClockTime", UNBOUNDED)
        task.retention = get_duration(constraints, "retentionTime", DEFAULT_RETENTION)
        task.max_retries = get_int(constraints, "maxTaskRetryCount", task.job.max_task_retry_count, -1, 100)
        task.touch()
        return task

    def terminate(self, job_id: str, task_id: str) -> Task:
        task = self.get(job_id, task_id)
        if task.state == "completed":
            raise task_completed()
        if task.in_flight:
            self.account.scheduler.cancel(task, "terminate")
        else:
            self.complete(task, failure=failures.cancelled_failure(), exit_code=None, requested=True)
        task.touch()
        return task

    def reactivate(self, job_id: str, task_id: str) -> Task:
        task = self.get(job_id, task_id)
        job = task.job
        self.account.jobs.require_accepts_tasks(job)
        if task.state != "completed":
            raise conflict(
                "TaskNotCompleted",
                "The specified task is not in a completed state, and the requested operation can be "
                "performed only on completed tasks.",
            )
        if task.succeeded:
            raise conflict(
                "TaskSucceeded",
                "The specified task has already completed successfully, and the requested operation cannot "
                "be performed on successful tasks.",
            )
        task.set_state("active")
        task.exit_options = None
        task.execution_info = {
            "retryCount": 0,
            "requeueCount": task.execution_info.get("requeueCount", 0),
        }
        task.touch()
        self.account.scheduler.kick()
        return task

    def delete(self, job_id: str, task_id: str) -> None:
        task = self.get(job_id, task_id)
        task.deleted = True
        task.job.tasks.pop(task.id.lower(), None)
        if task.in_flight:
            self.account.scheduler.cancel(task, "delete")
        self._remove_files(task)
        self.account.jobs.check_all_tasks_complete(task.job)
        self.account.scheduler.kick()

    def _remove_files(self, task: Task) -> None:
        if task.node is not None:
            shutil.rmtree(task.task_dir(task.node), ignore_errors=True)

    # ---- execution results

    def finish_attempt(self, task: Task, result: TaskRunResult) -> None:
        """Fold one attempt's result into the task: requeue, retry or complete."""
        reason, task.cancel_reason, task.cancel_event = task.cancel_reason, None, None
        if task.deleted:
            return
        info = task.execution_info
        now = utcnow()
        if reason == "requeue":
            info["requeueCount"] = info.get("requeueCount", 0) + 1
            info["lastRequeueTime"] = format_datetime(now)
            task.set_state("active")
            return
        info["startTime"] = format_datetime(result.start_time)
        if reason in ("terminate", "job", "delete"):
            self.complete(
                task,
                failure=failures.cancelled_failure(),
                exit_code=result.exit_code,
                end=result.end_time,
                requested=True,
            )
            return
        failure = result.failure_info
        if failure is None and not result.succeeded:
            failure = failures.exit_code_failure()
        # Failed attempts are retried; a task ended for running past maxWallClockTime is not.
        if failure is not None and failure.get("code") != failures.TASK_ENDED and task.max_retries != 0:
            retries = info.get("retryCount", 0)
            if task.max_retries == -1 or retries < task.max_retries:
                info.update(
                    {
                        "retryCount": retries + 1,
                        "lastRetryTime": format_datetime(now),
                        "endTime": format_datetime(result.end_time),
                        "result": "failure",
                        "failureInfo": failure,
                    }
                )
                if result.exit_code is not None:
                    info["exitCode"] = result.exit_code
                task.set_state("active")
                return
        self.complete(task, failure=failure, exit_code=result.exit_code, end=result.end_time)

    def complete(
        self,
        task: Task,
        *,
        failure: dict[str, Any] | None,
        exit_code: int | None,
        end: Any = None,
        requested: bool = False,
    ) -> None:
        """Complete the task; ``requested``: a client ended it (terminate, job end, delete), so its
        exit options take no job action (they answer to how the task's own process ended)."""
        info = task.execution_info
        info["endTime"] = format_datetime(end or utcnow())
        info["result"] = "failure" if failure is not None else "success"
        info.pop("failureInfo", None)
        info.pop("exitCode", None)
        if failure is not None:
            info["failureInfo"] = failure
        if exit_code is not None:
            info["exitCode"] = exit_code
        task.exit_options = self._exit_options(task, failure, exit_code)
        if requested:
            task.exit_options = {**task.exit_options, "jobAction": "none"}
        task.set_state("completed")
        if task.node is not None and failure is None:
            task.node.total_tasks_succeeded += 1
        if task.node is not None:
            task.node.recent_tasks.appendleft(task)
        self._schedule_retention(task)
        jobs = self.account.jobs
        action = (task.exit_options or {}).get("jobAction", "none")
        if failure is not None and action != "none" and task.job.state == "active":
            if action == "terminate":
                jobs.begin_terminate(task.job, "TaskFailed")
            elif action == "disable":
                jobs.begin_disable(task.job, "wait")
        if task.id == task.job.manager_task_id and task.job.manager_kills_job:
            jobs.begin_terminate(task.job, "JMComplete")
        jobs.check_all_tasks_complete(task.job)
        self.account.scheduler.kick()

    def _exit_options(
        self, task: Task, failure: dict[str, Any] | None, exit_code: int | None
    ) -> dict[str, Any]:
        succeeded = failure is None
        if succeeded:
            defaults = {"jobAction": "none", "dependencyAction": "satisfy"}
        else:
            failure_action = (
                "terminate" if task.job.on_task_failure == "performexitoptionsjobaction" else "none"
            )
            defaults = {"jobAction": failure_action, "dependencyAction": "block"}
        conditions = task.properties.get("exitConditions") or {}
        chosen: dict[str, Any] | None = None
        code = str((failure or {}).get("code", ""))
        if failure is not None and exit_code is None and code != "TaskEnded":
            chosen = (
                conditions.get("fileUploadError")
                if "upload" in code.lower()
                else conditions.get("preProcessingError")
            )
        elif failure is not None and "upload" in code.lower():
            chosen = conditions.get("fileUploadError")
        elif exit_code is not None:
            for mapping in conditions.get("exitCodes") or []:
                if int(mapping.get("code")) == exit_code:
                    chosen = mapping.get("exitOptions") or {}
                    break
            else:
                for mapping in conditions.get("exitCodeRanges") or []:
                    if int(mapping["start"]) <= exit_code <= int(mapping["end"]):
                        chosen = mapping.get("exitOptions") or {}
                        break
        if chosen is None and not succeeded:
            chosen = conditions.get("default")
        options = dict(defaults)
        for key, value in (chosen or {}).items():
            if value is not None:
                options[key] = str(value).lower()
        return options

    def _schedule_retention(self, task: Task) -> None:
        retention = task.retention or DEFAULT_RETENTION
        if task.node is None or retention >= timedelta(days=30):
            return

        async def expire() -> None:
            await asyncio.sleep(retention.total_seconds())
            if task.node is not None and task.state == "completed":
                self._remove_files(task)

        self.account.spawn(expire())
