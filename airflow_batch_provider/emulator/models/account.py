"""The emulated Batch account: settings, well-known development credentials, and all its state."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_batch_provider.emulator.compute.runner.containers import KNOWN_ENGINES, find_engine
from airflow_batch_provider.emulator.models.applications import (
    ApplicationCatalog,
    ApplicationSource,
    DirectoryApplications,
)
from airflow_batch_provider.emulator.models.registry import create_backends

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.compute.scheduler import Executor, Scheduler
    from airflow_batch_provider.emulator.models.job_schedules import JobScheduleBackend
    from airflow_batch_provider.emulator.models.jobs import JobBackend
    from airflow_batch_provider.emulator.models.nodes import NodeBackend
    from airflow_batch_provider.emulator.models.pools import PoolBackend
    from airflow_batch_provider.emulator.models.tasks import TaskBackend

log = logging.getLogger(__name__)

#: The emulator's well-known development account, like Azurite's ``devstoreaccount1``.
DEV_ACCOUNT_NAME = "devbatchaccount1"
#: Its well-known key. Public on purpose: never use it for anything but the local emulator.
DEV_ACCOUNT_KEY = "gFLPuojDxxns+LTmkVfc8fioXucfwVACjegy/mmxSVG455PftVDekshTnHIGvdr+eOQaaYV0JftGVUcHEHhA+w=="

T = TypeVar("T")


@dataclass
class EmulatorSettings:
    """How the emulated account behaves: credentials, core quotas, timings and where node files live.

    ``step_delay`` is how long each simulated transition takes (node boot steps, deletes, resizes);
    keep it small for tests, raise it to watch the states go by.
    """

    account_name: str = DEV_ACCOUNT_NAME
    account_key: str = DEV_ACCOUNT_KEY
    state_dir: Path | None = None
    storage_connection_string: str | None = None
    #: Application packages as ``<dir>/<applicationId>/<version>.zip`` (see ``models.applications``).
    applications_dir: Path | None = None
    dedicated_core_quota: int = 500
    low_priority_core_quota: int = 500
    #: Pools the account may hold (409 ``PoolQuotaReached`` beyond it).
    pool_quota: int = 100
    #: Jobs not yet completed the account may hold (409 ``ActiveJobAndScheduleQuotaReached``).
    active_job_quota: int = 300
    step_delay: float = 0.02
    #: Multiplies ``autoScaleEvaluationInterval`` (minimum 5 minutes); lower it to see periodic runs.
    autoscale_interval_scale: float = 1.0
    #: Subnet resource ids pools may join (``networkConfiguration.subnetId``); any other is refused.
    known_subnets: tuple[str, ...] = ()
    #: Multiplies job schedules' ``recurrenceInterval`` and ``startWindow`` (minimum 1 minute); lower it
    #: to see recurrences in seconds.
    schedule_interval_scale: float = 1.0
    #: The OCI engine that runs container tasks (a command or path); None: podman, else docker, on the PATH.
    container_engine: str | None = None


class BatchAccount:
    """Everything one emulated Batch account holds, mutated only on the event loop that serves it."""

    # One backend per kind of resource, made from ``models.registry.RESOURCE_KINDS``.
    pools: PoolBackend
    nodes: NodeBackend
    jobs: JobBackend
    tasks: TaskBackend
    job_schedules: JobScheduleBackend

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        executor: Executor | None = None,
        applications: ApplicationSource | None = None,
    ) -> None:
        from airflow_batch_provider.emulator.compute.scheduler import Scheduler

        self.settings = settings or EmulatorSettings()
        self.name = self.settings.account_name
        self._owns_state_dir = self.settings.state_dir is None
        self.state_dir = Path(self.settings.state_dir or tempfile.mkdtemp(prefix="batch-emulator-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        #: Where clients reach the account; set from the first request (used in ``url`` properties).
        self.base_url = "http://127.0.0.1"
        source = applications or DirectoryApplications(
            Path(self.settings.applications_dir) if self.settings.applications_dir else None
        )
        self.applications = ApplicationCatalog(source)
        for attribute, backend in create_backends(self).items():
            setattr(self, attribute, backend)
        self.scheduler: Scheduler = Scheduler(self, executor)
        self._background: set[asyncio.Task[Any]] = set()
        #: The engine that runs container tasks, found by :meth:`start` (None: there is none).
        self.container_engine: str | None = None
        #: The event loop that owns this account (set by :meth:`start`).
        self.loop: asyncio.AbstractEventLoop | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coroutine`` in the background on the account's loop, logging (not losing) failures."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work of the Batch emulator failed", exc_info=task.exception())

    async def step(self, factor: float = 1.0) -> None:
        """Wait one simulated transition."""
        await asyncio.sleep(self.settings.step_delay * factor)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.container_engine = await asyncio.to_thread(find_engine, self.settings.container_engine)
        if self.container_engine is None:
            wanted = self.settings.container_engine or " or ".join(KNOWN_ENGINES)
            log.warning(
                "No container engine (%s) works on this machine: container pools and tasks will fail. "
                "Install podman or docker, or name one with --container-engine.",
                wanted,
            )
        else:
            log.info("Container tasks run through %s", self.container_engine)
        self.scheduler.start()

    async def close(self) -> None:
        """Stop every running process and background activity; remove a temporary state dir."""
        await self.scheduler.shutdown()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
