"""The local stack the benchmarks run on: Azurite, the Batch emulator, and clients that count requests.

Azurite is started with :class:`~airflow_batch_provider.testing.azurite.AzuriteServer`; the Batch
emulator runs in a child process (:mod:`bench.emulator_proc`) so that its CPU time is not charged
to the client code being measured. Airflow connections point at both through ``AIRFLOW_CONN_*``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_batch_provider.testing.azurite import AzuriteServer
from airflow_batch_provider.testing.lifecycle import StartStop, free_port, start_server_process, stop_process
from bench.counting import RequestCounter

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

    from airflow_batch_provider.hooks.batch import BatchHook
    from airflow_batch_provider.hooks.blob import BlobStorageHook
    from bench.network_link import DelayedLink

REPO_ROOT = Path(__file__).resolve().parents[1]
BATCH_CONN_ID = "bench_azbatch"
BLOB_CONN_ID = "bench_azblob"
#: The connection to Azurite through a :class:`~bench.network_link.DelayedLink`.
LINKED_BLOB_CONN_ID = "bench_azblob_linked"
#: The benchmarks watch up to 500 jobs at once; the emulator's account quotas must allow them.
EMULATOR_SETTINGS: dict[str, Any] = {"active_job_quota": 2000, "pool_quota": 100}


def child_environment() -> dict[str, str]:
    """This process's environment with the repository first on ``PYTHONPATH``.

    For the ``python -m bench.*`` child processes: ``bench`` is not an installed package.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def prepare_airflow(home: Path) -> None:
    """Point Airflow at a private home before it is imported (no DB is needed for env connections)."""
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


@dataclass
class EmulatorProcess:
    """The Batch emulator running as ``python -m bench.emulator_proc`` on a free loopback port."""

    host: str = "127.0.0.1"
    port: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    #: Write the emulator's cProfile statistics here when it stops (to explain a slow benchmark).
    profile_path: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def account_name(self) -> str:
        from airflow_batch_provider.emulator.models.account import DEV_ACCOUNT_NAME

        return str(self.settings.get("account_name") or DEV_ACCOUNT_NAME)

    @property
    def account_key(self) -> str:
        from airflow_batch_provider.emulator.models.account import DEV_ACCOUNT_KEY

        return str(self.settings.get("account_key") or DEV_ACCOUNT_KEY)

    def start(self, timeout: float = 60.0) -> EmulatorProcess:
        self.port = self.port or free_port(self.host)
        self._workdir = tempfile.TemporaryDirectory(prefix="bench-emulator-")
        command = [
            sys.executable,
            "-m",
            "bench.emulator_proc",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--settings",
            json.dumps(self.settings),
            *(["--profile", self.profile_path] if self.profile_path else []),
        ]
        self.process = start_server_process(
            command,
            self.host,
            self.port,
            what="the Batch emulator",
            timeout=timeout,
            cwd=self._workdir.name,
            env=child_environment(),
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=15)
            self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def request_log(self) -> list[tuple[float, float, str, str, int]]:
        """Every request since the last :meth:`clear_log`: arrived, responded, method, path, status."""
        with urllib.request.urlopen(f"{self.endpoint}/_bench/requests", timeout=60) as response:
            entries = json.loads(response.read())
        return [
            (float(a), float(b), str(method), str(path), int(status))
            for a, b, method, path, status in entries
        ]

    def clear_log(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/_bench/requests", method="DELETE")
        with urllib.request.urlopen(request, timeout=60):
            pass


@dataclass
class BenchEnvironment(StartStop):
    """Azurite + the Batch emulator + a scratch directory, with client factories that count requests."""

    azurite: AzuriteServer = field(default_factory=AzuriteServer)
    emulator: EmulatorProcess = field(default_factory=lambda: EmulatorProcess(settings=EMULATOR_SETTINGS))
    _scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def scratch(self) -> Path:
        """A private temporary directory for generated files."""
        assert self._scratch is not None, "the environment is not started"
        return Path(self._scratch.name)

    def start(self) -> BenchEnvironment:
        self._scratch = tempfile.TemporaryDirectory(prefix="bench-files-")
        # The upload's digest cache in the scratch directory: nothing from earlier runs, nothing left.
        os.environ["AIRFLOW__AZURE_BATCH_PROVIDER__DIGEST_CACHE_DIR"] = str(self.scratch / "digests")
        self._start_services()
        return self

    def fresh(self) -> None:
        """Replace Azurite and the emulator with empty ones, so no benchmark inherits another's data.

        (Deleting a job of 10,000 tasks goes on in the emulator's background for a while; blobs stay in
        Azurite's memory.)
        """
        self._stop_services()
        self.azurite = AzuriteServer()
        self.emulator = EmulatorProcess(
            settings=dict(self.emulator.settings), profile_path=self.emulator.profile_path
        )
        self._start_services()

    def _start_services(self) -> None:
        self.azurite.start()
        try:
            self.emulator.start()
        except BaseException:
            self.azurite.stop()
            raise
        os.environ[f"AIRFLOW_CONN_{BATCH_CONN_ID.upper()}"] = json.dumps(
            {
                "conn_type": "azbatch",
                "host": self.emulator.endpoint,
                "login": self.emulator.account_name,
                "password": self.emulator.account_key,
            }
        )
        os.environ[f"AIRFLOW_CONN_{BLOB_CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "azblob", "extra": {"connection_string": self.azurite.connection_string}}
        )

    def _stop_services(self) -> None:
        try:
            self.emulator.stop()
        finally:
            self.azurite.stop()

    def stop(self) -> None:
        try:
            self._stop_services()
        finally:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None

    @property
    def azurite_pid(self) -> int | None:
        return self.azurite.process.pid if self.azurite.process is not None else None

    @property
    def emulator_pid(self) -> int | None:
        return self.emulator.process.pid if self.emulator.process is not None else None

    # -- our hooks -------------------------------------------------------------------------------------

    def batch_hook(self, counter: RequestCounter | None = None, **kwargs: Any) -> BatchHook:
        """Our :class:`BatchHook` on the emulator, its requests counted by ``counter``."""
        from airflow_batch_provider.hooks.batch import BatchHook

        return BatchHook(BATCH_CONN_ID, http_policies=[counter] if counter else None, **kwargs)

    def blob_hook(
        self, counter: RequestCounter | None = None, *, via: DelayedLink | None = None
    ) -> BlobStorageHook:
        """Our :class:`BlobStorageHook` on Azurite (through ``via`` if given), counted by ``counter``."""
        from airflow_batch_provider.hooks.blob import BlobStorageHook

        conn_id = BLOB_CONN_ID
        if via is not None:
            conn_id = LINKED_BLOB_CONN_ID
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
                {"conn_type": "azblob", "extra": {"connection_string": self.blob_connection_string(via)}}
            )
        return BlobStorageHook(conn_id, http_policies=[counter] if counter else None)

    def blob_connection_string(self, via: DelayedLink | None = None) -> str:
        """Azurite's connection string; with ``via``, reaching it through that link."""
        if via is None:
            return self.azurite.connection_string
        return self.azurite.connection_string_for(f"http://{via.host}:{via.port}")

    # -- raw SDK clients (the baselines) -----------------------------------------------------------------

    def raw_batch_client(self, counter: RequestCounter | None = None) -> BatchClient:
        """A plain ``azure.batch.BatchClient`` as the SDK documents it, plus the counting policy."""
        from azure.batch import BatchClient
        from azure.core.credentials import AzureNamedKeyCredential

        credential = AzureNamedKeyCredential(self.emulator.account_name, self.emulator.account_key)
        policies = [counter] if counter else []
        return BatchClient(self.emulator.endpoint, credential, per_retry_policies=policies)

    def raw_blob_service(
        self,
        counter: RequestCounter | None = None,
        *,
        connections: int | None = None,
        via: DelayedLink | None = None,
    ) -> BlobServiceClient:
        """A plain ``BlobServiceClient`` from the connection string, plus the counting policy.

        ``connections`` sizes the HTTP connection pool (requests keeps 10 per host by default), so a
        thread pool of that many workers never waits for, or throws away, a connection.
        The Storage SDK builds its own pipeline and ignores azure-core's ``per_retry_policies``; its
        ``_additional_pipeline_policies`` keyword appends policies after the retry policy instead.
        With ``via``, the client reaches Azurite through that link.
        """
        from azure.storage.blob import BlobServiceClient

        options: dict[str, Any] = {"_additional_pipeline_policies": [counter]} if counter else {}
        if connections is not None:
            import requests
            from azure.core.pipeline.transport import RequestsTransport

            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            options["transport"] = RequestsTransport(session=session, session_owner=True)
        return BlobServiceClient.from_connection_string(self.blob_connection_string(via), **options)
