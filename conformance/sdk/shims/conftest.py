"""Stand-in for azure-batch's ``tests/conftest.py``: one emulator (with Azurite) for the whole session.

The original starts the Azure SDK test proxy and tunes its recording sanitizers; live runs against the
emulator need neither.
"""

from __future__ import annotations

from collections.abc import Iterator

import emulated_account
import pytest


@pytest.fixture(scope="session", autouse=True)
def emulated_batch_account() -> Iterator[emulated_account.EmulatedAccount]:
    """Start Azurite and the Batch emulator before the first test; stop them after the last."""
    yield emulated_account.start()
    emulated_account.stop()
