"""Waiting for account capacity: retry a call with exponential backoff while a quota is used up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

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
        delay = self.first_delay
        while True:
            yield delay
            delay = min(delay * 2, self.max_delay)


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


__all__ = ["QuotaWait", "QuotaWaitExpired", "call_when_capacity"]
