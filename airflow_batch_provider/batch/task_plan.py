"""Task bodies and the plan of a task collection: tasks in the REST shape, their output files and SAS
URLs, common settings, ids, and :func:`plan_task_collection`, which turns it all into checked bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from airflow_batch_provider.batch.durations import parse_iso_duration, to_timedelta
from airflow_batch_provider.batch.ids import MAX_BATCH_ID_LENGTH, make_batch_id
from airflow_batch_provider.batch.rest import deep_merge, environment_list, to_rest
from airflow_batch_provider.batch.validation import validate_sas_lifetime, validate_task_collection
from airflow_batch_provider.exceptions import InvalidInputError

_UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")


def container_destination(
    container_url: str, path: str | None = None, identity_reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``OutputFileDestination`` for a blob container (SAS URL, or plain URL with an identity)."""
    container: dict[str, Any] = {"containerUrl": container_url}
    if path:
        container["path"] = path
    if identity_reference:
        container["identityReference"] = to_rest(dict(identity_reference))
    return {"container": container}


def output_file(
    file_pattern: str,
    container_url: str,
    path: str | None = None,
    upload_condition: str = "tasksuccess",
    identity_reference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``outputFiles`` entry."""
    condition = upload_condition.lower()
    if condition not in _UPLOAD_CONDITIONS:
        raise InvalidInputError(
            f"upload_condition must be one of {', '.join(_UPLOAD_CONDITIONS)}, got {upload_condition!r}."
        )
    return {
        "filePattern": file_pattern,
        "destination": container_destination(container_url, path, identity_reference),
        "uploadOptions": {"uploadCondition": condition},
    }


def std_log_output_files(
    container_url: str, path: str, identity_reference: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Upload the task's stdout.txt and stderr.txt on completion (success or failure).

    The pattern is relative to the task's working directory, whose parent holds the two logs.
    """
    return [output_file("../std*.txt", container_url, path.rstrip("/"), "taskcompletion", identity_reference)]


def normalize_task(task: Any) -> dict[str, Any]:
    """One task in the REST shape (``commandLine``, ``resourceFiles``...)."""
    if isinstance(task, str):
        raise InvalidInputError(
            f"A task must be a dict or a BatchTaskCreateOptions, not a string ({task[:60]!r}); "
            "use {'id': ..., 'command_line': ...}."
        )
    rest = to_rest(task)
    if not isinstance(rest, dict):
        raise InvalidInputError(
            f"A task must be a dict or a BatchTaskCreateOptions, got {type(task).__name__}."
        )
    if "environmentSettings" in rest and isinstance(rest["environmentSettings"], Mapping):
        rest["environmentSettings"] = environment_list(rest["environmentSettings"])
    return rest


def sas_urls_in_task(task: Mapping[str, Any]) -> list[str]:
    """Every URL in a task's resource and output files that carries a SAS signature."""
    urls: list[str] = []
    for resource in task.get("resourceFiles") or []:
        for key in ("httpUrl", "storageContainerUrl"):
            url = resource.get(key)
            if isinstance(url, str) and "sig=" in url:
                urls.append(url)
    for output in task.get("outputFiles") or []:
        url = ((output.get("destination") or {}).get("container") or {}).get("containerUrl")
        if isinstance(url, str) and "sig=" in url:
            urls.append(url)
    return urls


def strip_sas(url: str) -> str:
    """A URL without its query string (so no SAS reaches logs or XCom)."""
    return url.split("?", 1)[0]


# -- planning a task collection ---------------------------------------------------------------------

#: SAS lifetime when neither the job nor the tasks bound their run time.
DEFAULT_UNBOUNDED_SAS_TTL = timedelta(days=7)
#: The longest SAS lifetime and queue margin a plan works with (ten years).
MAX_SAS_TTL = timedelta(days=3650)
_ACCEPTS_TASKS = ("active", "disabled", "disabling", "enabling", "")


def job_accepts_tasks(job: Mapping[str, Any]) -> bool:
    """Whether the job's state still takes new tasks (a completed or terminating job does not)."""
    return str(job.get("state") or "").lower() in _ACCEPTS_TASKS


def needed_sas_lifetime(
    job: Mapping[str, Any], task_constraints: Mapping[str, Any] | None, queue_margin: Any
) -> tuple[timedelta, str]:
    """How long the tasks may need their SAS URLs, and why: the job's max wall clock (else the tasks')
    plus ``queue_margin``, or a default when neither bounds the run time."""
    margin = to_timedelta(queue_margin, "queue_margin", maximum=MAX_SAS_TTL) or timedelta(0)
    job_clock = parse_iso_duration((job.get("constraints") or {}).get("maxWallClockTime"))
    if job_clock is not None and job_clock < MAX_SAS_TTL:
        return job_clock + margin, f"job max wall clock {job_clock} + queue margin {margin}"
    task_clock = to_timedelta(
        to_rest(dict(task_constraints or {})).get("maxWallClockTime"), "constraints.maxWallClockTime"
    )
    if task_clock is not None and task_clock < MAX_SAS_TTL:
        return task_clock + margin, f"task max wall clock {task_clock} + queue margin {margin}"
    return DEFAULT_UNBOUNDED_SAS_TTL, "no max wall clock on the job or tasks, so a default"


def number_tasks(tasks: list[dict[str, Any]], id_prefix: str) -> list[dict[str, Any]]:
    """Give every task its final id: its local id (its own, else its position, zero-padded), after
    ``id_prefix`` if there is one; a prefixed id longer than the service allows gets a hash."""
    width = max(5, len(str(len(tasks))))
    for index, task in enumerate(tasks):
        local = str(task.get("id") or f"{index:0{width}d}")
        full = f"{id_prefix}{local}"
        task["id"] = full if not id_prefix or len(full) <= MAX_BATCH_ID_LENGTH else make_batch_id(full)
    return tasks


def check_dependencies(tasks: list[dict[str, Any]], job: Mapping[str, Any], job_id: str) -> None:
    """Refuse tasks with ``dependsOn`` for a job created without task dependencies."""
    if job.get("usesTaskDependencies"):
        return
    dependent = [task["id"] for task in tasks if task.get("dependsOn")]
    if dependent:
        raise InvalidInputError(
            f"{len(dependent)} task(s) declare dependsOn ({', '.join(dependent[:5])}) but job "
            f"{job_id!r} was created without uses_task_dependencies=True; the service would reject them."
        )


@dataclass(frozen=True)
class CommonSettings:
    """What is added to every task of a collection, in the REST shape; a task's own values win."""

    defaults: dict[str, Any] = field(default_factory=dict)
    resource_files: list[dict[str, Any]] = field(default_factory=list)
    environment: list[dict[str, Any]] = field(default_factory=list)
    constraints: dict[str, Any] = field(default_factory=dict)
    required_slots: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def apply(self, task: dict[str, Any]) -> dict[str, Any]:
        """The task with the common settings under it: the task's own values win."""
        merged = deep_merge(self.defaults, task) if self.defaults else dict(task)
        if self.resource_files:
            merged["resourceFiles"] = [*self.resource_files, *(merged.get("resourceFiles") or [])]
        if self.environment:
            env = {item["name"]: item.get("value") for item in self.environment}
            env.update({item["name"]: item.get("value") for item in merged.get("environmentSettings") or []})
            merged["environmentSettings"] = [{"name": k, "value": v} for k, v in env.items()]
        if self.constraints:
            merged["constraints"] = deep_merge(self.constraints, merged.get("constraints") or {})
        if self.required_slots is not None and "requiredSlots" not in merged:
            merged["requiredSlots"] = self.required_slots
        for key, value in self.extras.items():
            merged.setdefault(key, value)
        return merged


@dataclass(frozen=True)
class OutputSettings:
    """Where every task's output files go: ``<base_path>/<task id>/`` in the container at
    ``container_url`` (a SAS URL, or a plain URL with ``identity_reference``)."""

    container_url: str
    base_path: str
    patterns: tuple[str, ...] = ()
    upload_std_logs: bool = True
    identity_reference: dict[str, Any] | None = None

    def files_for(self, task_id: str) -> list[dict[str, Any]]:
        """The ``outputFiles`` entries of one task."""
        path = f"{self.base_path.strip('/')}/{task_id}"
        # A pattern without wildcards names one file, and Batch then takes ``path`` as the blob name
        # itself: keep the file's name under the task's folder, as wildcard patterns do.
        files = [
            output_file(
                pattern,
                self.container_url,
                path if any(char in "*?[" for char in pattern) else f"{path}/{PurePosixPath(pattern).name}",
                "tasksuccess",
                self.identity_reference,
            )
            for pattern in self.patterns
        ]
        if self.upload_std_logs:
            files.extend(std_log_output_files(self.container_url, f"{path}/logs", self.identity_reference))
        return files


def plan_task_collection(
    tasks: list[dict[str, Any]],
    common: CommonSettings,
    outputs: OutputSettings | None,
    *,
    task_slots_per_node: int | None,
    pool_id: str | None,
    sas_needed_until: datetime,
    sas_reason: str,
) -> list[dict[str, Any]]:
    """The task bodies to send: numbered tasks with the common settings and output files, every one
    checked (ids, commands, slots, output collisions, size, SAS lifetimes) before anything is sent."""
    final = []
    for task in tasks:
        body = common.apply(task)
        extra = outputs.files_for(body["id"]) if outputs else []
        if extra:
            body["outputFiles"] = [*(body.get("outputFiles") or []), *extra]
        final.append(body)
    validate_task_collection(final, task_slots_per_node=task_slots_per_node, pool_id=pool_id)
    validate_sas_lifetime(
        (url for task in final for url in sas_urls_in_task(task)),
        needed_until=sas_needed_until,
        reason=sas_reason,
    )
    return final
