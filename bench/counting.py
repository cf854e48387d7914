"""Count HTTP requests where they leave the client: an azure-core policy for Batch and Blob clients."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP attempt: when it left the pipeline and when its response came back (monotonic clock)."""

    sent_at: float
    received_at: float
    method: str
    path: str
    body_bytes: int


def _body_size(request: Any) -> int:
    body = getattr(request, "body", None)
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    if isinstance(body, str):
        return len(body.encode("utf-8"))
    length = request.headers.get("Content-Length") if getattr(request, "headers", None) else None
    try:
        return int(length) if length is not None else 0
    except ValueError:
        return 0


class RequestCounter(SansIOHTTPPolicy[Any, Any]):
    """Counts every HTTP attempt (placed after the retry policy) and the request bytes it sends.

    Thread-safe, and usable in sync and async pipelines alike. ``records`` keeps one entry per
    answered request when ``keep_records`` is set (off by default, so counting costs next to nothing).
    """

    _SENT = "bench_sent_at"

    def __init__(self, keep_records: bool = False) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.keep_records = keep_records
        self.requests = 0
        self.bytes_sent = 0
        self.by_method: Counter[str] = Counter()
        self.records: list[RequestRecord] = []

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http_request = request.http_request
        size = _body_size(http_request)
        method = str(http_request.method).upper()
        with self._lock:
            self.requests += 1
            self.bytes_sent += size
            self.by_method[method] += 1
        if self.keep_records:
            request.context[self._SENT] = (time.monotonic(), method, size)

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        if not self.keep_records or self._SENT not in request.context:
            return
        sent_at, method, size = request.context[self._SENT]
        path = str(request.http_request.url).split("?", 1)[0]
        record = RequestRecord(sent_at, time.monotonic(), method, path, size)
        with self._lock:
            self.records.append(record)

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.bytes_sent = 0
            self.by_method.clear()
            self.records.clear()

    def snapshot(self) -> tuple[int, int]:
        """``(requests, bytes_sent)`` so far."""
        with self._lock:
            return self.requests, self.bytes_sent
