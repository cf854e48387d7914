"""Directories of a task attempt on a simulated node, and the environment its process gets.

Follows the documented node layout: ``shared/``, ``startup/`` and ``fsmounts/`` under the node root,
and for every task a task directory holding ``stdout.txt``, ``stderr.txt``, ``certs/`` and the
working directory ``wd/``. The AZ_BATCH_* variables are the documented ones, each set only for the
kinds of task the documentation lists it for, plus AZ_BATCH_TASK_USER(_IDENTITY), which Microsoft's
sample output of a Linux node shows. The rest of the environment is what such a node gives a task:
``HOME`` is the working directory, ``USER`` the task user, and ``PATH`` ends with the shared and
working directories (so a downloaded ``run.sh`` can be started by name); we put the emulator's Python
first and keep ``LANG``/``LC_ALL``/``TZ``/``TMPDIR`` from the emulator's environment.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_batch_provider.emulator.compute.runner.spec import RunKind, TaskRunSpec

STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
WORKING_DIR = "wd"
#: The directories below a node's root: shared by all tasks, of the start task, of jobs' tasks.
SHARED_DIR = "shared"
STARTUP_DIR = "startup"
WORK_ITEMS_DIR = "workitems"
NODE_DIRECTORIES = (SHARED_DIR, STARTUP_DIR, WORK_ITEMS_DIR)

#: Variables passed through from the emulator's own environment, when set.
_INHERITED = ("LANG", "LC_ALL", "TZ", "TMPDIR")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def job_directory(job_id: str) -> str:
    """A job's directory on a node, relative to the node's root."""
    return f"{WORK_ITEMS_DIR}/{job_id}"


def task_directory(job_id: str, task_id: str) -> str:
    """A task's directory on a node, relative to the node's root, as ``taskRootDirectory`` gives it.

    The job's tasks, its preparation task and its release task all have one.
    """
    return f"{job_directory(job_id)}/job-1/{task_id}"


@dataclass(frozen=True)
class TaskLayout:
    """The paths of one task attempt."""

    node_root: Path
    task_dir: Path

    @property
    def working_dir(self) -> Path:
        return self.task_dir / WORKING_DIR

    @property
    def stdout_path(self) -> Path:
        return self.task_dir / STDOUT_FILE

    @property
    def stderr_path(self) -> Path:
        return self.task_dir / STDERR_FILE

    @property
    def certificates_dir(self) -> Path:
        return self.task_dir / "certs"

    @property
    def shared_dir(self) -> Path:
        return self.node_root / SHARED_DIR

    @property
    def startup_dir(self) -> Path:
        return self.node_root / STARTUP_DIR

    @property
    def mounts_dir(self) -> Path:
        return self.node_root / "fsmounts"

    def create(self) -> None:
        """Create the task's directories and the node's shared one (cheap when they exist)."""
        self.working_dir.mkdir(parents=True, exist_ok=True)
        self.certificates_dir.mkdir(exist_ok=True)
        self.shared_dir.mkdir(parents=True, exist_ok=True)


def layout_for(spec: TaskRunSpec) -> TaskLayout:
    return TaskLayout(
        node_root=Path(os.path.abspath(spec.node_root)), task_dir=Path(os.path.abspath(spec.task_dir))
    )


def _base_environment(layout: TaskLayout, user: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    # The emulator's Python first, so ``python`` in a command line is the one running the emulator.
    directories = [os.path.dirname(sys.executable), os.environ.get("PATH") or _DEFAULT_PATH]
    directories += [str(layout.shared_dir), str(layout.working_dir)]
    env["PATH"] = os.pathsep.join(directory for directory in directories if directory)
    env["HOME"] = str(layout.working_dir)
    env["USER"] = user
    return env


def task_user(spec: TaskRunSpec) -> tuple[str, str | None]:
    """The task user's name and, for an auto-user, its identity (``PoolNonAdmin`` and the like)."""
    identity = spec.user_identity or {}
    if identity.get("userName"):
        return str(identity["userName"]), None
    auto_user = identity.get("autoUser") or {}
    scope = str(auto_user.get("scope") or "pool").lower()
    admin = str(auto_user.get("elevationLevel") or "nonadmin").lower() == "admin"
    label = ("Task" if scope == "task" else "Pool") + ("Admin" if admin else "NonAdmin")
    if scope != "task":
        return "_azbatch", label
    return ("_azbatchtask_start" if spec.kind is RunKind.START_TASK else "_azbatchtask"), label


def batch_variables(spec: TaskRunSpec, layout: TaskLayout) -> dict[str, str]:
    """The AZ_BATCH_* variables the service sets for this kind of task."""
    variables = {
        "AZ_BATCH_ACCOUNT_NAME": spec.account_name,
        "AZ_BATCH_POOL_ID": spec.pool_id,
        "AZ_BATCH_NODE_ID": spec.node_id,
        "AZ_BATCH_NODE_IS_DEDICATED": "true" if spec.node_is_dedicated else "false",
        "AZ_BATCH_NODE_ROOT_DIR": str(layout.node_root),
        "AZ_BATCH_NODE_SHARED_DIR": str(layout.shared_dir),
        "AZ_BATCH_NODE_STARTUP_DIR": str(layout.startup_dir),
        "AZ_BATCH_NODE_MOUNTS_DIR": str(layout.mounts_dir),
        "AZ_BATCH_TASK_DIR": str(layout.task_dir),
        "AZ_BATCH_TASK_WORKING_DIR": str(layout.working_dir),
        "AZ_BATCH_CERTIFICATES_DIR": str(layout.certificates_dir),
    }
    user, identity = task_user(spec)
    variables["AZ_BATCH_TASK_USER"] = user
    if identity is not None:
        variables["AZ_BATCH_TASK_USER_IDENTITY"] = identity
    if spec.account_url:
        variables["AZ_BATCH_ACCOUNT_URL"] = spec.account_url
    if spec.kind is not RunKind.START_TASK:
        if spec.job_id is not None:
            variables["AZ_BATCH_JOB_ID"] = spec.job_id
        if spec.task_id is not None:
            variables["AZ_BATCH_TASK_ID"] = spec.task_id
    if spec.kind in (RunKind.TASK, RunKind.JOB_RELEASE) and spec.job_prep_dir is not None:
        prep_dir = Path(os.path.abspath(spec.job_prep_dir))
        variables["AZ_BATCH_JOB_PREP_DIR"] = str(prep_dir)
        variables["AZ_BATCH_JOB_PREP_WORKING_DIR"] = str(prep_dir / WORKING_DIR)
    for name, directory in spec.app_package_dirs.items():
        variables[name] = str(Path(os.path.abspath(directory)))
    return variables


def task_environment(spec: TaskRunSpec, layout: TaskLayout) -> dict[str, str]:
    """The full environment of the task process: a small base, the task's settings, AZ_BATCH_*.

    The service's variables are applied last, so a task's environment settings cannot shadow them.
    """
    env = _base_environment(layout, task_user(spec)[0])
    env.update(spec.environment)
    env.update(batch_variables(spec, layout))
    return env
