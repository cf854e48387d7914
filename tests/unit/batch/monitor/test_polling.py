"""The one polling loop every wait runs on: done, deadline, error budget, progress callback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from airflow_batch_provider.batch.monitor.polling import PollPolicy, apoll_until, poll_until


def _script(*steps: object) -> Callable[[], object]:
    """A check answering ``steps`` in order (an exception is raised), then repeating the last one."""
    answers: Iterator[object] = iter(steps)
    last: list[object] = []

    def check() -> object:
        step = next(answers, last[-1] if last else None)
        last.append(step)
        if isinstance(step, Exception):
            raise step
        return step

    return check


def test_stops_when_done_and_reports_every_value() -> None:
    seen: list[object] = []
    result = poll_until(_script(1, 2, 3), lambda v: v == 3, PollPolicy(0), on_value=seen.append)
    assert (result.outcome, result.value, result.polls, seen) == ("done", 3, 3, [1, 2, 3])


def test_gives_up_at_the_deadline_with_the_last_value() -> None:
    started = time.monotonic()
    result = poll_until(_script("waiting"), lambda v: False, PollPolicy.within(0.3, 0.05))
    assert result.outcome == "timeout" and result.value == "waiting"
    assert 0.25 <= time.monotonic() - started < 2


def test_errors_in_a_row_spend_the_budget_and_a_success_refills_it() -> None:
    flaky = _script(OSError("a"), 1, OSError("b"), OSError("c"), 2)
    result = poll_until(flaky, lambda v: v == 2, PollPolicy(0, max_consecutive_errors=2))
    assert result.outcome == "error" and isinstance(result.error, OSError) and result.value == 1
    assert str(result.error) == "c"
    with pytest.raises(OSError, match="c"):
        result.raise_error()


def test_without_a_budget_the_first_error_ends_the_wait() -> None:
    result = poll_until(_script(ValueError("boom")), lambda v: True, PollPolicy(0))
    assert result.outcome == "error" and result.polls == 1


def test_the_async_loop_behaves_the_same() -> None:
    async def scenario() -> None:
        check = _script(OSError("x"), 1, 5)

        async def acheck() -> object:
            return check()

        result = await apoll_until(acheck, lambda v: v == 5, PollPolicy(0, max_consecutive_errors=2))
        assert (result.outcome, result.value, result.polls) == ("done", 5, 3)
        timeout = await apoll_until(acheck, lambda v: False, PollPolicy.within(0.1, 0.02))
        assert timeout.outcome == "timeout" and timeout.value == 5

    asyncio.run(scenario())
