"""An in-memory stand-in for Airflow 3.3's ``task_state_store`` (the ``get``/``set`` of its accessor),
shared by the tries, pokes or trigger incarnations of one task instance in a test."""

from __future__ import annotations

from typing import Any


class MemoryTaskStateStore:
    """``get``/``set`` like ``TaskStateStoreAccessor``; values go through JSON as they would in the DB."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        import json

        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        import json

        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = json.dumps(value)
        self.writes += 1
