"""Serving the HTTPS endpoints (management, and the data plane over TLS) next to the data plane's HTTP one.

All uvicorn servers share one loop so the emulated account is only ever touched from one thread.
The data-plane HTTP server owns the process (signals, lifespan); the HTTPS servers are its companions:
they start with it and stop when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import uvicorn

from airflow_batch_provider.emulator.management.tls import TlsFiles, ensure_tls_files


class CompanionServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the server it runs beside."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drop idle keep-alive connections at once instead of waiting for their TLS close handshake."""
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            cycle = getattr(connection, "cycle", None)
            if transport is not None and (cycle is None or getattr(cycle, "response_complete", False)):
                transport.abort()
        await super().shutdown(sockets)


def management_config(
    app: Any,
    host: str,
    port: int,
    tls: TlsFiles,
    log_level: str = "warning",
) -> uvicorn.Config:
    """uvicorn settings for an app served over TLS beside the data plane (which owns the lifespan)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls.cert_path),
        ssl_keyfile=str(tls.key_path),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        loop="asyncio",
        # A backstop: a TLS connection left open would hold the shutdown for asyncio's 30 s close timeout.
        timeout_graceful_shutdown=2,
    )


def tls_files(state_dir: Path, host: str, cert: Path | None = None, key: Path | None = None) -> TlsFiles:
    """The given certificate and key, or a generated local CA and server certificate in ``state_dir``."""
    if cert is not None and key is not None:
        return TlsFiles(cert_path=cert, key_path=key, ca_path=cert)
    if (cert is None) != (key is None):
        raise ValueError("give both the TLS certificate and its key, or neither")
    return ensure_tls_files(state_dir / "tls", (host,))


async def serve_together(primary: uvicorn.Server, *companions: uvicorn.Server) -> None:
    """Run ``primary`` and ``companions`` on this loop until ``primary`` exits, then stop the companions."""
    runs = [asyncio.ensure_future(companion.serve()) for companion in companions]
    try:
        await primary.serve()
    finally:
        for companion in companions:
            companion.should_exit = True
        await asyncio.gather(*runs, return_exceptions=True)
