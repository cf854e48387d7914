"""Stand-in for azure-batch's ``tests/conftest.py``: one emulator (with Azurite) for the whole session.

The original starts the Azure SDK test proxy and tunes its recording sanitizers; live runs against the
emulator need neither. The tests poll in ``while`` loops without a deadline, so each test gets one
here: a test still running after :data:`TEST_TIMEOUT` seconds fails with the state it waited on.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import emulated_account
import pytest

#: Seconds one test may take (a real pool allocation takes minutes; the emulator takes moments).
TEST_TIMEOUT = 120


@pytest.fixture(scope="session", autouse=True)
def emulated_batch_account() -> Iterator[emulated_account.EmulatedAccount]:
    """Start Azurite and the Batch emulator before the first test; stop them after the last."""
    yield emulated_account.start()
    emulated_account.stop()


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail a test that runs longer than :data:`TEST_TIMEOUT` (its polling loop never ended)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the test ran longer than {TEST_TIMEOUT}s (a state it polls for never came)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
