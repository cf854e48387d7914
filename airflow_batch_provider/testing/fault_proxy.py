"""A reverse proxy in front of Azurite that injects seeded faults, like the Batch emulator's.

with AzuriteServer() as azurite, StorageFaultProxy(azurite.blob_host_url) as proxy:
    proxy.set_faults(rate=0.2, seed=7)
    client = BlobServiceClient.from_connection_string(proxy.connection_string(azurite))

It takes the same :class:`~airflow_batch_provider.emulator.faults.FaultPlan`: ``500`` and ``503``
(``ServerBusy``, with ``Retry-After``, the way Storage throttles) answered in Storage's XML error
shape without reaching Azurite; ``reset`` aborts the connection before forwarding; ``latency`` delays
it; ``lost`` forwards the request (so Azurite commits it) and then aborts the connection instead of
answering. Storage throttles with 503, never 429, so :data:`STORAGE_KINDS` leaves 429 out.
Requests and responses are forwarded byte for byte (path still percent-encoded, bodies not
decompressed), so Shared Key and SAS signatures stay valid.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_batch_provider.emulator.faults import (
    FaultInjector,
    FaultKind,
    FaultPlan,
    FaultRecord,
    abort_connection,
)
from airflow_batch_provider.testing.lifecycle import StartStop, free_port

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from airflow_batch_provider.testing.azurite import AzuriteServer

#: The fault kinds Storage shows; it throttles with 503 ServerBusy rather than 429.
STORAGE_KINDS: tuple[FaultKind, ...] = ("500", "503", "reset", "latency", "lost")

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)

_ERRORS = {
    "500": (500, "InternalError", "The server encountered an internal error. Please retry the request."),
    "503": (
        503,
        "ServerBusy",
        "The server is currently unable to receive requests. Please retry your request.",
    ),
    "429": (429, "TooManyRequests", "Too many requests. Please retry your request."),
}


@dataclass
class StorageFaultProxy(StartStop):
    """A fault-injecting HTTP proxy to ``upstream`` (e.g. ``http://127.0.0.1:10000``) on a free port.

    Runs its own event loop in a background thread. Its default plan injects nothing.
    """

    upstream: str
    host: str = "127.0.0.1"
    port: int = 0
    faults: FaultPlan | None = None
    injector: FaultInjector = field(init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        self.injector = FaultInjector(self.faults)

    @classmethod
    def for_azurite(cls, azurite: AzuriteServer, **kwargs: Any) -> StorageFaultProxy:
        return cls(azurite.blob_host_url, **kwargs)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection_string(self, azurite: AzuriteServer) -> str:
        """Azurite's connection string with the blob endpoint moved to this proxy."""
        return azurite.connection_string_for(self.endpoint)

    # -- faults ------------------------------------------------------------------------------------

    def set_faults(self, plan: FaultPlan | None = None, **fields: Any) -> dict[str, Any]:
        """Start injecting faults (a plan, or its fields; ``kinds`` defaults to :data:`STORAGE_KINDS`)."""
        if plan is None:
            fields.setdefault("kinds", STORAGE_KINDS)
        self.injector.set_plan(FaultPlan.of(plan, **fields))
        return self.injector.status()

    def clear_faults(self) -> dict[str, Any]:
        status = self.injector.status()
        self.injector.set_plan(None)
        return status

    def fault_status(self) -> dict[str, Any]:
        return self.injector.status()

    @property
    def fault_records(self) -> list[FaultRecord]:
        return self.injector.records

    # -- serving -----------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> StorageFaultProxy:
        if self._thread is not None:
            return self
        self.port = self.port or free_port(self.host)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as err:
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"storage-fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            self._thread = None
            raise RuntimeError(f"the storage fault proxy did not start on {self.endpoint}: {failure}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)
        self._thread = None
        self._loop = None

    async def _start_site(self) -> None:
        import aiohttp
        from aiohttp import web

        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=300))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _stop_site(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web
        from yarl import URL

        kind = self.injector.choose(request.method, request.path, request.headers.get("User-Agent", ""))
        body = await request.read()
        if kind == "latency":
            await asyncio.sleep(self.injector.plan.latency)
        elif kind in _ERRORS:
            return self._error_response(kind)
        elif kind == "reset":
            abort_connection(request.transport)
            return web.Response(status=500)
        assert self._session is not None
        headers = [
            (name, value) for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP
        ]
        async with self._session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body or None,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        ) as upstream:
            content = await upstream.read()
            response_headers = [
                (name, value)
                for name, value in upstream.headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
            ]
            status, reason = upstream.status, upstream.reason
            length = upstream.headers.get("Content-Length")
        if kind == "lost":
            abort_connection(request.transport)
            return web.Response(status=500)
        response = web.StreamResponse(status=status, reason=reason)
        for name, value in response_headers:
            response.headers.add(name, value)
        if request.method == "HEAD":
            if length is not None:
                response.content_length = int(length)
            await response.prepare(request)
            return response
        response.content_length = len(content)
        await response.prepare(request)
        await response.write(content)
        await response.write_eof()
        return response

    def _error_response(self, kind: str) -> web.Response:
        from aiohttp import web

        status, code, message = _ERRORS[kind]
        headers = {"x-ms-error-code": code, "Content-Type": "application/xml"}
        if status in (429, 503):
            headers.update(self.injector.plan.retry_after_headers())
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
        return web.Response(status=status, headers=headers, body=body.encode("utf-8"))
