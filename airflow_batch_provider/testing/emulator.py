"""Run the local Batch emulator in-process, on a free port, for tests and scripts.

with BatchEmulatorServer() as batch:
    client = BatchClient(batch.endpoint, AzureNamedKeyCredential(batch.account_name, batch.account_key))
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_batch_provider.testing.azurite import free_port

if TYPE_CHECKING:
    import uvicorn

    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.scheduler import Executor

T = TypeVar("T")


@dataclass
class BatchEmulatorServer:
    """A running Batch emulator (uvicorn in a background thread) with its endpoint and credentials.

    ``account`` is the live emulated account, for tests that want to look behind the API. Pass
    ``storage_connection_string`` (Azurite's) to give it an auto-storage account.
    """

    host: str = "127.0.0.1"
    port: int = 0
    account_name: str = ""
    account_key: str = field(default="", repr=False)
    state_dir: Path | None = None
    storage_connection_string: str | None = field(default=None, repr=False)
    #: Application packages: ``<dir>/<applicationId>/<version>.zip``.
    applications_dir: Path | None = None
    step_delay: float = 0.02
    dedicated_core_quota: int = 500
    low_priority_core_quota: int = 500
    pool_quota: int = 100
    active_job_quota: int = 300
    #: Multiplies autoscale evaluation intervals (minimum PT5M); 0.001 makes PT5M 0.3 s.
    autoscale_interval_scale: float = 1.0
    executor: Executor | None = field(default=None, repr=False)
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _app: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """The account URL to give ``BatchClient``, e.g. ``http://127.0.0.1:50123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def account(self) -> BatchAccount:
        if self._app is None:
            raise RuntimeError("the emulator is not running")
        account: BatchAccount = self._app.state.account
        return account

    def call(self, function: Callable[[BatchAccount], T], timeout: float = 10.0) -> T:
        """Run ``function(account)`` on the emulator's event loop and return its result.

        The account is only safe to change from that loop; use this for anything beyond reading.
        """
        account = self.account
        if account.loop is None:
            raise RuntimeError("the emulator is not running")

        async def run() -> T:
            return function(account)

        return asyncio.run_coroutine_threadsafe(run(), account.loop).result(timeout)

    def preempt_node(self, pool_id: str, node_id: str) -> None:
        """Evict a node like a Spot eviction: tasks requeued, node ``preempted``, then back."""
        self.call(lambda account: account.nodes.preempt(pool_id, node_id))

    def start(self, timeout: float = 15.0) -> BatchEmulatorServer:
        if self._server is not None:
            return self
        import uvicorn

        from airflow_batch_provider.emulator.app import create_app
        from airflow_batch_provider.emulator.models.account import (
            DEV_ACCOUNT_KEY,
            DEV_ACCOUNT_NAME,
            EmulatorSettings,
        )

        self.account_name = self.account_name or DEV_ACCOUNT_NAME
        self.account_key = self.account_key or DEV_ACCOUNT_KEY
        self.port = self.port or free_port(self.host)
        settings = EmulatorSettings(
            account_name=self.account_name,
            account_key=self.account_key,
            state_dir=self.state_dir,
            storage_connection_string=self.storage_connection_string,
            applications_dir=self.applications_dir,
            step_delay=self.step_delay,
            dedicated_core_quota=self.dedicated_core_quota,
            low_priority_core_quota=self.low_priority_core_quota,
            pool_quota=self.pool_quota,
            active_job_quota=self.active_job_quota,
            autoscale_interval_scale=self.autoscale_interval_scale,
        )
        self._app = create_app(settings, executor=self.executor)
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="asyncio",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name=f"batch-emulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                self._server = None
                raise RuntimeError(f"the Batch emulator failed to start on {self.endpoint}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"the Batch emulator did not start on {self.endpoint} within {timeout:.0f}s"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = None
        self._thread = None

    def __enter__(self) -> BatchEmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
