"""Just enough of Airflow's task context for operators executed outside the task runner."""

from __future__ import annotations

from typing import Any


class FakeTaskInstance:
    """A task instance that keeps what operators push to XCom in ``xcoms``."""

    def __init__(self, task_id: str = "task", map_index: int = -1, dag_id: str = "itest") -> None:
        self.task_id = task_id
        self.dag_id = dag_id
        self.map_index = map_index
        self.try_number = 1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def task_context(run_id: str, task_id: str = "task", **instance: Any) -> dict[str, Any]:
    """The ``context`` an operator's ``execute`` gets: a fake task instance and the run id."""
    return {"ti": FakeTaskInstance(task_id, **instance), "run_id": run_id}
