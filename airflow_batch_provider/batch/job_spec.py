"""Job bodies: the body an operator sends, and what differs between a requested job and an existing one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow_batch_provider.batch.durations import to_iso_duration
from airflow_batch_provider.batch.rest import (
    deep_merge,
    drop_none,
    environment_list,
    lower_text,
    metadata_list,
    to_rest,
)
from airflow_batch_provider.exceptions import InvalidInputError

_ON_ALL_COMPLETE = ("noaction", "terminatejob")

_ON_FAILURE = ("noaction", "performexitoptionsjobaction")


def build_job_spec(
    *,
    job_id: str,
    pool_id: str,
    priority: int | None = None,
    max_parallel_tasks: int | None = None,
    max_wall_clock_time: timedelta | float | str | None = None,
    max_task_retry_count: int | None = None,
    job_preparation_task: Mapping[str, Any] | Any | None = None,
    job_release_task: Mapping[str, Any] | Any | None = None,
    common_environment_settings: Mapping[str, Any] | list[Any] | None = None,
    uses_task_dependencies: bool | None = None,
    on_all_tasks_complete: str | None = None,
    on_task_failure: str | None = None,
    metadata: Mapping[str, Any] | list[Any] | None = None,
    display_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``POST /jobs`` body; ``extra`` is merged last."""
    if not pool_id:
        raise InvalidInputError("pool_id is required: a job runs its tasks on one pool.")
    if priority is not None and not (-1000 <= int(priority) <= 1000):
        raise InvalidInputError(f"priority must be between -1000 and 1000, got {priority}.")
    if max_parallel_tasks is not None and max_parallel_tasks != -1 and max_parallel_tasks < 1:
        raise InvalidInputError(
            f"max_parallel_tasks must be -1 (unlimited) or ≥ 1, got {max_parallel_tasks}."
        )
    if on_all_tasks_complete is not None and on_all_tasks_complete.lower() not in _ON_ALL_COMPLETE:
        raise InvalidInputError(
            f"on_all_tasks_complete must be one of {', '.join(_ON_ALL_COMPLETE)}, "
            f"got {on_all_tasks_complete!r}."
        )
    if on_task_failure is not None and on_task_failure.lower() not in _ON_FAILURE:
        raise InvalidInputError(
            f"on_task_failure must be one of {', '.join(_ON_FAILURE)}, got {on_task_failure!r}."
        )
    constraints = drop_none(
        {
            "maxWallClockTime": to_iso_duration(max_wall_clock_time, "max_wall_clock_time"),
            "maxTaskRetryCount": max_task_retry_count,
        }
    )
    spec: dict[str, Any] = {
        "id": job_id,
        "displayName": display_name,
        "poolInfo": {"poolId": pool_id},
        "priority": priority,
        "maxParallelTasks": max_parallel_tasks,
        "constraints": constraints or None,
        "jobPreparationTask": to_rest(job_preparation_task) if job_preparation_task is not None else None,
        "jobReleaseTask": to_rest(job_release_task) if job_release_task is not None else None,
        "commonEnvironmentSettings": environment_list(common_environment_settings),
        "usesTaskDependencies": uses_task_dependencies,
        "onAllTasksComplete": on_all_tasks_complete.lower() if on_all_tasks_complete else None,
        "onTaskFailure": on_task_failure.lower() if on_task_failure else None,
        "metadata": metadata_list(metadata),
    }
    spec = drop_none(spec)
    if extra:
        spec = deep_merge(spec, to_rest(dict(extra)))
    return spec


def job_differences(requested: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """Why an existing job cannot take the requested job's tasks (empty when it can)."""
    diffs: list[str] = []
    want_pool = (requested.get("poolInfo") or {}).get("poolId")
    have_pool = (existing.get("poolInfo") or {}).get("poolId")
    if want_pool and lower_text(want_pool) != lower_text(have_pool):
        diffs.append(f"poolInfo.poolId: existing {have_pool!r}, requested {want_pool!r}")
    state = lower_text(existing.get("state"))
    if state and state not in ("active", "disabled", "disabling", "enabling"):
        diffs.append(f"state: the existing job is {state!r} and accepts no new tasks")
    if bool(requested.get("usesTaskDependencies")) and not bool(existing.get("usesTaskDependencies")):
        diffs.append("usesTaskDependencies: existing False, requested True")
    return diffs
