"""The one Batch emulator (with Azurite as its auto-storage) that the whole SDK test session talks to.

The sdist's preparers create a fresh Batch account per test; here every test gets the same emulated
account, emptied between tests (:func:`empty_account`) the way deleting the account would.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError

from airflow_batch_provider.testing.azurite import AzuriteServer
from airflow_batch_provider.testing.emulator import BatchEmulatorServer

#: Each simulated transition (node boot step, delete, resize) takes this long.
STEP_DELAY = 0.05
#: Autoscale evaluation intervals run this much faster than the service's (PT5M minimum).
AUTOSCALE_INTERVAL_SCALE = 0.001


@dataclass
class EmulatedAccount:
    """The running emulator and Azurite, and how the tests reach them."""

    emulator: BatchEmulatorServer
    storage: AzuriteServer

    @property
    def name(self) -> str:
        return self.emulator.account_name

    @property
    def endpoint(self) -> str:
        """The account URL (plain HTTP, Shared Key), e.g. ``http://127.0.0.1:50123``."""
        return self.emulator.endpoint

    @property
    def credential(self) -> AzureNamedKeyCredential:
        return AzureNamedKeyCredential(self.emulator.account_name, self.emulator.account_key)

    def client(self) -> BatchClient:
        return BatchClient(self.endpoint, self.credential)


_session: EmulatedAccount | None = None


def start() -> EmulatedAccount:
    """Start Azurite and the emulator (once per session) and return them."""
    global _session
    if _session is None:
        storage = AzuriteServer().start()
        try:
            emulator = BatchEmulatorServer(
                storage_connection_string=storage.connection_string,
                step_delay=STEP_DELAY,
                autoscale_interval_scale=AUTOSCALE_INTERVAL_SCALE,
            ).start()
        except BaseException:
            storage.stop()
            raise
        _session = EmulatedAccount(emulator=emulator, storage=storage)
    return _session


def current() -> EmulatedAccount:
    """The session's emulated account; the conftest starts it before any test runs."""
    if _session is None:
        raise RuntimeError("the emulated Batch account is not running; conftest.py starts it per session")
    return _session


def stop() -> None:
    global _session
    if _session is not None:
        _session.emulator.stop()
        _session.storage.stop()
        _session = None


def empty_account(timeout: float = 60.0) -> None:
    """Delete every job schedule, job and pool; wait until they are gone (as deleting an account does)."""
    with current().client() as client:
        for schedule in client.list_job_schedules():
            _ignore_missing(client.begin_delete_job_schedule, schedule.id)
        for job in client.list_jobs():
            _ignore_missing(client.begin_delete_job, job.id)
        for pool in client.list_pools():
            _ignore_missing(client.begin_delete_pool, pool.id)
        deadline = time.monotonic() + timeout
        while _holds_anything(client):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulated account still holds resources after {timeout:.0f}s")
            time.sleep(0.1)


def _holds_anything(client: BatchClient) -> bool:
    listings: tuple[Iterable[object], ...] = (
        client.list_job_schedules(),
        client.list_jobs(),
        client.list_pools(),
    )
    return any(any(True for _ in listing) for listing in listings)


def _ignore_missing(delete: Callable[[str], object], resource_id: str) -> None:
    """Start a delete; something already gone is fine (the poller is left unawaited: we list instead)."""
    with contextlib.suppress(ResourceNotFoundError):
        delete(resource_id)
