"""Waiting for account capacity: retry a call with exponential backoff while a quota is used up."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class QuotaWait:
    """How long to wait for a quota to free up, and how often to try again meanwhile.

    :param timeout: Seconds to keep trying in all; ``0`` fails at the first quota error.
    :param first_delay: Seconds before the second try; each later delay doubles, up to ``max_delay``.
    :param max_delay: The longest pause between two tries.
    """

    timeout: float
    first_delay: float = 5.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.timeout < 0 or self.first_delay <= 0 or self.max_delay < self.first_delay:
            raise ValueError(
                "A quota wait needs timeout >= 0 and 0 < first_delay <= max_delay; got "
                f"timeout={self.timeout}, first_delay={self.first_delay}, max_delay={self.max_delay}."
            )

    def delays(self) -> Iterator[float]:
        """The pauses between tries: ``first_delay``, doubled each time, capped at ``max_delay``."""
        return (self.delay(attempt) for attempt in itertools.count())

    def delay(self, attempt: int) -> float:
        """The pause after try ``attempt + 1`` (``delay(0)`` is ``first_delay``)."""
        return min(self.first_delay * 2.0 ** min(attempt, 64), self.max_delay)


class QuotaWaitExpired(Exception):
    """The quota was still used up when the wait's bound passed; ``last_error`` is the service's answer."""

    def __init__(self, waited: float, tries: int, last_error: BaseException) -> None:
        super().__init__(f"still used up after {waited:.0f}s and {tries} tries")
        self.waited = waited
        self.tries = tries
        self.last_error = last_error


def call_when_capacity(
    call: Callable[[], T],
    is_quota_error: Callable[[BaseException], bool],
    wait: QuotaWait,
    *,
    on_wait: Callable[[float, BaseException], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """Run ``call``; while it fails with a quota error, wait with backoff and try again (``wait.timeout``).

    Other errors are raised at once. When the bound passes, :class:`QuotaWaitExpired` is raised with the
    last quota error (a ``timeout`` of 0 re-raises the first quota error unchanged).
    """
    started = clock()
    for tries, delay in enumerate(wait.delays(), start=1):
        try:
            return call()
        except Exception as err:
            if not is_quota_error(err):
                raise
            if wait.timeout <= 0:
                raise
            waited = clock() - started
            left = wait.timeout - waited
            if left <= 0:
                raise QuotaWaitExpired(waited, tries, err) from err
            pause = min(delay, left)
            if on_wait is not None:
                on_wait(pause, err)
            sleep(pause)
    raise AssertionError("unreachable: delays() never ends")  # pragma: no cover


@dataclass
class CoreQuotaRetry:
    """A pool wait's answer to a core quota resize error (``AccountCoreQuotaReached`` and its Spot
    form): resize the fixed-size pool to its targets again, on :class:`QuotaWait`'s backoff, until the
    bound passes. Kept across the polls of one wait; :meth:`to_json` hands it to a trigger.

    :param wait: The bound and the backoff.
    :param dedicated_nodes: The pool's target dedicated node count, asked for again at each resize.
    :param low_priority_nodes: The pool's target Spot node count.
    """

    wait: QuotaWait
    dedicated_nodes: int
    low_priority_nodes: int
    #: When the first quota failure was seen (UNIX time), ``None`` before it.
    started_at: float | None = None
    #: When the next resize is due (UNIX time).
    next_resize_at: float | None = None
    #: Resizes made so far.
    resizes: int = 0

    def on_quota_failure(self, now: float, steady: bool = True) -> Literal["pause", "resize", "expired"]:
        """What to do at a poll that found the pool failed on the core quota: keep waiting (``pause``),
        resize it again now (``resize``), or give up because the bound has passed (``expired``). A
        pool still resizing (not ``steady``) cannot be resized: the resize waits for the next poll."""
        if self.started_at is None:
            self.started_at = now
            self.next_resize_at = now + self.wait.delay(0)
            return "pause"
        if now - self.started_at >= self.wait.timeout:
            return "expired"
        if not steady or (self.next_resize_at is not None and now < self.next_resize_at):
            return "pause"
        self.resizes += 1
        self.next_resize_at = now + self.wait.delay(self.resizes)
        return "resize"

    def waited(self, now: float) -> float:
        """Seconds since the first quota failure."""
        return 0.0 if self.started_at is None else now - self.started_at

    def to_json(self) -> dict[str, Any]:
        return {
            "timeout": self.wait.timeout,
            "first_delay": self.wait.first_delay,
            "max_delay": self.wait.max_delay,
            "dedicated_nodes": self.dedicated_nodes,
            "low_priority_nodes": self.low_priority_nodes,
            "started_at": self.started_at,
            "next_resize_at": self.next_resize_at,
            "resizes": self.resizes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CoreQuotaRetry:
        return cls(
            QuotaWait(float(data["timeout"]), float(data["first_delay"]), float(data["max_delay"])),
            int(data["dedicated_nodes"]),
            int(data["low_priority_nodes"]),
            started_at=data.get("started_at"),
            next_resize_at=data.get("next_resize_at"),
            resizes=int(data.get("resizes") or 0),
        )


__all__ = ["CoreQuotaRetry", "QuotaWait", "QuotaWaitExpired", "call_when_capacity"]
