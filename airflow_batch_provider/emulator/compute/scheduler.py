"""Places active tasks on free node slots and drives their attempts through the runner.

Everything here runs on the emulator's event loop; processes are awaited, never waited for, and the
runner starts them on worker threads, so the API stays responsive while hundreds of tasks run. Jobs
of higher priority go first; jobs of equal priority take turns, one task each, so no job starves
another. A pool's ``nodeFillType`` decides between spreading tasks over nodes and packing them onto
the fullest node that still fits.

No task can wedge the scheduler: whatever a task carries, if it cannot be placed or started, that
task completes with a ``usererror`` failure and every other task goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_batch_provider.batch.durations import UNBOUNDED, parse_duration
from airflow_batch_provider.batch.node_environment import linux_variable_name
from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.app_packages import extract_package
from airflow_batch_provider.emulator.compute.runner.containers import ContainerSettings
from airflow_batch_provider.emulator.compute.runner.layout import task_directory
from airflow_batch_provider.emulator.compute.runner.spec import RunKind, TaskRunResult, TaskRunSpec
from airflow_batch_provider.emulator.dependencies import CompletedTasks
from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.models.base import environment_dict
from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.compute.runner.executor import TaskExecutor
    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.models.jobs import Job
    from airflow_batch_provider.emulator.models.nodes import Node
    from airflow_batch_provider.emulator.models.pools import Pool
    from airflow_batch_provider.emulator.models.tasks import Task

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs one attempt of a task as a process (the runner's ``TaskExecutor``)."""

    async def run(self, spec: TaskRunSpec, cancel: asyncio.Event) -> TaskRunResult: ...


def _seconds(duration: timedelta | None) -> float | None:
    if duration is None or duration >= UNBOUNDED:
        return None
    return duration.total_seconds()


class Scheduler:
    """The account's task scheduler: wakes on every change, fills free slots, records outcomes."""

    def __init__(self, account: BatchAccount, executor: Executor | None = None) -> None:
        self.account = account
        self._executor = executor
        #: The runner's executor when the scheduler made it (then it is closed at shutdown).
        self._own_executor: TaskExecutor | None = None
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._cancels: set[asyncio.Event] = set()
        self._runs: set[asyncio.Task[Any]] = set()
        self._turns = itertools.count(1)

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            from airflow_batch_provider.emulator.compute.runner.executor import TaskExecutor

            self._own_executor = TaskExecutor()
            self._executor = self._own_executor
        return self._executor

    def start(self) -> None:
        # Made before the first request, not at the first task: importing the runner (the storage SDK,
        # aiohttp) takes a few tenths of a second, which would stall requests served meanwhile.
        _ = self.executor
        self._wake = asyncio.Event()
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        self._wake.set()

    def kick(self) -> None:
        """Ask for a scheduling pass soon (cheap; passes coalesce)."""
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.schedule()
            except Exception:
                log.exception("scheduling pass failed")
            await asyncio.sleep(0)

    async def shutdown(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for cancel in list(self._cancels):
            cancel.set()
        if self._runs:
            await asyncio.wait(list(self._runs), timeout=10)
        if self._own_executor is not None:
            self._own_executor.close()

    # ---- placement

    def schedule(self) -> None:
        jobs_by_pool: dict[str, list[Job]] = {}
        for job in self.account.jobs.all():
            if job.state == "active" and job.pool_id:
                jobs_by_pool.setdefault(job.pool_id.lower(), []).append(job)
        for jobs in jobs_by_pool.values():
            pool = self.account.pools.find(jobs[0].pool_id)
            if pool is not None and pool.state == "active":
                self._schedule_pool(pool, jobs)

    def _schedule_pool(self, pool: Pool, jobs: list[Job]) -> None:
        nodes = [node for node in pool.nodes.values() if node.schedulable and node.free_slots > 0]
        if not nodes:
            return
        # Highest priority first; within a priority, the job served least recently goes first.
        jobs.sort(key=lambda job: (-job.priority, job.last_served, job.creation_time))
        for _, group in itertools.groupby(jobs, key=lambda job: job.priority):
            queues = [(job, self._ready_tasks(job, pool)) for job in group]
            while queues:
                for entry in list(queues):
                    job, queue = entry
                    if job.max_parallel_tasks != -1 and job.running_tasks >= job.max_parallel_tasks:
                        queues.remove(entry)
                        continue
                    task = next(queue, None)
                    if task is None:
                        queues.remove(entry)
                        continue
                    try:
                        node = self._pick_node(pool, nodes, task)
                        if node is not None:
                            self._dispatch(task, node)
                    except Exception as err:  # the task's own data, not the pass, is at fault
                        self._fail_unstartable(task, err)
                nodes = [node for node in nodes if node.free_slots > 0]
                if not nodes:
                    return

    def _ready_tasks(self, job: Job, pool: Pool) -> Iterator[Task]:
        completed = CompletedTasks(job)
        for task in list(job.tasks.values()):
            if task.state != "active" or task.in_flight or task.required_slots > pool.task_slots_per_node:
                continue
            try:
                ready = completed.state_of(task) == "ready"
            except Exception as err:
                self._fail_unstartable(task, err)
                continue
            if ready:
                yield task

    def _fail_unstartable(self, task: Task, err: Exception) -> None:
        """Complete ``task``, which cannot be scheduled or started, with a ``usererror`` failure."""
        log.warning("task %s/%s cannot run and fails: %r", task.job.id, task.id, err)
        if task.node is not None and task.node.running.pop(id(task), None) is not None:
            task.node.refresh_state()
        task.cancel_event = task.cancel_reason = None
        failure = failures.invalid_task_failure(err)
        try:
            self.account.tasks.complete(task, failure=failure, exit_code=None)
        except Exception:  # e.g. exit conditions that cannot be evaluated: complete it plainly
            log.exception("task %s/%s: its exit conditions could not be applied", task.job.id, task.id)
            task.execution_info.update(
                {"endTime": format_datetime(utcnow()), "result": "failure", "failureInfo": failure}
            )
            task.exit_options = {"jobAction": "none", "dependencyAction": "block"}
            task.set_state("completed")

    @staticmethod
    def _pick_node(pool: Pool, nodes: list[Node], task: Task) -> Node | None:
        fitting = [
            node
            for node in nodes
            if node.free_slots >= task.required_slots
            and node.schedulable
            and node.id not in task.job.excluded_nodes
        ]
        if not fitting:
            return None
        affinity = str((task.properties.get("affinityInfo") or {}).get("affinityId") or "")
        preferred = [node for node in fitting if affinity and affinity == f"TVM:{node.id}"]
        if preferred:
            return preferred[0]
        if pool.node_fill_type == "pack":
            return min(fitting, key=lambda node: node.free_slots)
        return max(fitting, key=lambda node: node.free_slots)

    def _dispatch(self, task: Task, node: Node) -> None:
        task.cancel_event = asyncio.Event()
        task.cancel_reason = None
        task.job.last_served = next(self._turns)
        task.node = node
        node.running[id(task)] = task
        node.total_tasks_run += 1
        node.refresh_state()
        prepared = task.job.preparation_task is None or self._prepared(task.job, node)
        task.set_state("running" if prepared else "preparing")
        task.execution_info["startTime"] = format_datetime(utcnow())
        for key in ("endTime", "exitCode", "result", "failureInfo"):
            task.execution_info.pop(key, None)
        task.node_info = {
            "affinityId": f"TVM:{node.id}",
            "nodeUrl": node.url,
            "poolId": node.pool.id,
            "nodeId": node.id,
            **self._directory_info(node, task.relative_dir),
        }
        run = self.account.spawn(self._execute(task, node, task.cancel_event))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    def cancel(self, task: Task, reason: str) -> None:
        """Stop ``task``'s attempt: ``requeue`` (back to active), ``terminate``/``job`` or ``delete``."""
        if task.cancel_event is not None and not task.cancel_event.is_set():
            task.cancel_reason = reason
            task.cancel_event.set()

    # ---- execution

    async def _execute(self, task: Task, node: Node, cancel: asyncio.Event) -> None:
        job = task.job
        result: TaskRunResult | None = None
        try:
            if job.preparation_task is not None and not await self.ensure_preparation(job, node):
                if not cancel.is_set():
                    job.excluded_nodes.add(node.id)
                    task.cancel_reason = "requeue"
            elif cancel.is_set():
                pass
            else:
                task.set_state("running")
                result = await self._run_task(task, node, cancel)
        except Exception as err:  # e.g. a job preparation task that cannot even be set up
            log.warning("task %s/%s cannot start: %r", job.id, task.id, err)
            now = utcnow()
            result = TaskRunResult(now, now, None, failures.invalid_task_failure(err))
        finally:
            node.running.pop(id(task), None)
            node.refresh_state()
        if result is None:
            now = utcnow()
            result = TaskRunResult(start_time=now, end_time=now, exit_code=None, cancelled=True)
            task.cancel_reason = task.cancel_reason or "requeue"
        try:
            self.account.tasks.finish_attempt(task, result)
        except Exception as err:  # the task's exit conditions or retry settings cannot be applied
            self._fail_unstartable(task, err)
        self.kick()

    async def _run_task(self, task: Task, node: Node, cancel: asyncio.Event) -> TaskRunResult:
        """Run ``task``'s command line on ``node``; a task that cannot be set up fails as a user error."""
        started = utcnow()
        try:
            environment = environment_dict(
                task.job.properties.get("commonEnvironmentSettings"),
                task.properties.get("environmentSettings"),
            )
            retry_count = int(task.execution_info.get("retryCount", 0))
            wall_clock = _seconds(task.max_wall_clock)
        except Exception as err:
            log.warning("task %s/%s cannot start: %r", task.job.id, task.id, err)
            return TaskRunResult(started, utcnow(), None, failures.invalid_task_failure(err))
        return await self.run_process(
            RunKind.TASK,
            node,
            {"commandLine": task.command_line, **task.properties},
            task.task_dir(node),
            environment=environment,
            job_id=task.job.id,
            task_id=task.id,
            retry_count=retry_count,
            max_wall_clock_seconds=wall_clock,
            cancel=cancel,
        )

    def _preparation_dir(self, job_id: str | None, node: Node) -> Path | None:
        if job_id is None:
            return None
        job = self.account.jobs.find(job_id)
        if job is None or job.preparation_task is None:
            return None
        return node.root / task_directory(job.id, str(job.preparation_task["id"]))

    def _prepared(self, job: Job, node: Node) -> bool:
        run = job.preparations.get(node.id)
        return run is not None and run.done() and not run.cancelled() and run.result()

    async def ensure_preparation(self, job: Job, node: Node) -> bool:
        """Run the job preparation task once per node (concurrent tasks share the run)."""
        run = job.preparations.get(node.id)
        if run is None:
            run = self.account.spawn(self._run_preparation(job, node))
            job.preparations[node.id] = run
        return await asyncio.shield(run)

    async def _run_preparation(self, job: Job, node: Node) -> bool:
        assert job.preparation_task is not None
        spec = job.preparation_task
        status = job.node_status.setdefault(node.id, {"node": node})
        relative = task_directory(job.id, spec["id"])
        max_retries = int((spec.get("constraints") or {}).get("maxTaskRetryCount", 0))
        retry = 0
        while True:
            info = self._started_info(node, relative, retryCount=retry)
            status["preparation"] = info
            wall_clock = parse_duration((spec.get("constraints") or {}).get("maxWallClockTime", "P10675199D"))
            result = await self.run_process(
                RunKind.JOB_PREPARATION,
                node,
                spec,
                node.root / relative,
                environment=environment_dict(
                    job.properties.get("commonEnvironmentSettings"), spec.get("environmentSettings")
                ),
                job_id=job.id,
                task_id=spec["id"],
                retry_count=retry,
                max_wall_clock_seconds=_seconds(wall_clock),
            )
            self._record(info, result)
            if result.succeeded:
                return True
            if result.cancelled or (max_retries != -1 and retry >= max_retries):
                return not spec.get("waitForSuccess", True)
            retry += 1
            info["lastRetryTime"] = format_datetime(utcnow())

    async def run_job_release(self, job: Job, node: Node) -> None:
        assert job.release_task is not None
        spec = job.release_task
        status = job.node_status.setdefault(node.id, {"node": node})
        relative = task_directory(job.id, spec["id"])
        info = self._started_info(node, relative)
        status["release"] = info
        result = await self.run_process(
            RunKind.JOB_RELEASE,
            node,
            spec,
            node.root / relative,
            environment=environment_dict(
                job.properties.get("commonEnvironmentSettings"), spec.get("environmentSettings")
            ),
            job_id=job.id,
            task_id=spec["id"],
            max_wall_clock_seconds=_seconds(parse_duration(str(spec.get("maxWallClockTime", "PT15M")))),
        )
        self._record(info, result)

    @staticmethod
    def _directory_info(node: Node, relative: str) -> dict[str, str]:
        """Where a task's directory is on ``node``: its path and its URL, as the service gives them."""
        return {"taskRootDirectory": relative, "taskRootDirectoryUrl": f"{node.url}/files/{relative}"}

    def _started_info(self, node: Node, relative: str, **extra: Any) -> dict[str, Any]:
        """The execution info of a job preparation or release task that starts now on ``node``."""
        return {
            "state": "running",
            "startTime": format_datetime(utcnow()),
            **self._directory_info(node, relative),
            **extra,
        }

    @staticmethod
    def _record(info: dict[str, Any], result: TaskRunResult) -> None:
        info.update(
            {
                "state": "completed",
                "startTime": format_datetime(result.start_time),
                "endTime": format_datetime(result.end_time),
                "result": result.result,
            }
        )
        if result.exit_code is not None:
            info["exitCode"] = result.exit_code
        if result.failure_info is not None:
            info["failureInfo"] = result.failure_info
        elif not result.succeeded:
            info["failureInfo"] = failures.exit_code_failure()

    async def _install_packages(self, node: Node, references: list[dict[str, Any]]) -> dict[str, Path]:
        """Extract the referenced packages on the node; AZ_BATCH_APP_PACKAGE_* name -> directory."""
        directories: dict[str, Path] = {}
        for reference, package in self.account.applications.validate(references):
            # A fingerprint of the zip in the name: a version overwritten since is installed afresh.
            stat = package.zip_path.stat()
            fingerprint = f"{package.zip_path}:{stat.st_size}:{stat.st_mtime_ns}".encode()
            name = (
                f"{package.application_id}#{package.version}#{hashlib.sha256(fingerprint).hexdigest()[:10]}"
            )
            target = node.root / "applications" / name
            await extract_package(package.zip_path, target)
            # Without a version in the reference, the variable carries the application id only.
            version = package.version if reference.get("version") else None
            directories[linux_variable_name(package.application_id, version)] = target
        return directories

    async def run_process(
        self,
        kind: RunKind,
        node: Node,
        task: dict[str, Any],
        task_dir: Path,
        *,
        environment: dict[str, str] | None = None,
        job_id: str | None = None,
        task_id: str | None = None,
        retry_count: int = 0,
        max_wall_clock_seconds: float | None = None,
        cancel: asyncio.Event | None = None,
    ) -> TaskRunResult:
        """Run one process through the runner and return its result (never raises for its failures)."""
        started = utcnow()
        try:
            spec = self._run_spec(
                kind,
                node,
                task,
                task_dir,
                environment=environment,
                job_id=job_id,
                task_id=task_id,
                retry_count=retry_count,
                max_wall_clock_seconds=max_wall_clock_seconds,
            )
        except Exception as err:  # what the task carries cannot be run: its failure, not the runner's
            log.warning("%s on %s cannot start: %r", task_id or kind.value, node.id, err)
            return TaskRunResult(started, utcnow(), None, failures.invalid_task_failure(err))
        cancel = cancel or asyncio.Event()
        self._cancels.add(cancel)
        try:
            return await self._run_spec_on(spec, node, task, cancel, started)
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            self._cancels.discard(cancel)

    def _run_spec(
        self,
        kind: RunKind,
        node: Node,
        task: dict[str, Any],
        task_dir: Path,
        *,
        environment: dict[str, str] | None,
        job_id: str | None,
        task_id: str | None,
        retry_count: int,
        max_wall_clock_seconds: float | None,
    ) -> TaskRunSpec:
        """What the runner needs to run ``task`` (raises if the task's properties have wrong shapes)."""
        return TaskRunSpec(
            kind=kind,
            account_name=self.account.name,
            pool_id=node.pool.id,
            node_id=node.id,
            command_line=str(task["commandLine"]),
            node_root=node.root,
            task_dir=task_dir,
            job_id=job_id,
            task_id=task_id,
            environment=dict(environment or {}),
            resource_files=list(task.get("resourceFiles") or []),
            output_files=list(task.get("outputFiles") or []),
            max_wall_clock_seconds=max_wall_clock_seconds,
            auto_storage_connection_string=self.account.settings.storage_connection_string,
            retry_count=retry_count,
            account_url=self.account.base_url,
            node_is_dedicated=node.is_dedicated,
            job_prep_dir=self._preparation_dir(job_id, node),
            user_identity=task.get("userIdentity"),
            container=self._container_settings(node.pool, task),
            container_engine=self.account.container_engine,
            pool_runs_containers=node.pool.container_configuration is not None,
        )

    @staticmethod
    def _container_settings(pool: Pool, task: dict[str, Any]) -> ContainerSettings | None:
        settings = task.get("containerSettings")
        if not settings:
            return None
        registries = (pool.container_configuration or {}).get("containerRegistries") or []
        return ContainerSettings.from_task(settings, registries)

    async def _run_spec_on(
        self, spec: TaskRunSpec, node: Node, task: dict[str, Any], cancel: asyncio.Event, started: datetime
    ) -> TaskRunResult:
        task_id = spec.task_id or spec.kind.value
        try:
            references = [
                *(node.pool.properties.get("applicationPackageReferences") or []),
                *(task.get("applicationPackageReferences") or []),
            ]
            if references:
                try:
                    app_package_dirs = await self._install_packages(node, references)
                except (BatchError, OSError, zipfile.BadZipFile) as err:
                    # The service fails the task (pre-processing) when a package cannot be deployed.
                    reason = (
                        err.values.get("Reason", err.message) if isinstance(err, BatchError) else str(err)
                    )
                    return TaskRunResult(
                        start_time=started,
                        end_time=utcnow(),
                        exit_code=None,
                        failure_info=failures.failure_info(
                            failures.USER_ERROR,
                            failures.APPLICATION_PACKAGE_ERROR,
                            "An application package required by the task could not be deployed",
                            {"Message": reason},
                        ),
                    )
                spec = replace(spec, app_package_dirs=app_package_dirs)
            return await self.executor.run(spec, cancel)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("the runner failed to run %s on %s", task_id, node.id)
            return TaskRunResult(
                start_time=started,
                end_time=utcnow(),
                exit_code=None,
                failure_info={
                    "category": "servererror",
                    "code": "TaskRunnerError",
                    "message": f"The emulator could not run the task: {err}",
                    "details": [],
                },
            )
