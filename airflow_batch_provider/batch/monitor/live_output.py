"""Live task output: the new lines of the running tasks' ``stdout.txt``/``stderr.txt`` on every poll.

Each file is read from where the last poll stopped (``ocp-range``), so no byte is read twice, and a poll
reads at most ``max_tasks`` tasks and ``max_bytes`` per file: its cost does not grow with the job.
Only complete lines are shown; a partial last line waits for the next poll (unless a whole chunk has
no line break). A task is followed while it runs; a finished task, or one whose node went away, drops
out of the running list and is no longer read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.batch.monitor.io import BatchIO
from airflow_batch_provider.batch.monitor.job import prefix_filter

STD_FILES = ("stdout.txt", "stderr.txt")


@dataclass
class OutputFollower:
    """Follows the output of a job's running tasks (those under ``task_id_prefix``, or ``task_ids``).

    :param job_id: The job.
    :param task_id_prefix: Follow only tasks whose id starts with this.
    :param task_ids: Follow only these tasks (a subset the user chose).
    :param max_tasks: Tasks read per poll, at most.
    :param max_bytes: Bytes read per file and poll, at most.
    :param offsets: Where each ``"<task id>/<file>"`` was read up to (serializable, for a trigger).
    """

    job_id: str
    task_id_prefix: str | None = None
    task_ids: tuple[str, ...] | None = None
    max_tasks: int = 5
    max_bytes: int = 16384
    offsets: dict[str, int] = field(default_factory=dict)

    def wanted(self, counts: TaskCounts | None, up_to: int) -> bool:
        """Whether to read this poll: something runs, and the watch is small (or the tasks were chosen)."""
        if counts is None or counts.running <= 0:
            return False
        return bool(self.task_ids) or counts.total <= up_to

    def settings(self) -> dict[str, Any]:
        """The follower's settings and progress as JSON (to serialize it with a trigger)."""
        return {
            "task_ids": list(self.task_ids) if self.task_ids else None,
            "max_tasks": self.max_tasks,
            "max_bytes": self.max_bytes,
            "offsets": dict(self.offsets),
        }

    async def _running_tasks(self, io: BatchIO) -> list[str]:
        running = "state eq 'running'"
        if self.task_ids:
            wanted = list(self.task_ids)[: self.max_tasks]
            clause = " or ".join(f"id eq '{task_id.replace(chr(39), chr(39) * 2)}'" for task_id in wanted)
            filter_ = f"{running} and ({clause})"
        elif self.task_id_prefix:
            filter_ = f"{running} and {prefix_filter(self.task_id_prefix)}"
        else:
            filter_ = running
        tasks = await io.list_tasks(self.job_id, filter=filter_, select=["id"], limit=self.max_tasks)
        return [str(task["id"]) for task in tasks]

    async def poll(self, io: BatchIO) -> list[str]:
        """The new complete lines since the last poll, each as ``[<task id>] <line>`` (stderr marked)."""
        lines: list[str] = []
        for task_id in await self._running_tasks(io):
            for name in STD_FILES:
                key = f"{task_id}/{name}"
                start = self.offsets.get(key, 0)
                data = await io.read_task_file_from(self.job_id, task_id, name, start, self.max_bytes)
                if not data:
                    continue
                complete = data if len(data) >= self.max_bytes else data[: data.rfind(b"\n") + 1]
                if not complete:
                    continue
                self.offsets[key] = start + len(complete)
                tag = task_id if name == "stdout.txt" else f"{task_id} stderr"
                text = complete.decode("utf-8", errors="replace")
                lines.extend(f"[{tag}] {line}" for line in text.splitlines())
        return lines


def log_lines(lines: Iterable[str], log: Callable[..., Any]) -> None:
    """Write followed lines to a logger's ``info`` (one record each, so the UI shows them as they come)."""
    for line in lines:
        log("%s", line)
