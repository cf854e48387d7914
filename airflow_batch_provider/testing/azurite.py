"""Start and stop Azurite, the official Azure Storage emulator, for tests and local runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from airflow_batch_provider.testing.lifecycle import StartStop, free_port, start_server_process, stop_process

#: Azurite's single built-in account, documented by Microsoft for local development.
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def find_azurite() -> str:
    """Locate the ``azurite-blob`` executable.

    Looks at ``$AZURITE_BLOB``, then ``node_modules/.bin`` in the current directory and its parents
    (where ``make`` installs it), then ``PATH``.
    """
    explicit = os.environ.get("AZURITE_BLOB")
    if explicit:
        return explicit
    here = Path.cwd().resolve()
    for directory in (here, *here.parents):
        candidate = directory / "node_modules" / ".bin" / "azurite-blob"
        if candidate.exists():
            return str(candidate)
    package_root = Path(__file__).resolve().parents[2]
    candidate = package_root / "node_modules" / ".bin" / "azurite-blob"
    if candidate.exists():
        return str(candidate)
    on_path = shutil.which("azurite-blob")
    if on_path:
        return on_path
    raise FileNotFoundError(
        "Azurite is not installed. Run `make setup` in the project (it installs Azurite with npm into "
        "node_modules/), or `npm install azurite`, or point $AZURITE_BLOB at the azurite-blob executable."
    )


@dataclass
class AzuriteServer(StartStop):
    """A running Azurite Blob service on a free loopback port, with its connection details."""

    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    account_name: str = AZURITE_ACCOUNT_NAME
    account_key: str = field(default=AZURITE_ACCOUNT_KEY, repr=False)

    @property
    def blob_host_url(self) -> str:
        """``http://host:port``, where Azurite listens."""
        return f"http://{self.host}:{self.port}"

    @property
    def blob_endpoint(self) -> str:
        return f"{self.blob_host_url}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return self.connection_string_for(self.blob_host_url)

    def connection_string_for(self, host_url: str) -> str:
        """The account's connection string with its blob endpoint at ``host_url`` (a proxy, say)."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={host_url}/{self.account_name};"
        )

    def start(self, timeout: float = 30.0) -> AzuriteServer:
        if self.process is not None:
            return self
        self.port = self.port or free_port(self.host)
        # Azurite writes a debug log and its config into the working directory: keep them out of the repo.
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        command = [
            find_azurite(),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
            "--silent",
        ]
        self.process = start_server_process(
            command, self.host, self.port, what="Azurite", timeout=timeout, cwd=self._workdir.name
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
