"""The parameter-sweep example: mapped fan-out, a merge task with Batch dependencies, exit conditions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.support.example_dags import load_example

pytestmark = pytest.mark.integration

RunDag = Callable[..., tuple[Any, dict[str, Any]]]


def _sweep(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_example(monkeypatch, "azure_batch_parameter_sweep", AZURE_BATCH_SWEEP_POLL_SECONDS="0.2")


def test_sweep_skips_points_that_exit_3_and_merges_the_rest(
    local_azure_stack: LocalAzureStack, run_dag: RunDag, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rates = [2.8, 3.2, 3.9, 4.5, -1.0]  # 4.5 and -1.0 are outside (0, 4]: those points exit 3
    dag_run, xcoms = run_dag(
        _sweep(monkeypatch), run_conf={"rates": rates, "steps": 500, "output_dir": str(tmp_path)}
    )

    assert str(dag_run.state) == "success", xcoms
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}
    assert set(states.values()) == {"success"}
    assert sorted(index for task, index in states if task == "add_point") == list(range(len(rates)))
    assert xcoms["check_sweep"] == {"points": 5, "skipped": ["point-03", "point-04"], "merged": 3}
    waited = xcoms["wait_for_sweep"]
    assert waited["failed_count"] == 2 and waited["counts"]["completed"] == 6  # 5 points + the merge

    job_id = xcoms["create_job"]["job_id"]
    merged = json.loads((tmp_path / job_id / "merge" / "sweep.json").read_text())
    assert merged["merged"] == 3 and merged["missing"] == ["point-03", "point-04"]
    assert [point["rate"] for point in merged["points"]] == [2.8, 3.2, 3.9]
    regimes = {point["rate"]: point["regime"] for point in merged["points"]}
    assert regimes == {2.8: "periodic", 3.2: "periodic", 3.9: "chaotic"}
    assert merged["first_chaotic_rate"] == 3.9
    assert xcoms["delete_job"]["outcome"] == "deleted" and xcoms["delete_pool"]["outcome"] == "deleted"


def test_a_real_failure_blocks_the_merge_and_ends_the_job(
    local_azure_stack: LocalAzureStack, run_dag: RunDag, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Exit code 2 (invalid start value) blocks the merge and terminates the job; teardown still runs.

    The first point to fail ends the job, so whichever Airflow step touches the job next fails: adding
    the remaining tasks (the job no longer accepts any) or the wait (the job ended with the merge still
    pending). Either way nothing downstream runs and the pool is released.
    """
    dag_run, xcoms = run_dag(
        _sweep(monkeypatch),
        run_conf={"rates": [3.1, 3.3], "start": 1.5, "nodes": 1, "output_dir": str(tmp_path)},
    )

    assert str(dag_run.state) == "failed"
    states: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, set()).add(str(ti.state))
    assert "failed" in states["add_point"] | states["add_merge"] | states["wait_for_sweep"], states
    assert states["check_sweep"] == {"upstream_failed"} and states["download_sweep"] == {"upstream_failed"}
    assert states["delete_job"] == {"success"} and states["delete_pool"] == {"success"}
    assert xcoms["delete_pool"]["outcome"] == "deleted"
    hook = BatchHook()
    try:
        pool = hook.get_pool(xcoms["create_pool"]["pool_id"])
    finally:
        hook.close()
    assert pool is None or str(pool.get("state")).lower() == "deleting"
