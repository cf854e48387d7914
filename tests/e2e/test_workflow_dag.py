"""The main example DAG, ``azure_batch_workflow``, run by Airflow (``dag.test()``) on the local stack."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.e2e.conftest import write_csv
from tests.support.example_dags import load_example

pytestmark = pytest.mark.integration

RunDag = Callable[..., tuple[Any, dict[str, Any]]]


def _inputs(directory: Path, count: int) -> dict[str, list[float]]:
    rng = random.Random(5)
    values: dict[str, list[float]] = {}
    for index in range(count):
        column = [round(rng.uniform(-50, 150), 4) for _ in range(30 + 7 * index)]
        name = f"batch-{index}.csv"
        write_csv(directory / name, ["label", "reading"], [[f"r{i}", v] for i, v in enumerate(column)])
        values[name] = column
    return values


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _assert_released(job_id: str, pool_id: str) -> None:
    hook = BatchHook()
    try:
        for found in (hook.get_job(job_id), hook.get_pool(pool_id)):
            assert found is None or str(found.get("state")).lower() == "deleting", found
    finally:
        hook.close()


def test_workflow_runs_end_to_end(
    local_azure_stack: LocalAzureStack, run_dag: RunDag, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = _inputs(tmp_path / "input", 4)
    dag = load_example(monkeypatch, "azure_batch_workflow", AZURE_BATCH_WORKFLOW_POLL_SECONDS="0.2")
    dag_run, xcoms = run_dag(
        dag, run_conf={"input_dir": str(tmp_path / "input"), "output_dir": str(tmp_path / "out")}
    )

    assert str(dag_run.state) == "success", xcoms
    assert set(_states(dag_run).values()) == {"success"}

    assert xcoms["upload_inputs"]["count"] == 4 and xcoms["upload_app"]["count"] >= 1
    pool, job = xcoms["create_pool"], xcoms["create_job"]
    assert pool["created"] and pool["usable_nodes"] == 2 and job["pool_id"] == pool["pool_id"]
    assert job["job_id"].startswith("azure_batch_workflow-manual__")
    assert xcoms["add_tasks"]["task_count"] == 4 and xcoms["add_tasks"]["added"] == 4
    counts = xcoms["wait_for_tasks"]["counts"]
    assert counts["completed"] == 4 and counts["succeeded"] == 4 and counts["failed"] == 0
    logs = xcoms["collect_logs"]["logs"]
    assert len(logs) == 4 and all(entry["stdout.txt"] == "logged" for entry in logs.values())
    assert xcoms["collect_logs"]["output_url_count"] == 12  # a result, stdout and stderr per task
    assert xcoms["summarize"] | {"results": None} == {
        "job_id": job["job_id"],
        "files": 4,
        "tasks": 4,
        "succeeded": 4,
        "failed": 0,
        "outputs": 4,
        "results": None,
    }
    assert xcoms["delete_job"] == {"job_id": job["job_id"], "outcome": "deleted"}
    assert xcoms["delete_pool"] == {"pool_id": pool["pool_id"], "outcome": "deleted"}
    _assert_released(job["job_id"], pool["pool_id"])

    # The statistics computed on the "nodes" are right.
    run_dir = tmp_path / "out" / job["job_id"]
    assert json.loads((run_dir / "summary.json").read_text())["outputs"] == 4
    results = {p.name: json.loads(p.read_text()) for p in run_dir.rglob("*.stats.json")}
    assert sorted(results) == [f"batch-{i}.stats.json" for i in range(4)]
    for name, column in values.items():
        got = results[name.replace(".csv", ".stats.json")]["columns"]
        assert set(got) == {"reading"}  # the label column is not numeric
        stats = got["reading"]
        q1, median, q3 = statistics.quantiles(column, n=4, method="inclusive")
        expected = {
            "count": len(column),
            "mean": statistics.fmean(column),
            "stdev": statistics.stdev(column),
            "min": min(column),
            "max": max(column),
            "p25": q1,
            "median": median,
            "p75": q3,
        }
        for key, value in expected.items():
            assert math.isclose(stats[key], value, rel_tol=1e-9, abs_tol=1e-9), (name, key)
    assert len(list(run_dir.rglob("logs/stdout.txt"))) == 4

    # summarize read the results from Blob Storage, not from the download, and wrote summary.json there.
    instances = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert instances["summarize"].end_date <= instances["download_outputs"].start_date
    blob = (
        BlobStorageHook()
        .get_conn()
        .get_blob_client("batch-workflow-output", f"{job['job_id']}/results/summary.json")
    )
    in_blob = json.loads(blob.download_blob().readall())
    assert in_blob == json.loads((run_dir / "summary.json").read_text()) == xcoms["summarize"]
    assert sorted(in_blob["results"]) == sorted(
        path.relative_to(run_dir).as_posix() for path in run_dir.rglob("*.stats.json")
    )


def test_workflow_releases_the_pool_when_a_task_fails(
    local_azure_stack: LocalAzureStack, run_dag: RunDag, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A CSV without numbers makes its Batch task exit 2: the wait fails, teardown still runs."""
    _inputs(tmp_path / "input", 1)
    write_csv(tmp_path / "input" / "words.csv", ["word"], [["alpha"], ["beta"]])
    dag = load_example(monkeypatch, "azure_batch_workflow", AZURE_BATCH_WORKFLOW_POLL_SECONDS="0.2")
    dag_run, xcoms = run_dag(
        dag,
        run_conf={"input_dir": str(tmp_path / "input"), "output_dir": str(tmp_path / "out"), "nodes": 1},
    )

    assert str(dag_run.state) == "failed"
    states = _states(dag_run)
    assert states["wait_for_tasks"] == "failed"
    assert states["download_outputs"] == "upstream_failed" and states["summarize"] == "upstream_failed"
    # The logs are collected anyway (trigger rule all_done), then the job and the pool are deleted.
    assert states["collect_logs"] == "success"
    assert states["delete_job"] == "success" and states["delete_pool"] == "success"
    assert len(xcoms["collect_logs"]["logs"]) == 2
    assert xcoms["delete_pool"]["outcome"] == "deleted"
    _assert_released(xcoms["create_job"]["job_id"], xcoms["create_pool"]["pool_id"])
