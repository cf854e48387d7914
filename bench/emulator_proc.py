"""The Batch emulator in a process of its own, with a request log, for the benchmarks.

The benchmarks measure client code; running the emulator in the same interpreter would make it
share the client's GIL and CPU time. This module serves the same app as ``airflow-batch-emulator``
and records, for every request, when it arrived and when its response was sent (monotonic clock,
shared by all processes on the machine). ``GET /_bench/requests`` returns the log,
``DELETE /_bench/requests`` empties it; nothing else is changed.

Run by :class:`bench.environment.EmulatorProcess`: ``python -m bench.emulator_proc --port N``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG_PATH = "/_bench/requests"


class RequestLog:
    """ASGI middleware: one ``[arrived, responded, method, path, status]`` entry per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.entries: list[tuple[float, float, str, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        if path == LOG_PATH:
            await self._serve_log(scope, send)
            return
        arrived = time.monotonic()
        status = 0

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.entries.append((arrived, time.monotonic(), str(scope["method"]), path, status))

    async def _serve_log(self, scope: Scope, send: Send) -> None:
        if scope["method"] == "DELETE":
            self.entries = []
            body = b"[]"
        else:
            body = json.dumps(self.entries).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_proc")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--settings", default="{}", help="JSON of EmulatorSettings fields (unknown ones are ignored)"
    )
    parser.add_argument("--profile", default=None, help="write cProfile statistics to this file at exit")
    args = parser.parse_args(argv)

    import uvicorn

    from airflow_batch_provider.emulator.app import create_app
    from airflow_batch_provider.emulator.models.account import EmulatorSettings

    known = {field.name for field in dataclasses.fields(EmulatorSettings)}
    wanted: dict[str, Any] = json.loads(args.settings)
    settings = EmulatorSettings(**{key: value for key, value in wanted.items() if key in known})
    app = RequestLog(create_app(settings))
    if args.profile:
        import cProfile
        import signal

        profiler = cProfile.Profile()

        def dump(signum: int, frame: Any) -> None:
            # uvicorn restores this handler and re-raises SIGTERM once it has shut down.
            profiler.disable()
            profiler.dump_stats(args.profile)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, dump)
        profiler.enable()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
