"""The local services the test helpers start: one shape (``start()``, ``stop()``, ``with``) and
the child processes they run in."""

from __future__ import annotations

import socket
import subprocess
import time
from types import TracebackType
from typing import Any, TypeVar

S = TypeVar("S", bound="StartStop")


class StartStop:
    """A service started by ``start()`` and stopped by ``stop()``; ``with`` does both."""

    def start(self: S, *args: Any, **kwargs: Any) -> S:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


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
