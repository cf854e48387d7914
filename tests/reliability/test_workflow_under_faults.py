"""The example workflow DAG completes, exactly once, while 20% of Batch and Storage requests fail.

Every run gets a seeded fault plan on both services (500, 503, 429 with Retry-After, connection
resets, added latency, and lost responses whose change was committed). A run passes only if the DAG
succeeds, every input has its result, the job holds exactly one task per input (no duplicates from
retried creates) and no pool or job is left behind after teardown. ``make test`` runs three seeds;
``make soak`` runs all twenty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.reliability.conftest import load_workflow_dag, write_inputs

pytestmark = pytest.mark.integration

FAULT_RATE = 0.2
INPUTS = 4
QUICK_SEEDS = (1, 2, 3)
SOAK_SEEDS = tuple(range(1, 21))


def _wait_until_empty(stack: LocalAzureStack, timeout: float = 30.0) -> tuple[list[str], list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        pools = stack.batch.call(lambda account: [pool.id for pool in account.pools.all()])
        jobs = stack.batch.call(lambda account: [job.id for job in account.jobs.all()])
        if (not pools and not jobs) or time.monotonic() > deadline:
            return pools, jobs
        time.sleep(0.1)


@pytest.mark.parametrize(
    "seed",
    [
        *QUICK_SEEDS,
        *(pytest.param(seed, marks=pytest.mark.soak, id=f"soak-{seed}") for seed in SOAK_SEEDS),
    ],
)
def test_example_workflow_survives_faults(
    faulty_stack: LocalAzureStack,
    run_dag: Callable[..., tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    seed: int,
) -> None:
    stack, work = faulty_stack, tmp_path
    inputs = write_inputs(work / "input", INPUTS)
    dag = load_workflow_dag(monkeypatch)
    assert _wait_until_empty(stack) == ([], [])
    stack.set_faults(rate=FAULT_RATE, seed=seed, latency=0.05, retry_after=0.05)
    try:
        dag_run, xcoms = run_dag(
            dag,
            run_conf={
                "input_dir": str(work / "input"),
                "output_dir": str(work / "output"),
                "nodes": 2,
            },
        )
    finally:
        assert stack.storage_proxy is not None
        batch_faults = stack.batch.clear_faults()
        storage_faults = stack.storage_proxy.clear_faults()
    context = (
        f"seed {seed}: Batch faults {batch_faults['by_kind']}, Storage faults {storage_faults['by_kind']}"
    )
    assert batch_faults["faults"] > 0 and storage_faults["faults"] > 0, context

    assert str(dag_run.state) == "success", f"{context}; XComs: {xcoms}"
    summary = xcoms["summarize"]
    assert summary["files"] == INPUTS and summary["outputs"] == INPUTS, context
    assert summary["tasks"] == INPUTS and summary["succeeded"] == INPUTS and summary["failed"] == 0, context
    # One Batch task per input: a create retried after a lost response added nothing twice.
    added = xcoms["add_tasks"]
    assert added["task_count"] == INPUTS and added["added"] + added["already_existed"] == INPUTS, context
    results = sorted(path.name for path in (work / "output").rglob("*.stats.json"))
    assert results == sorted(name.replace(".csv", ".stats.json") for name in inputs), context
    # Teardown removed the run's job and pool, and nothing else was ever created under another id.
    assert _wait_until_empty(stack) == ([], []), context
