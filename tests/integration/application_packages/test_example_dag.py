"""The application-package example DAG, run for real (``dag.test()``) against the local Azure stack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.integration.application_packages.conftest import ARM_CONN_ID
from tests.support.example_dags import load_example

pytestmark = pytest.mark.integration


def _load_example(monkeypatch: pytest.MonkeyPatch, work_dir: Path) -> Any:
    return load_example(
        monkeypatch,
        "azure_batch_application_package",
        BATCH_APP_ARM_CONN_ID=ARM_CONN_ID,
        BATCH_APP_WORK_DIR=str(work_dir),
        BATCH_APP_POLL_SECONDS="0.2",
    )


def test_example_publishes_and_runs_tasks_from_the_package(
    stack: LocalAzureStack,
    run_dag: Callable[..., tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    dag = _load_example(monkeypatch, tmp_path)
    dag_run, xcoms = run_dag(dag)
    assert str(dag_run.state) == "success", xcoms
    assert xcoms["publish_package"] == {"applicationId": "wordcount", "version": "1.0"}
    assert xcoms["add_tasks"]["added"] == 3
    # A second run publishes nothing new: the same program gives the same zip.
    writes_before = [entry for entry in stack.batch.management_request_log if entry[0] in ("PUT", "POST")]
    dag_run, xcoms = run_dag(dag)
    assert str(dag_run.state) == "success"
    writes_after = [entry for entry in stack.batch.management_request_log if entry[0] in ("PUT", "POST")]
    assert [w for w in writes_after if "/versions/" in w[1]] == [
        w for w in writes_before if "/versions/" in w[1]
    ]
