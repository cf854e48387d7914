"""The examples are shaped so that a failed Batch task fails the DAG run.

Airflow sets a run's state from its leaves, ignoring teardown tasks: a run whose only leaf (besides
the teardowns) is a log-collection task on ``all_done`` ends "success" even when its Batch tasks
failed. Each example's Batch wait must therefore reach a leaf through ``all_success`` tasks only, so
its failure turns that leaf ``upstream_failed`` and the run "failed".
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_provider.sensors.job import BatchJobSensor
from tests.support.example_dags import load_example

EXAMPLES = ["azure_batch_workflow", "azure_batch_parameter_sweep", "azure_batch_application_package"]


def run_state_leaves(dag: Any) -> set[str]:
    """The tasks whose states decide the run's, as ``DagRun`` picks them (teardowns left out)."""

    def ignorable(task: Any) -> bool:
        return bool(task.is_teardown and not task.on_failure_fail_dagrun)

    return {
        task.task_id
        for task in dag.tasks
        if not ignorable(task) and all(ignorable(dag.get_task(down)) for down in task.downstream_task_ids)
    }


def fails_a_leaf(dag: Any, task_id: str, leaves: set[str]) -> bool:
    """Whether a failure of ``task_id`` reaches a leaf through ``all_success`` tasks."""
    if task_id in leaves:
        return True
    return any(
        dag.get_task(down).trigger_rule == "all_success" and fails_a_leaf(dag, down, leaves)
        for down in dag.get_task(task_id).downstream_task_ids
    )


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_failed_batch_wait_fails_the_run(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    dag = load_example(monkeypatch, name)
    waits = [task.task_id for task in dag.tasks if isinstance(task, BatchJobSensor)]
    assert waits, f"{name} has no Batch wait"
    leaves = run_state_leaves(dag)
    for wait in waits:
        assert fails_a_leaf(dag, wait, leaves), f"{name}: a failed {wait} leaves the run 'success' ({leaves})"


def test_the_check_itself_catches_an_all_done_leaf() -> None:
    """The shape the README warns about: logs on all_done as the last task before the teardowns."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("all_done_leaf", schedule=None) as dag:
        wait = EmptyOperator(task_id="wait")
        logs = EmptyOperator(task_id="logs", trigger_rule="all_done")
        delete = EmptyOperator(task_id="delete_job")
        wait >> logs >> delete.as_teardown()
    assert not fails_a_leaf(dag, "wait", run_state_leaves(dag))
