"""Every example DAG imports cleanly, and the two workflow examples have the expected shape."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.support.example_dags import EXAMPLE_DAGS

WORKFLOW_TASKS = {
    "upload_inputs",
    "upload_app",
    "create_output_container",
    "create_pool",
    "create_job",
    "add_tasks",
    "wait_for_tasks",
    "collect_logs",
    "download_outputs",
    "summarize",
    "delete_job",
    "delete_pool",
}
SWEEP_TASKS = {
    "upload_app",
    "create_output_container",
    "sweep_points",
    "merge_task",
    "create_pool",
    "create_job",
    "add_point",
    "add_merge",
    "wait_for_sweep",
    "check_sweep",
    "download_sweep",
    "delete_job",
    "delete_pool",
}


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(EXAMPLE_DAGS))


def test_every_example_dag_imports_without_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    assert {"azure_batch_workflow", "azure_batch_parameter_sweep", "storage_roundtrip"} <= set(bag.dag_ids)
    # The application scripts shipped next to the DAGs are not parsed as DAG files.
    assert not any("/app/" in str(path) for path in bag.file_last_changed)


def _task(dag: Any, task_id: str) -> Any:
    return dag.get_task(task_id)


def test_workflow_dag_has_the_six_steps_with_setup_and_teardown(bag: DagBag) -> None:
    dag = bag.dags.get("azure_batch_workflow")
    assert dag is not None
    assert set(dag.task_ids) == WORKFLOW_TASKS
    assert _task(dag, "create_pool").is_setup and _task(dag, "create_job").is_setup
    assert _task(dag, "delete_pool").is_teardown and _task(dag, "delete_job").is_teardown
    assert _task(dag, "wait_for_tasks").deferrable and _task(dag, "create_pool").deferrable
    assert "create_pool" in _task(dag, "delete_pool").upstream_task_ids
    assert "create_job" in _task(dag, "delete_job").upstream_task_ids
    assert {"upload_inputs", "upload_app", "create_job"} <= _task(dag, "add_tasks").upstream_task_ids
    # No shared disk: summarize reads Blob Storage, the optional download comes after it.
    assert "download_outputs" not in _task(dag, "summarize").get_flat_relative_ids(upstream=True)
    assert _task(dag, "download_outputs").upstream_task_ids == {"summarize"}
    # Real-Azure values: an image alias, a VM size and python3 on the node.
    assert dag.params["image"] == "ubuntu-24.04" and dag.params["vm_size"] == "standard_d2s_v3"
    for task in dag.tasks:
        for conn_attr in ("azbatch_conn_id", "azblob_conn_id"):
            assert getattr(task, conn_attr, None) in (None, "azbatch_default", "azblob_default")


def test_sweep_dag_fans_out_and_merges(bag: DagBag) -> None:
    dag = bag.dags.get("azure_batch_parameter_sweep")
    assert dag is not None
    assert set(dag.task_ids) == SWEEP_TASKS
    add_point = _task(dag, "add_point")
    assert type(add_point).__name__ == "MappedOperator"
    assert "add_point" in _task(dag, "add_merge").upstream_task_ids
    assert _task(dag, "create_job").uses_task_dependencies is True
    assert _task(dag, "delete_pool").is_teardown and _task(dag, "create_pool").is_setup
