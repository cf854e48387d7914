"""Run the local Batch emulator in-process, on a free port, for tests and scripts.

with BatchEmulatorServer() as batch:
    client = BatchClient(batch.endpoint, AzureNamedKeyCredential(batch.account_name, batch.account_key))

With ``management=True`` (and a ``storage_connection_string``) it also serves the Resource Manager
routes for application packages over HTTPS, at ``management_endpoint``; trust ``ca_cert_path``.
With ``https=True`` the data plane is served over HTTPS too, at ``https_endpoint``, where it accepts
Entra ID tokens of the emulator's token endpoint (``authority_host``) beside Shared Key.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_batch_provider.testing.lifecycle import StartStop, free_port

if TYPE_CHECKING:
    import uvicorn

    from airflow_batch_provider.emulator.faults import FaultInjector, FaultPlan, FaultRecord
    from airflow_batch_provider.emulator.identity import TokenIssuer
    from airflow_batch_provider.emulator.management.models import ApplicationBackend
    from airflow_batch_provider.emulator.management.tls import TlsFiles
    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.scheduler import Executor

T = TypeVar("T")


@dataclass
class BatchEmulatorServer(StartStop):
    """A running Batch emulator (uvicorn in a background thread) with its endpoint and credentials.

    ``account`` is the live emulated account, for tests that want to look behind the API. Pass
    ``storage_connection_string`` (Azurite's) to give it an auto-storage account. ``management=True``
    adds the HTTPS management endpoint for application packages (it replaces ``applications_dir``).
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
    #: Subnet resource ids pools may name in ``networkConfiguration.subnetId``.
    known_subnets: tuple[str, ...] = ()
    #: Multiplies job schedules' recurrenceInterval and startWindow (minimum PT1M); 0.01 makes PT1M 0.6 s.
    schedule_interval_scale: float = 1.0
    #: The OCI engine for container tasks (a command or path); None: podman, else docker, on the PATH.
    container_engine: str | None = None
    executor: Executor | None = field(default=None, repr=False)
    #: Fault plan active from the start (change it later with :meth:`set_faults`).
    faults: FaultPlan | None = None
    #: Serve the Resource Manager routes for application packages over HTTPS too.
    management: bool = False
    management_port: int = 0
    #: Serve the data plane over HTTPS too (Entra ID tokens need TLS), with the token endpoint beside it.
    https: bool = False
    https_port: int = 0
    #: Signs the tokens of the Entra ID endpoint served beside the management plane.
    token_issuer: TokenIssuer = field(default_factory=lambda: _token_issuer(), repr=False)
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _management_server: uvicorn.Server | None = field(default=None, repr=False)
    _https_server: uvicorn.Server | None = field(default=None, repr=False)
    _management_app: Any = field(default=None, repr=False)
    _tls: TlsFiles | None = field(default=None, repr=False)
    _owned_dir: Path | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _app: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """The account URL to give ``BatchClient``, e.g. ``http://127.0.0.1:50123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def management_endpoint(self) -> str:
        """The Resource Manager URL for ``BatchManagementClient(base_url=...)``, e.g. ``https://127.0.0.1:50124``."""
        if not self.management:
            raise RuntimeError("the management endpoint is off; create the server with management=True")
        return f"https://{self.host}:{self.management_port}"

    @property
    def https_endpoint(self) -> str:
        """The data plane's HTTPS account URL, for Entra ID credentials, e.g. ``https://127.0.0.1:50125``."""
        if not self.https:
            raise RuntimeError("the HTTPS data plane is off; create the server with https=True")
        return f"https://{self.host}:{self.https_port}"

    @property
    def authority_host(self) -> str:
        """The Entra ID authority a service-principal connection uses offline (any client id and secret)."""
        return self.management_endpoint if self.management else self.https_endpoint

    @property
    def ca_cert_path(self) -> Path:
        """The CA certificate that signed the HTTPS endpoints' certificate (trust it in clients)."""
        if self._tls is None:
            raise RuntimeError("no HTTPS endpoint is running (management=True or https=True)")
        return self._tls.ca_path

    @property
    def applications(self) -> ApplicationBackend:
        """The application packages published through the management endpoint."""
        if self._management_app is None:
            raise RuntimeError("the management endpoint is not running")
        backend: ApplicationBackend = self._management_app.state.applications
        return backend

    @property
    def management_request_log(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request the management endpoint received, oldest first."""
        if self._management_app is None:
            raise RuntimeError("the management endpoint is not running")
        log: list[tuple[str, str]] = self._management_app.state.request_log
        return log

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

    # -- fault injection ----------------------------------------------------------------------------

    def set_faults(self, plan: FaultPlan | None = None, **fields: Any) -> dict[str, Any]:
        """Start injecting faults: a :class:`FaultPlan`, or its fields (``rate=0.2, seed=7``...).

        Goes through the signed control API (``PUT /_emulator/faults``), as any client of a running
        emulator would; returns the injector's status. Ordinals restart at 0.
        """
        from airflow_batch_provider.emulator.faults import FaultPlan

        return self._control("PUT", FaultPlan.of(plan, **fields).model_dump_json().encode("utf-8"))

    def clear_faults(self) -> dict[str, Any]:
        """Stop injecting faults; returns the status of the plan that was active."""
        status = self.fault_status()
        self._control("DELETE")
        return status

    def fault_status(self) -> dict[str, Any]:
        """``{"plan", "requests", "faults", "by_kind"}`` of the active fault plan."""
        return self._control("GET")

    @property
    def fault_records(self) -> list[FaultRecord]:
        """Every fault injected since the plan was set (ordinal, method, path, kind)."""
        if self._app is None:
            raise RuntimeError("the emulator is not running")
        injector: FaultInjector = self._app.state.faults
        return injector.records

    def _control(self, method: str, body: bytes = b"") -> dict[str, Any]:
        import json
        import urllib.error
        import urllib.request

        from airflow_batch_provider.emulator.auth import authorization_header
        from airflow_batch_provider.emulator.faults import CONTROL_PATH
        from airflow_batch_provider.emulator.serialization import format_http_date, utcnow

        headers = {"ocp-date": format_http_date(utcnow())}
        if body:
            headers.update({"content-type": "application/json", "content-length": str(len(body))})
        headers["authorization"] = authorization_header(
            method, CONTROL_PATH, "", headers, self.account_name, self.account_key
        )
        request = urllib.request.Request(
            self.endpoint + CONTROL_PATH, data=body or None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                result: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {CONTROL_PATH} failed: {err.code} {err.read()[:500]!r}") from None
        return result

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
            known_subnets=tuple(self.known_subnets),
            schedule_interval_scale=self.schedule_interval_scale,
            container_engine=self.container_engine,
        )
        companions = [self._management_companion()] if self.management else []
        applications = self._management_app.state.applications if self.management else None
        self._app = create_app(
            settings,
            executor=self.executor,
            faults=self.faults,
            applications=applications,
            token_issuer=self.token_issuer,
        )
        if self.https:
            companions.append(self._https_companion())
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
        if not companions:
            target: Callable[[], None] = server.run
        else:
            from airflow_batch_provider.emulator.management.server import serve_together

            def target() -> None:
                asyncio.run(serve_together(server, *companions))

        self._thread = threading.Thread(target=target, name=f"batch-emulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (server.started and all(companion.started for companion in companions)):
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

    def _management_companion(self) -> uvicorn.Server:
        """The HTTPS management server, sharing the data plane's loop (started by :meth:`start`)."""
        from airflow_batch_provider.emulator.identity import create_identity_app, with_identity
        from airflow_batch_provider.emulator.management.app import create_management_app
        from airflow_batch_provider.emulator.management.models import ApplicationBackend
        from airflow_batch_provider.emulator.management.server import (
            CompanionServer,
            management_config,
            tls_files,
        )

        if self.applications_dir is not None:
            raise ValueError("pass applications_dir or management=True, not both")
        root = self._management_root()
        self.management_port = self.management_port or free_port(self.host)
        self._tls = self._tls or tls_files(root, self.host)
        backend = ApplicationBackend(self.account_name, root, self.storage_connection_string)
        self._management_app = create_management_app(backend, self.token_issuer)
        # Beside Resource Manager, an Entra ID token endpoint: the authority_host of offline connections.
        served = with_identity(self._management_app, create_identity_app(self.token_issuer))
        config = management_config(served, self.host, self.management_port, self._tls)
        self._management_server = CompanionServer(config)
        return self._management_server

    def _management_root(self) -> Path:
        """``<state dir>/management``: the TLS files and the published packages."""
        if self.state_dir is None and self._owned_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="batch-emulator-management-"))
        return (self.state_dir or self._owned_dir or Path()) / "management"

    def _https_companion(self) -> uvicorn.Server:
        """The data plane over HTTPS (same app, same loop), with the Entra ID token endpoint beside it."""
        from airflow_batch_provider.emulator.identity import create_identity_app, with_identity
        from airflow_batch_provider.emulator.management.server import (
            CompanionServer,
            management_config,
            tls_files,
        )

        self.https_port = self.https_port or free_port(self.host)
        self._tls = self._tls or tls_files(self._management_root(), self.host)
        served = with_identity(self._app, create_identity_app(self.token_issuer))
        self._https_server = CompanionServer(management_config(served, self.host, self.https_port, self._tls))
        return self._https_server

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = None
        self._thread = None
        self._management_server = None
        self._https_server = None
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def _token_issuer() -> TokenIssuer:
    from airflow_batch_provider.emulator.identity import TokenIssuer

    return TokenIssuer()
