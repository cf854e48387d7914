"""Stand-ins for azure-batch's ``tests/decorators.py``: no test proxy, a client for the emulated account.

``recorded_by_proxy_async`` runs the test live as it is (the original does the same when live and not
recording). ``client_setup`` builds the test's ``BatchClient`` for the prepared account with its
Shared Key credential over the endpoint as given (the original forces https and a token credential).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from async_wrapper import wrap_result


def recorded_by_proxy_async(test_func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Run the test live: there is no recording to make or play back."""

    @functools.wraps(test_func)
    async def live(*args: Any, **kwargs: Any) -> Any:
        return await test_func(*args, **kwargs)

    return live


def client_setup(test_func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Call the test with a client of the given class (sync or async) for the prepared account."""

    async def wrapper(self: Any, BatchClient: type, **kwargs: Any) -> None:
        account = kwargs["batch_account"]
        client = BatchClient(credential=kwargs["credential"], endpoint=account.account_endpoint)
        try:
            await test_func(self, client, **kwargs)
        finally:
            await wrap_result(client.close())

    return wrapper
