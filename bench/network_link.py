"""A TCP link with a fixed delay, between a client and a local server, to stand in for a network.

On loopback a request costs its client and its server CPU time and nothing else; over a real
network every request also waits a round trip. :class:`DelayedLink` relays TCP connections to a
server and holds every chunk of bytes, in each direction, for half of ``round_trip`` before passing
it on, in order. Bandwidth is not limited. It runs in a process of its own, so that relaying does
not take the measured client's GIL or count in its CPU time.

Started by :class:`DelayedLink` as
``python -m bench.network_link --port N --target HOST:PORT --round-trip-ms R``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_batch_provider.testing.lifecycle import StartStop, free_port, start_server_process, stop_process


class _DelayedPipe:
    """Bytes from one side of a connection, written to the other side ``delay`` seconds later."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._loop = loop
        self._delay = delay
        self._queue: collections.deque[tuple[float, bytes | None]] = collections.deque()  # None: close
        self._timer: asyncio.TimerHandle | None = None
        self.sink: asyncio.Transport | None = None

    def put(self, data: bytes | None) -> None:
        self._queue.append((self._loop.time() + self._delay, data))
        self._schedule()

    def attach(self, sink: asyncio.Transport) -> None:
        """Start writing to ``sink``, including what arrived before it was there."""
        self.sink = sink
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None and self._queue and self.sink is not None:
            self._timer = self._loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        now = self._loop.time()
        assert self.sink is not None
        while self._queue and self._queue[0][0] <= now:
            _, data = self._queue.popleft()
            if self.sink.is_closing():
                continue
            if data is None:
                self.sink.close()
            else:
                self.sink.write(data)
        self._schedule()


class _Side(asyncio.Protocol):
    """One end of a relayed connection; what it receives goes out through ``pipe``, delayed."""

    def __init__(self, pipe: _DelayedPipe) -> None:
        self.pipe = pipe
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pipe.put(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe.put(None)  # close the other side once what came before has reached it


async def _serve(host: str, port: int, target_host: str, target_port: int, round_trip: float) -> None:
    loop = asyncio.get_running_loop()
    one_way = round_trip / 2

    pending: set[asyncio.Task[None]] = set()

    def client_side() -> _Side:
        client = _Side(_DelayedPipe(loop, one_way))
        task = loop.create_task(connect_upstream(client))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return client

    async def connect_upstream(client: _Side) -> None:
        to_client = _DelayedPipe(loop, one_way)
        try:
            _, server = await loop.create_connection(lambda: _Side(to_client), target_host, target_port)
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        assert server.transport is not None
        if client.transport is None or client.transport.is_closing():
            server.transport.close()  # the client has gone meanwhile
            return
        to_client.attach(client.transport)
        client.pipe.attach(server.transport)

    listener = await loop.create_server(client_side, host, port)
    async with listener:
        await listener.serve_forever()


@dataclass
class DelayedLink(StartStop):
    """A local port whose connections reach ``target`` with ``round_trip`` seconds added to each exchange."""

    target_host: str
    target_port: int
    round_trip: float
    host: str = "127.0.0.1"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> DelayedLink:
        # Imported here, not at the top: the relay process itself (``main``) has no use for the bench stack.
        from bench.environment import child_environment

        self.port = self.port or free_port(self.host)
        command = [
            sys.executable,
            "-m",
            "bench.network_link",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--target",
            f"{self.target_host}:{self.target_port}",
            "--round-trip-ms",
            str(self.round_trip * 1000),
        ]
        self._process = start_server_process(
            command, self.host, self.port, what="the delayed link", timeout=timeout, env=child_environment()
        )
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.network_link")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="HOST:PORT of the server")
    parser.add_argument("--round-trip-ms", type=float, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    asyncio.run(_serve(args.host, args.port, host, int(port), args.round_trip_ms / 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
