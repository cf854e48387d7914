"""Whether a task's ``dependsOn`` is met, without ever expanding its id ranges.

A range of ``taskIdRanges`` names the tasks whose ids are the decimal numbers from ``start`` to
``end``; it may span billions of ids while the job holds a few tasks. So the ids are never listed:
a :class:`CompletedTasks` view sorts the job's completed numeric ids once per scheduling pass, and a
range is met when the count of its completed ids (two binary searches) equals its width. The cost
of a pass grows with the tasks that exist, never with the ranges asked for.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.jobs import Job
    from airflow_batch_provider.emulator.models.tasks import Task

DependencyState = Literal["ready", "waiting", "blocked"]


def _number(task_id: str) -> int | None:
    """The number a task id stands for in a range (``"7"``, not ``"07"``), else None."""
    if task_id.isascii() and task_id.isdigit() and (task_id == "0" or not task_id.startswith("0")):
        return int(task_id)
    return None


def _blocks(task: Task) -> bool:
    return (task.exit_options or {}).get("dependencyAction") == "block"


class CompletedTasks:
    """A job's completed tasks as its waiting tasks see them; build one per job per scheduling pass."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._numbers: tuple[list[int], list[int]] | None = None

    def _sorted_numbers(self) -> tuple[list[int], list[int]]:
        """Completed numeric ids, sorted: (those that satisfy dependents, those that block them)."""
        if self._numbers is None:
            satisfying: list[int] = []
            blocking: list[int] = []
            for task in self.job.tasks.values():
                number = _number(task.id)
                if number is not None and task.state == "completed":
                    (blocking if _blocks(task) else satisfying).append(number)
            self._numbers = (sorted(satisfying), sorted(blocking))
        return self._numbers

    def state_of(self, task: Task) -> DependencyState:
        """``ready`` when every dependency completed and satisfies it, else ``blocked`` or ``waiting``."""
        depends_on: dict[str, Any] = task.properties.get("dependsOn") or {}
        waiting = False
        for task_id in depends_on.get("taskIds") or []:
            dependency = self.job.tasks.get(str(task_id).lower())
            if dependency is None or dependency.state != "completed":
                waiting = True
            elif _blocks(dependency):
                return "blocked"
        ranges = depends_on.get("taskIdRanges") or []
        if ranges:
            satisfying, blocking = self._sorted_numbers()
            for id_range in ranges:
                start, end = int(id_range["start"]), int(id_range["end"])
                if _count(blocking, start, end):
                    return "blocked"
                if _count(satisfying, start, end) < end - start + 1:
                    waiting = True
        return "waiting" if waiting else "ready"


def _count(numbers: list[int], start: int, end: int) -> int:
    """How many of the sorted ``numbers`` lie in ``[start, end]``."""
    return bisect.bisect_right(numbers, end) - bisect.bisect_left(numbers, start)
