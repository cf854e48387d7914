"""Task counts of a job, by state and by result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TaskCounts:
    """Task counts of a job, by state and by result."""

    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.active + self.running + self.completed

    @property
    def pending(self) -> int:
        return self.active + self.running

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TaskCounts:
        data = data or {}
        return cls(
            **{
                key: int(data.get(key) or 0)
                for key in ("active", "running", "completed", "succeeded", "failed")
            }
        )
