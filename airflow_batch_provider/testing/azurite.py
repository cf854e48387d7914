"""Start and stop Azurite, the official Azure Storage emulator, for tests and local runs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from airflow_batch_provider.testing.lifecycle import StartStop

#: Azurite's single built-in account, documented by Microsoft for local development.
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process exited with code {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def start_server_process(
    command: list[str],
    host: str,
    port: int,
    *,
    what: str,
    timeout: float,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server as a child process and wait until it listens; on failure, raise with its stderr."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_for_port(host, port, timeout, process)
    except Exception as err:
        stderr = b""
        if process.poll() is not None and process.stderr is not None:
            stderr = process.stderr.read()
        stop_process(process)
        raise RuntimeError(f"{what} did not start: {err}. {stderr.decode(errors='replace')}") from err
    return process


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate a child process, killing it if it does not exit within ``grace`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stderr is not None:
        process.stderr.close()


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
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_endpoint};"
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
