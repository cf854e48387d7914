"""Seeded fault injection: the transient failures a real Batch (or Storage) endpoint shows now and then.

A :class:`FaultPlan` says which fraction of requests fail and how. The decision for a request depends
only on the plan's ``seed`` and the request's *ordinal* (0 for the first request the plan applies to,
1 for the next...), so the same seed gives the same sequence of faults; which request gets which
ordinal follows arrival order, which concurrent clients may vary. Setting a plan restarts the count.

Fault kinds:

* ``500``: ``500 InternalError``; the request was not processed.
* ``503``: ``503 ServerBusy`` with ``Retry-After``; not processed.
* ``429``: ``429 TooManyRequests`` with ``Retry-After``; not processed.
* ``reset``: the connection is reset before the request is processed; the client sees a transport
  error and cannot tell whether anything happened.
* ``latency``: the request is processed normally after an extra ``latency`` seconds.
* ``lost``: the request *is* processed (a create is committed), then the connection is reset
  instead of answering: the worst case for duplicate creation.

:class:`FaultInjectionMiddleware` applies a plan to the emulator's ASGI app. Its control API,
``/_emulator/faults`` (``GET`` the status, ``PUT`` a plan as JSON, ``DELETE`` to stop injecting),
is never faulted itself and needs a Shared Key signature like the Batch API (no ``api-version``),
because the emulator may listen on a non-loopback address. ``BatchEmulatorServer.set_faults`` signs
for you. The storage fault proxy (``airflow_batch_provider.testing.fault_proxy``) uses the same plans.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

FaultKind = Literal["500", "503", "429", "reset", "latency", "lost"]
ALL_KINDS: tuple[FaultKind, ...] = ("500", "503", "429", "reset", "latency", "lost")
#: Paths under this prefix belong to the emulator's own control API and are never faulted.
CONTROL_PREFIX = "/_emulator/"
CONTROL_PATH = "/_emulator/faults"


class FaultPlan(BaseModel):
    """Which requests fail, and how. The default plan injects nothing.

    :param rate: Fraction of matching requests that get a fault (0 to 1).
    :param seed: Seed of the fault sequence.
    :param kinds: Fault kinds to choose from, with equal probability (repeat one to weight it).
    :param latency: Seconds a ``latency`` fault adds.
    :param retry_after: Seconds announced in ``Retry-After`` (429 and 503); sent whole in
        ``Retry-After`` and exactly in ``x-ms-retry-after-ms``, which azure-core prefers.
    :param methods: Only requests with these HTTP methods (default: all).
    :param path_pattern: Only requests whose path matches this regular expression (``re.search``).
    :param user_agent_pattern: Only requests whose ``User-Agent`` matches this regular expression, e.g.
        ``airflow-batch-provider`` for the provider's own clients.
    :param max_faults: Stop after injecting this many faults (default: no limit).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = 0
    kinds: tuple[FaultKind, ...] = ALL_KINDS
    latency: float = Field(default=0.25, ge=0.0, le=300.0)
    retry_after: float = Field(default=1.0, ge=0.0, le=3600.0)
    methods: tuple[str, ...] | None = None
    path_pattern: str | None = None
    user_agent_pattern: str | None = None
    max_faults: int | None = Field(default=None, ge=0)

    @field_validator("methods")
    @classmethod
    def _upper_methods(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return tuple(method.upper() for method in value) if value is not None else None

    @field_validator("path_pattern", "user_agent_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"not a regular expression: {err}") from None
        return value

    @field_validator("kinds")
    @classmethod
    def _some_kinds(cls, value: tuple[FaultKind, ...]) -> tuple[FaultKind, ...]:
        if not value:
            raise ValueError("kinds must name at least one fault kind")
        return value

    @classmethod
    def of(cls, plan: FaultPlan | None = None, **fields: Any) -> FaultPlan:
        """``plan`` itself, or a plan made of ``fields``; both at once is a mistake."""
        if plan is not None and fields:
            raise TypeError("pass a FaultPlan or its fields, not both")
        return plan if plan is not None else cls(**fields)

    def applies_to(self, method: str, path: str, user_agent: str = "") -> bool:
        """Whether a request counts for this plan (the control API never does)."""
        if path.startswith(CONTROL_PREFIX):
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.user_agent_pattern is not None and re.search(self.user_agent_pattern, user_agent) is None:
            return False
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None

    def fault_for(self, ordinal: int) -> FaultKind | None:
        """The fault of the request with this ordinal (``None``: served normally); pure and seeded."""
        if self.rate <= 0.0:
            return None
        rng = random.Random(f"{self.seed}:{ordinal}")
        if rng.random() >= self.rate:
            return None
        return self.kinds[rng.randrange(len(self.kinds))]

    def retry_after_headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(math.ceil(self.retry_after)),
            "x-ms-retry-after-ms": str(round(self.retry_after * 1000)),
        }


@dataclass(frozen=True)
class FaultRecord:
    """One injected fault: the request's ordinal, method and path, and the kind."""

    ordinal: int
    method: str
    path: str
    kind: FaultKind


class FaultInjector:
    """The live state of a plan: request ordinals, the faults injected so far (thread-safe)."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self._ordinal = 0
        self._records: list[FaultRecord] = []

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan | None) -> None:
        """Replace the plan; ordinals and the record of injected faults start again."""
        with self._lock:
            self._plan = plan or FaultPlan()
            self._ordinal = 0
            self._records = []

    def choose(self, method: str, path: str, user_agent: str = "") -> FaultKind | None:
        """Count the request and return its fault, if any."""
        with self._lock:
            plan = self._plan
            if plan.rate <= 0.0 or not plan.applies_to(method, path, user_agent):
                return None
            ordinal = self._ordinal
            self._ordinal += 1
            kind = plan.fault_for(ordinal)
            if kind is None or (plan.max_faults is not None and len(self._records) >= plan.max_faults):
                return None
            self._records.append(FaultRecord(ordinal, method.upper(), path, kind))
            return kind

    @property
    def records(self) -> list[FaultRecord]:
        with self._lock:
            return list(self._records)

    def status(self) -> dict[str, Any]:
        """The plan, how many requests it has seen and the faults injected, by kind."""
        with self._lock:
            by_kind = Counter(record.kind for record in self._records)
            return {
                "plan": self._plan.model_dump(mode="json"),
                "requests": self._ordinal,
                "faults": len(self._records),
                "by_kind": dict(sorted(by_kind.items())),
            }


def abort_connection(transport: Any) -> bool:
    """Reset a client connection (RST, not a clean close); ``False`` when there is no transport."""
    if transport is None or not hasattr(transport, "abort"):
        return False
    sock = transport.get_extra_info("socket") if hasattr(transport, "get_extra_info") else None
    if sock is not None:
        with suppress(OSError):
            # Linger 0 makes close() send RST, as a dropped connection in the network would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


def _uvicorn_transport(receive: Receive) -> Any:
    """The connection's transport: uvicorn passes ``receive`` bound to its request cycle."""
    return getattr(getattr(receive, "__self__", None), "transport", None)


_ERRORS: dict[str, tuple[int, str, str]] = {
    "500": (500, "InternalError", "Server encountered an internal error. Please try again after some time."),
    "503": (503, "ServerBusy", "The server is currently unable to receive requests. Please retry later."),
    "429": (429, "TooManyRequests", "The server is throttling requests of this account. Retry later."),
}


class FaultInjectionMiddleware:
    """ASGI middleware that applies a :class:`FaultInjector`'s plan and serves the control API."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, account_name: str, account_key: str) -> None:
        self.app = app
        self.injector = injector
        self.account_name = account_name
        self.account_key = account_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == CONTROL_PATH:
            await self._control(scope, receive, send)
            return
        if self.injector.plan.rate <= 0.0:  # no faults planned (the usual case): nothing to look at
            await self.app(scope, receive, send)
            return
        kind = self.injector.choose(scope["method"], path, Headers(scope=scope).get("user-agent", ""))
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "latency":
            await asyncio.sleep(self.injector.plan.latency)
            await self.app(scope, receive, send)
        elif kind == "reset":
            await self._reset(receive)
        elif kind == "lost":
            await self._lose_response(scope, receive, send)
        else:
            await self._error(kind, scope, receive, send)

    async def _error(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        from airflow_batch_provider.emulator.errors import BatchError
        from airflow_batch_provider.emulator.routes.common import error_response

        status, code, message = _ERRORS[kind]
        headers = self.injector.plan.retry_after_headers() if status in (429, 503) else {}
        response = error_response(BatchError(status, code, message, headers=headers), Request(scope))
        await response(scope, receive, send)

    async def _reset(self, receive: Receive) -> None:
        if not abort_connection(_uvicorn_transport(receive)):
            raise ConnectionResetError("fault injection: connection reset")
        # Let the server see the connection go, so it does not try to answer on it.
        await asyncio.sleep(0)

    async def _lose_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def discard(message: Message) -> None:
            return None

        await self.app(scope, receive, discard)
        await self._reset(receive)

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        from airflow_batch_provider.emulator.auth import verify_received
        from airflow_batch_provider.emulator.errors import BatchError
        from airflow_batch_provider.emulator.request_bodies import MAX_BODY_BYTES, read_raw
        from airflow_batch_provider.emulator.routes.common import error_response, json_response

        request = Request(scope, receive)
        try:
            verify_received(request, self.account_name, self.account_key)
            if request.method == "PUT":
                self.injector.set_plan(_parse_plan(await read_raw(request, MAX_BODY_BYTES)))
                log.info("fault plan set: %s", self.injector.plan.model_dump(mode="json"))
            elif request.method == "DELETE":
                self.injector.set_plan(None)
            elif request.method != "GET":
                raise BatchError(
                    405, "UnsupportedHttpVerb", "Use GET, PUT (a JSON fault plan) or DELETE on this resource."
                )
        except BatchError as err:
            await error_response(err, request)(scope, receive, send)
            return
        await json_response(self.injector.status())(scope, receive, send)


def _parse_plan(body: bytes) -> FaultPlan:
    from airflow_batch_provider.emulator.errors import BatchError

    try:
        return FaultPlan.model_validate(json.loads(body or b"{}"))
    except (ValueError, ValidationError) as err:
        raise BatchError(
            400, "InvalidRequestBody", f"The body is not a valid fault plan: {err}".replace("\n", " ")
        ) from None


def plan_from_options(
    rate: float,
    seed: int,
    kinds: str | Sequence[str] | None = None,
    **options: Any,
) -> FaultPlan:
    """A plan from command-line style options (``kinds`` as ``"500,503,reset"``)."""
    if isinstance(kinds, str):
        kinds = [kind.strip() for kind in kinds.split(",") if kind.strip()]
    fields: dict[str, Any] = {"rate": rate, "seed": seed, **options}
    if kinds:
        fields["kinds"] = tuple(kinds)
    return FaultPlan.model_validate(fields)


__all__ = [
    "ALL_KINDS",
    "CONTROL_PATH",
    "FaultInjectionMiddleware",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FaultRecord",
    "abort_connection",
    "plan_from_options",
]
