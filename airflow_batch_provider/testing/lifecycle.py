"""One shape for the local services the test helpers start: ``start()``, ``stop()``, ``with``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

S = TypeVar("S", bound="StartStop")


class StartStop:
    """A service started by ``start()`` and stopped by ``stop()``; ``with`` does both."""

    def start(self: S, *args: Any, **kwargs: Any) -> S:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
