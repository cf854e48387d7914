"""Runs one attempt of a task on a simulated node, the way a Batch node agent does.

The phases, each of which may end the attempt with a documented ``failureInfo``:

1. lay out the task directory and download the resource files (pre-processing: on failure the
   command line never runs and ``exit_code`` is ``None``);
2. run the command line (not under a shell, see :mod:`.process`) with stdout/stderr in the task
   directory, killing the whole process tree on ``maxWallClockTime`` or on ``cancel``; whatever
   the process leaves running when it exits is ended too (see :mod:`.containment`). A task with
   ``containerSettings`` runs its command line in its image through the engine (see :mod:`.containers`),
   the image pulled first if absent; the container is killed and removed with the task;
3. upload the output files whose ``uploadCondition`` the outcome meets, after the process exited.

``maxWallClockTime`` counts from the start of the attempt, so it covers downloads and the process.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.containers import (
    ContainerError,
    container_name,
    ensure_image,
    run_command,
    stop_container,
)
from airflow_batch_provider.emulator.compute.runner.containment import (
    ProcessContainer,
    become_subreaper,
    remove_cgroup_parent,
)
from airflow_batch_provider.emulator.compute.runner.failures import TaskFailure
from airflow_batch_provider.emulator.compute.runner.launcher import DEFAULT_WORKERS, BlockingWork
from airflow_batch_provider.emulator.compute.runner.layout import (
    TaskLayout,
    batch_variables,
    layout_for,
    task_environment,
)
from airflow_batch_provider.emulator.compute.runner.output_files import upload_output_files
from airflow_batch_provider.emulator.compute.runner.process import (
    ProcessOutcome,
    run_process,
    split_command_line,
)
from airflow_batch_provider.emulator.compute.runner.resource_files import download_resource_files
from airflow_batch_provider.emulator.compute.runner.spec import TaskRunResult, TaskRunSpec
from airflow_batch_provider.emulator.compute.runner.storage import StorageSession

log = logging.getLogger(__name__)

_Race = Literal["done", "cancelled", "timeout"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _process_failure(spec: TaskRunSpec, process: ProcessOutcome) -> dict[str, Any] | None:
    """The task's failure from how its process ended: out of wall-clock time or a non-zero exit code."""
    if process.timed_out:
        assert spec.max_wall_clock_seconds is not None
        return failures.wall_clock_failure(spec.max_wall_clock_seconds)
    if process.exit_code != 0:
        return failures.exit_code_failure()
    return None


async def _race(work: Awaitable[None], cancel: asyncio.Event, deadline: float | None) -> _Race:
    """Await ``work`` unless ``cancel`` is set or the loop clock passes ``deadline`` first."""
    task = asyncio.ensure_future(work)
    canceller = asyncio.ensure_future(cancel.wait())
    try:
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({task, canceller}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        canceller.cancel()
    if task in done:
        task.result()
        return "done"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return "cancelled" if cancel.is_set() else "timeout"


class TaskExecutor:
    """Executes task attempts as local processes; one instance serves any number of concurrent runs.

    As on Batch nodes, the command line is not run under a shell: write ``/bin/sh -c "..."`` to get
    variable expansion, pipes or ``&&``. ``kill_grace_seconds`` is how long a process tree gets
    between SIGTERM and SIGKILL when it is stopped for its wall clock or a cancel.

    Task directories are created and processes started on worker threads (``launch_workers`` of
    them), so the event loop that runs the executor stays free to serve requests; :meth:`close`
    stops those threads. The executor's process becomes the child subreaper of the tasks'
    processes, and ``use_cgroups=False`` tracks them by environment marker only.
    """

    def __init__(
        self,
        *,
        kill_grace_seconds: float = 3.0,
        launch_workers: int = DEFAULT_WORKERS,
        use_cgroups: bool = True,
    ) -> None:
        self.kill_grace_seconds = kill_grace_seconds
        self.blocking = BlockingWork(launch_workers)
        self.use_cgroups = use_cgroups
        #: The process containers of the runs under way.
        self.containers: set[ProcessContainer] = set()
        #: Container tasks under way: container name -> the engine running it.
        self.running_containers: dict[str, str] = {}
        become_subreaper()

    def close(self) -> None:
        """End every process still running, stop the worker threads; the executor cannot run tasks after."""
        for container in list(self.containers):
            container.end()
        for name, engine in list(self.running_containers.items()):
            stop_container(engine, name)
        remove_cgroup_parent()
        self.blocking.close()

    async def run(self, spec: TaskRunSpec, cancel: asyncio.Event) -> TaskRunResult:
        """Run one attempt; never raises for the task's own failures, they are in the result.

        ``exit_code`` is None when the process never ran (pre-processing or launch failure, cancel
        before start). Setting ``cancel`` kills the process tree and returns ``cancelled=True``.
        """
        start = _now()
        session = StorageSession()
        try:
            return await self._run(spec, cancel, start, session)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug in the runner must not leave the task running forever
            log.exception("the runner failed on task %s/%s", spec.job_id, spec.task_id)
            return TaskRunResult(
                start_time=start,
                end_time=_now(),
                exit_code=None,
                failure_info=failures.failure_info(
                    failures.SERVER_ERROR, failures.UNKNOWN, f"The emulator failed to run the task: {err}"
                ),
            )
        finally:
            await session.close()

    async def _run(
        self, spec: TaskRunSpec, cancel: asyncio.Event, start: datetime, session: StorageSession
    ) -> TaskRunResult:
        loop = asyncio.get_running_loop()
        deadline = None if spec.max_wall_clock_seconds is None else loop.time() + spec.max_wall_clock_seconds

        def result(
            exit_code: int | None, failure_info: dict[str, Any] | None = None, **flags: bool
        ) -> TaskRunResult:
            return TaskRunResult(start, _now(), exit_code, failure_info, **flags)

        if cancel.is_set():
            return result(None, failures.cancelled_failure(), cancelled=True)
        layout = layout_for(spec)
        refusal = await self._create_task_directory(layout)
        if refusal is None and spec.container is not None:
            # A container task never runs on the host: without its image it fails, files empty.
            refusal = await self._prepare_container(spec)
            if refusal is not None:
                await self.blocking.call(_create_output_files, layout)
        if refusal is not None:
            return result(None, refusal)

        try:
            # 1. Pre-processing.
            outcome = await self._download_resource_files(spec, layout, session, cancel, deadline)
            if outcome == "cancelled":
                return result(None, failures.cancelled_failure(), cancelled=True)
            if outcome == "timeout":
                assert spec.max_wall_clock_seconds is not None
                return result(None, failures.wall_clock_failure(spec.max_wall_clock_seconds), timed_out=True)
            # 2. The process.
            process = await self._run_command_line(spec, layout, cancel, deadline)
        except TaskFailure as failure:
            if failure.code in (failures.COMMAND_PROGRAM_NOT_FOUND, failures.COMMAND_LAUNCH_FAILED):
                # As on the service, a task whose program cannot start still has its (empty) output files.
                await self.blocking.call(_create_output_files, layout)
            return result(None, failure.to_failure_info())

        if process.cancelled:
            return result(process.exit_code, failures.cancelled_failure(), cancelled=True)
        failure_info = _process_failure(spec, process)

        # 3. Post-processing.
        if spec.output_files:
            try:
                outcome = await _race(
                    upload_output_files(
                        spec.output_files,
                        layout.task_dir,
                        layout.working_dir,
                        session,
                        succeeded=failure_info is None,
                    ),
                    cancel,
                    None,
                )
            except TaskFailure as failure:
                failure_info = failure_info or failure.to_failure_info()
            else:
                if outcome == "cancelled":
                    return result(process.exit_code, failures.cancelled_failure(), cancelled=True)
        return result(process.exit_code, failure_info, timed_out=process.timed_out)

    async def _create_task_directory(self, layout: TaskLayout) -> dict[str, Any] | None:
        """Create the task's directories; the task's failure when the disk refuses."""
        try:
            await self.blocking.call(layout.create)
        except OSError as err:
            return failures.failure_info(
                failures.USER_ERROR,
                failures.RESOURCE_DIRECTORY_CREATE_FAILED,
                f"The task directory could not be created: {err.strerror or err}",
            )
        return None

    async def _download_resource_files(
        self,
        spec: TaskRunSpec,
        layout: TaskLayout,
        session: StorageSession,
        cancel: asyncio.Event,
        deadline: float | None,
    ) -> _Race:
        """Fetch the task's resource files into its working directory, unless cancelled or out of time."""
        if not spec.resource_files:
            return "done"
        return await _race(
            download_resource_files(
                spec.resource_files, layout.working_dir, session, spec.auto_storage_connection_string
            ),
            cancel,
            deadline,
        )

    async def _run_command_line(
        self, spec: TaskRunSpec, layout: TaskLayout, cancel: asyncio.Event, deadline: float | None
    ) -> ProcessOutcome:
        """Run the task's command line (in its container, if it has one) to its end, cancel or deadline."""
        # Splitting is linear and bounded, but a 1 MB command line still takes a while: off the loop.
        argv = await self.blocking.call(split_command_line, spec.command_line)
        env = task_environment(spec, layout)
        stop: Callable[[], None] | None = None
        if spec.container is not None:
            assert spec.container_engine is not None
            argv, stop = self._container_command(spec, layout, argv)
        return await run_process(
            argv,
            cwd=layout.working_dir,
            env=env,
            stdout_path=layout.stdout_path,
            stderr_path=layout.stderr_path,
            cancel=cancel,
            deadline=deadline,
            kill_grace_seconds=self.kill_grace_seconds,
            blocking=self.blocking,
            containers=self.containers,
            use_cgroup=self.use_cgroups,
            stop=stop,
        )

    async def _prepare_container(self, spec: TaskRunSpec) -> dict[str, Any] | None:
        """Check that a container task can run here and pull its image; its failure if not."""
        assert spec.container is not None
        if not spec.pool_runs_containers:
            return failures.container_failure(
                failures.CONTAINER_INVALID_SETTINGS,
                f"The task has containerSettings but its pool {spec.pool_id} has no containerConfiguration; "
                "create the pool with virtualMachineConfiguration.containerConfiguration, or remove "
                "the task's containerSettings",
                PoolId=spec.pool_id,
            )
        if spec.container_engine is None:
            return failures.container_failure(
                failures.CONTAINER_MISC_ERROR,
                "No container engine was found on the emulator's machine (podman or docker on the PATH); "
                "install one, or name it with --container-engine",
                ContainerImage=spec.container.image,
            )
        try:
            await asyncio.to_thread(
                ensure_image, spec.container_engine, spec.container.image, spec.container.registries
            )
        except (ContainerError, OSError, subprocess.SubprocessError) as err:
            return failures.container_failure(
                failures.CONTAINER_INVALID_IMAGE, str(err), ContainerImage=spec.container.image
            )
        return None

    def _container_command(
        self, spec: TaskRunSpec, layout: TaskLayout, argv: list[str]
    ) -> tuple[list[str], Callable[[], None]]:
        """The engine command running ``argv`` in the task's container, and how to stop that container."""
        assert spec.container is not None and spec.container_engine is not None
        engine = spec.container_engine
        name = container_name(
            spec.pool_id, spec.node_id, spec.job_id, spec.task_id, spec.kind.value, spec.retry_count
        )
        variables = sorted({*spec.environment, *batch_variables(spec, layout)})
        command = run_command(
            engine,
            name,
            spec.container,
            argv,
            variables=variables,
            node_root=layout.node_root,
            task_dir=layout.task_dir,
            working_dir=layout.working_dir,
            job_prep_dir=spec.job_prep_dir,
        )
        self.running_containers[name] = engine

        def stop() -> None:
            stop_container(engine, name)
            self.running_containers.pop(name, None)

        return command, stop


def _create_output_files(layout: TaskLayout) -> None:
    layout.stdout_path.touch()
    layout.stderr_path.touch()
