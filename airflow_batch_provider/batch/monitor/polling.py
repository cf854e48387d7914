"""The one polling loop: check, stop when done, give up at a deadline or after too many errors in a row.

Every wait of the provider runs on it: the triggers (:func:`apoll_until`), the operators' blocking
waits and the hook's deletion waits (:func:`poll_until`). Sensors in poke or reschedule mode are
polled by Airflow itself and run one check per poke; deferred, they hand over to a trigger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

T = TypeVar("T")


class Logger(Protocol):
    """Any logger: the standard library's, or ``self.log`` of an Airflow operator or trigger."""

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult(Generic[T]):
    """How a wait ended: ``done`` (the check said so), ``timeout`` or ``error`` (the error budget spent).

    ``value`` is the last successful check's result (``None`` if none succeeded); ``error`` the last
    error when the budget was spent.
    """

    outcome: Literal["done", "timeout", "error"]
    value: T | None = None
    error: BaseException | None = None
    polls: int = 0

    def raise_error(self) -> PollResult[T]:
        """Re-raise the error that ended the wait; otherwise return this result."""
        if self.outcome == "error" and self.error is not None:
            raise self.error
        return self


@dataclass(frozen=True)
class PollPolicy:
    """How a wait polls: every ``interval`` seconds until ``deadline`` (a ``time.time()`` instant, or
    ``None`` for no deadline), ending after ``max_consecutive_errors`` failed checks in a row."""

    interval: float
    deadline: float | None = None
    max_consecutive_errors: int = 1

    @classmethod
    def within(cls, timeout: float | None, interval: float, max_consecutive_errors: int = 1) -> PollPolicy:
        """A policy whose deadline is ``timeout`` seconds from now (``None``: no deadline)."""
        deadline = None if timeout is None else time.time() + timeout
        return cls(interval=interval, deadline=deadline, max_consecutive_errors=max_consecutive_errors)

    def expired(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline


class _Loop(Generic[T]):
    """The bookkeeping both loops share: the last value, the error streak, the deadline."""

    def __init__(self, policy: PollPolicy, what: str, logger: Logger) -> None:
        self.policy = policy
        self.what = what
        self.log = logger
        self.value: T | None = None
        self.errors = 0
        self.polls = 0

    def failed(self, err: Exception) -> PollResult[T] | None:
        """Count an error: the result that ends the wait, or ``None`` to poll again."""
        self.polls += 1
        self.errors += 1
        if self.errors >= max(1, self.policy.max_consecutive_errors):
            return PollResult("error", self.value, err, self.polls)
        self.log.warning("Reading %s failed (%s); will retry", self.what, err)
        return None

    def succeeded(self, value: T, done: bool) -> PollResult[T] | None:
        """Record a check: the result that ends the wait, or ``None`` to poll again."""
        self.polls += 1
        self.errors = 0
        self.value = value
        if done:
            return PollResult("done", value, None, self.polls)
        if self.policy.expired():
            return PollResult("timeout", value, None, self.polls)
        return None


def poll_until(
    check: Callable[[], T],
    done: Callable[[T], bool],
    policy: PollPolicy,
    *,
    what: str = "the resource",
    on_value: Callable[[T], None] | None = None,
    logger: Logger | None = None,
) -> PollResult[T]:
    """Call ``check`` every ``policy.interval`` seconds until ``done(value)``, the deadline or the error
    budget; ``on_value`` sees every successful check (to log progress), ``logger`` the retried errors."""
    loop: _Loop[T] = _Loop(policy, what, logger or log)
    while True:
        try:
            value = check()
        except Exception as err:
            result = loop.failed(err)
        else:
            if on_value is not None:
                on_value(value)
            result = loop.succeeded(value, done(value))
        if result is not None:
            return result
        time.sleep(policy.interval)


async def apoll_until(
    check: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    policy: PollPolicy,
    *,
    what: str = "the resource",
    on_value: Callable[[T], None] | None = None,
    logger: Logger | None = None,
) -> PollResult[T]:
    """:func:`poll_until` for coroutines, sleeping without blocking the event loop."""
    loop: _Loop[T] = _Loop(policy, what, logger or log)
    while True:
        try:
            value = await check()
        except Exception as err:
            result = loop.failed(err)
        else:
            if on_value is not None:
                on_value(value)
            result = loop.succeeded(value, done(value))
        if result is not None:
            return result
        await asyncio.sleep(policy.interval)
