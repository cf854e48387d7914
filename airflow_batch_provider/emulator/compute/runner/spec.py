"""The contract between the scheduler and the runner: what to run, and what came of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_batch_provider.emulator.compute.runner.containers import ContainerSettings


class RunKind(str, enum.Enum):
    """Which kind of Batch task a run is; it decides the directory layout and AZ_BATCH_* variables."""

    TASK = "task"
    START_TASK = "starttask"
    JOB_PREPARATION = "jobpreparation"
    JOB_RELEASE = "jobrelease"


@dataclass(frozen=True)
class TaskRunSpec:
    """Everything the runner needs to execute one attempt of a task on one simulated node.

    ``resource_files`` and ``output_files`` are the service's JSON shapes (camelCase keys), exactly as
    the client sent them. ``task_dir`` is laid out by the runner: ``wd/``, ``stdout.txt``,
    ``stderr.txt``.
    """

    kind: RunKind
    account_name: str
    pool_id: str
    node_id: str
    command_line: str
    node_root: Path
    task_dir: Path
    job_id: str | None = None
    task_id: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    resource_files: list[dict[str, Any]] = field(default_factory=list)
    output_files: list[dict[str, Any]] = field(default_factory=list)
    max_wall_clock_seconds: float | None = None
    #: AZ_BATCH_APP_PACKAGE_* variable name -> extracted package directory.
    app_package_dirs: dict[str, Path] = field(default_factory=dict)
    #: Connection string of the auto-storage account (Azurite), for ``autoStorageContainerName``.
    auto_storage_connection_string: str | None = None
    retry_count: int = 0
    #: URL of the Batch account, for AZ_BATCH_ACCOUNT_URL (set only when given).
    account_url: str | None = None
    #: False for a Spot/low-priority node; AZ_BATCH_NODE_IS_DEDICATED.
    node_is_dedicated: bool = True
    #: Task directory of the job's preparation task on this node, if the job has one; gives
    #: AZ_BATCH_JOB_PREP_DIR and AZ_BATCH_JOB_PREP_WORKING_DIR to its tasks and release task.
    job_prep_dir: Path | None = None
    #: The task's ``userIdentity`` as the client sent it (``userName`` or ``autoUser``); None means
    #: the default non-admin pool auto-user. Gives AZ_BATCH_TASK_USER / AZ_BATCH_TASK_USER_IDENTITY.
    user_identity: dict[str, Any] | None = None
    #: The task's ``containerSettings`` (with its pool's registries): it runs in a container.
    container: ContainerSettings | None = None
    #: The engine that runs containers (None: none was found on this machine).
    container_engine: str | None = None
    #: Whether the task's pool has a ``containerConfiguration`` (container tasks need one).
    pool_runs_containers: bool = False


@dataclass
class TaskRunResult:
    """The outcome of one attempt, ready to be copied into the task's ``executionInfo``.

    ``failure_info`` uses the service's JSON shape: ``{"category": "usererror"|"servererror",
    "code": ..., "message": ..., "details": [{"name": ..., "value": ...}]}``.
    """

    start_time: datetime
    end_time: datetime
    exit_code: int | None
    failure_info: dict[str, Any] | None = None
    timed_out: bool = False
    cancelled: bool = False

    @property
    def succeeded(self) -> bool:
        return self.failure_info is None and self.exit_code == 0

    @property
    def result(self) -> str:
        return "success" if self.succeeded else "failure"
