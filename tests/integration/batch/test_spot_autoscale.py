"""The Spot-with-dedicated-fallback autoscale template, evaluated by the emulator through the SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from azure.batch import models as batch_models

from airflow_batch_provider.batch.autoscale import spot_with_dedicated_fallback
from airflow_batch_provider.emulator.models.autoscale import evaluate_formula
from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.support.task_context import task_context

CONN = "azbatch_spot"
FORMULA = spot_with_dedicated_fallback(max_spot_nodes=4, max_dedicated_nodes=2, tasks_per_node=1)


def _results(run: batch_models.AutoScaleRun) -> dict[str, str]:
    assert run.error is None, run.error
    return dict(item.split("=", 1) for item in (run.results or "").split(";"))


@pytest.fixture
def spot_hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchHook]:
    """A hook on an emulator slow enough (0.3 s a step) that a preempted node stays preempted ~1.5 s."""
    with BatchEmulatorServer(step_delay=0.3) as server:
        conn = {
            "conn_type": "azbatch",
            "host": server.endpoint,
            "login": server.account_name,
            "password": server.account_key,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        hook = BatchHook(CONN)
        hook.emulator = server  # type: ignore[attr-defined]
        yield hook
        hook.close()


def test_spot_nodes_follow_the_work_and_a_preempted_node_gets_a_dedicated_stand_in(
    spot_hook: BatchHook,
) -> None:
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id="spot",
        vm_size="standard_d2s_v3",
        target_spot_nodes=1,
        poll_interval=0.2,
        azbatch_conn_id=CONN,
    ).execute(task_context("spot"))
    client = spot_hook.client
    spot_hook.create_job({"id": "work", "poolInfo": {"poolId": "spot"}})
    tasks = [{"id": f"t{i}", "commandLine": "/bin/sh -c 'sleep 30'"} for i in range(3)]
    assert spot_hook.add_tasks("work", tasks).added == 3
    client.enable_pool_auto_scale(
        "spot",
        batch_models.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=FORMULA, auto_scale_evaluation_interval=None
        ),
    )
    options = batch_models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=FORMULA)
    before = _results(client.evaluate_pool_auto_scale("spot", options))
    assert before["$TargetLowPriorityNodes"] == "3"  # one Spot node per task, under the cap of 4
    assert before["$TargetDedicatedNodes"] == "0"  # nothing preempted: no dedicated cost

    deadline = time.monotonic() + 30
    while not [n for n in client.list_nodes("spot") if n.state == batch_models.BatchNodeState.RUNNING]:
        assert time.monotonic() < deadline, "no Spot node started running a task"
        time.sleep(0.1)
    running = next(n for n in client.list_nodes("spot") if n.state == batch_models.BatchNodeState.RUNNING)
    spot_hook.emulator.preempt_node("spot", running.id)  # type: ignore[attr-defined]
    during = _results(client.evaluate_pool_auto_scale("spot", options))
    assert during["$TargetDedicatedNodes"] == "1"  # the preempted node gets a dedicated stand-in
    assert during["$NodeDeallocationOption"] == "taskcompletion"


def test_the_template_respects_its_bounds_in_the_emulator_evaluator() -> None:
    formula = spot_with_dedicated_fallback(
        max_spot_nodes=5, max_dedicated_nodes=2, min_dedicated_nodes=1, tasks_per_node=4
    )
    busy = evaluate_formula(
        formula,
        current_dedicated=1,
        current_low_priority=5,
        target_dedicated=1,
        target_low_priority=5,
        metrics={"$ActiveTasks": 30, "$RunningTasks": 20},
        preempted=4,
    )
    assert (busy.target_low_priority, busy.target_dedicated) == (5, 2)  # both capped
    idle = evaluate_formula(
        formula,
        current_dedicated=1,
        current_low_priority=0,
        target_dedicated=1,
        target_low_priority=0,
        metrics={"$ActiveTasks": 0, "$RunningTasks": 0},
    )
    assert (idle.target_low_priority, idle.target_dedicated) == (0, 1)  # the dedicated floor stays
    with pytest.raises(InvalidInputError, match="min_dedicated_nodes"):
        spot_with_dedicated_fallback(max_spot_nodes=1, max_dedicated_nodes=1, min_dedicated_nodes=2)
