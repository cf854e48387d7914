"""Where a trigger keeps its wait's progress so that a re-created trigger (a triggerer restart, another
triggerer) goes on from it instead of from the arguments it was deferred with."""

from __future__ import annotations

import inspect
from typing import Any, Protocol


class WaitStateStore(Protocol):
    """A key-value store with Airflow's ``task_state_store`` interface (``get``/``set``, optionally
    ``aget``/``aset``), scoped to one task instance."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


def wait_progress_key(resource: str) -> str:
    """The state store key of a wait's progress on ``resource`` (``pool 'p1'``, ``job 'j1'``)."""
    return f"batch_wait_progress {resource}"


async def load_state(store: WaitStateStore, key: str) -> dict[str, Any] | None:
    """The saved progress under ``key``, or ``None``; the async accessor is used when the store has one."""
    getter = getattr(store, "aget", None)
    value = (
        await getter(key) if getter is not None and inspect.iscoroutinefunction(getter) else store.get(key)
    )
    return value if isinstance(value, dict) else None


async def save_state(store: WaitStateStore, key: str, value: dict[str, Any]) -> None:
    """Save the progress under ``key`` (async accessor first)."""
    setter = getattr(store, "aset", None)
    if setter is not None and inspect.iscoroutinefunction(setter):
        await setter(key, value)
    else:
        store.set(key, value)


__all__ = ["WaitStateStore", "load_state", "save_state", "wait_progress_key"]
