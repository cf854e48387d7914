"""Pools against the Batch emulator: create, reuse, refuse, recreate, wait (sync and deferred), fail fast."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_batch_provider.exceptions import BatchPoolNotReadyError, BatchProviderError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.sensors.pool import BatchPoolSensor
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.triggers.pool import BatchPoolTrigger
from tests.support.triggers import events_of, stored_kwargs

pytestmark = pytest.mark.integration


def _pool_op(pool_id: str, **kw: Any) -> BatchCreatePoolOperator:
    args: dict[str, Any] = dict(
        task_id="create_pool",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        image="ubuntu-24.04",
        target_dedicated_nodes=2,
        poll_interval=0.2,
        timeout=60,
    )
    args.update(kw)
    return BatchCreatePoolOperator(**args)


def test_create_wait_reuse_refuse_recreate_delete(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-pool-{uid}"
    first = _pool_op(pool_id, task_slots_per_node=2, metadata={"owner": "itest"}).execute(context)
    assert first == {
        "pool_id": pool_id,
        "created": True,
        "recreated": False,
        "vm_size": "standard_d2s_v3",
        "task_slots_per_node": 2,
        "usable_nodes": 2,
    }
    pool = hook.get_pool(pool_id)
    assert pool is not None
    assert pool["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 24.04"
    assert pool["metadata"] == [{"name": "owner", "value": "itest"}]

    again = _pool_op(pool_id, task_slots_per_node=2).execute(context)
    assert again["created"] is False and again["usable_nodes"] == 2

    with pytest.raises(BatchProviderError, match="taskSlotsPerNode: existing 2, requested 4") as info:
        _pool_op(pool_id, task_slots_per_node=4, wait_for_completion=False).execute(context)
    assert "if_exists='recreate'" in str(info.value)

    recreated = _pool_op(
        pool_id, task_slots_per_node=4, target_dedicated_nodes=1, if_exists="recreate"
    ).execute(context)
    assert recreated["recreated"] is True and recreated["usable_nodes"] == 1
    assert hook.get_pool(pool_id)["taskSlotsPerNode"] == 4  # type: ignore[index]

    delete = BatchDeletePoolOperator(
        task_id="delete_pool", pool_id=pool_id, wait_for_completion=True, poll_interval=0.2
    )
    assert delete.execute(context) == {"pool_id": pool_id, "outcome": "deleted"}
    assert hook.get_pool(pool_id) is None
    assert delete.execute(context) == {"pool_id": pool_id, "outcome": "not_found"}  # teardown twice is fine


def test_deferred_wait_runs_the_real_trigger(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-defer-{uid}"
    op = _pool_op(pool_id, deferrable=True, target_dedicated_nodes=1)
    from airflow.sdk.exceptions import TaskDeferred

    try:
        result = op.execute(context)
        deferred = None
    except TaskDeferred as err:
        deferred = err
    if deferred is not None:
        trigger = deferred.trigger
        assert isinstance(trigger, BatchPoolTrigger)
        _classpath, kwargs = trigger.serialize()
        json.dumps(kwargs)
        events = asyncio.run(events_of(BatchPoolTrigger(**kwargs)))
        assert len(events) == 1 and events[0]["status"] == "ready"
        result = op.execute_complete(context, events[0], **(deferred.kwargs or {}))
    assert result["pool_id"] == pool_id and result["usable_nodes"] == 1
    assert not context["ti"].xcoms.get("_link_BatchPoolLink")  # no subscription extras: no link
    hook.delete_pool(pool_id)


async def _kill_mid_wait_then_resume(trigger: BatchPoolTrigger) -> list[dict[str, Any]]:
    """Run ``trigger`` until it has polled and is waiting, kill it, and run a copy re-created from its
    serialized form, as a triggerer taking over a dead one's trigger does."""
    first = asyncio.ensure_future(events_of(trigger))
    deadline = asyncio.get_running_loop().time() + 30
    while trigger._last_message is None:  # set when a poll said "waiting"
        assert not first.done() and asyncio.get_running_loop().time() < deadline, "no waiting poll"
        await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    _classpath, kwargs = trigger.serialize()
    return await events_of(BatchPoolTrigger(**json.loads(json.dumps(kwargs))))


def test_a_deferred_pool_create_survives_its_trigger_killed_and_recreated_mid_wait(
    hook: BatchHook, context: dict, uid: str
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    pool_id = f"itest-takeover-{uid}"
    # The start task keeps the nodes booting for a while: the trigger is killed while they do.
    op = _pool_op(pool_id, deferrable=True, poll_interval=0.3, start_task=_start_task("sleep 2"))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, BatchPoolTrigger)
    events = asyncio.run(_kill_mid_wait_then_resume(trigger))
    assert [event["status"] for event in events] == ["ready"], events
    result = op.execute_complete(context, events[0], **(deferred.value.kwargs or {}))
    assert result["pool_id"] == pool_id and result["created"] is True and result["usable_nodes"] == 2
    hook.delete_pool(pool_id)


def test_start_task_failure_fails_with_the_node_stderr(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-bad-start-{uid}"
    op = _pool_op(
        pool_id,
        target_dedicated_nodes=1,
        start_task={
            "command_line": "/bin/sh -c 'echo E: Unable to locate package foo >&2; exit 100'",
            "wait_for_success": True,
        },
    )
    with pytest.raises(BatchPoolNotReadyError) as info:
        op.execute(context)
    message = str(info.value)
    assert "start task failed on 1 node(s)" in message
    assert "exit code 100" in message
    assert "E: Unable to locate package foo" in message
    hook.delete_pool(pool_id)


def test_pool_sensor_reports_start_task_failure_in_deferred_mode(
    hook: BatchHook, context: dict, uid: str
) -> None:
    pool_id = f"itest-sensor-{uid}"
    _pool_op(
        pool_id,
        target_dedicated_nodes=1,
        wait_for_completion=False,
        start_task={"command_line": "/bin/sh -c 'echo boom >&2; exit 2'"},
    ).execute(context)
    trigger = BatchPoolTrigger(pool_id=pool_id, poll_interval=0.2, timeout_at=None)
    (event,) = asyncio.run(events_of(trigger))
    assert event["status"] == "failed" and "boom" in event["message"]
    with pytest.raises(BatchPoolNotReadyError, match="boom"):
        BatchPoolSensor(task_id="wait_pool", pool_id=pool_id).execute_complete(context, event)
    hook.delete_pool(pool_id)


@pytest.fixture
def tiny_quota_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A second emulated account with 2 dedicated cores, as connection ``azbatch_tiny``."""
    with BatchEmulatorServer(dedicated_core_quota=2) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AZBATCH_TINY",
            json.dumps(
                {
                    "conn_type": "azbatch",
                    "host": server.endpoint,
                    "login": server.account_name,
                    "password": server.account_key,
                }
            ),
        )
        yield "azbatch_tiny"


def test_core_quota_fails_fast_with_the_service_message(
    tiny_quota_account: str, context: dict, uid: str
) -> None:
    op = _pool_op(f"itest-quota-{uid}", target_dedicated_nodes=4, azbatch_conn_id=tiny_quota_account)
    with pytest.raises(BatchPoolNotReadyError) as info:
        op.execute(context)
    message = str(info.value)
    assert "AccountCoreQuotaReached" in message
    assert "core quota" in message  # the service's own words
    assert "CoreQuota=2" in message


def test_wait_timeout_is_a_clear_error(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-timeout-{uid}"
    op = _pool_op(
        pool_id,
        target_dedicated_nodes=1,
        start_task={"command_line": "/bin/sh -c 'sleep 5'"},
        timeout=0.3,
        poll_interval=0.1,
    )
    try:
        with pytest.raises(
            BatchPoolNotReadyError, match=r"was not ready after 0s\. Last status: .*waitingforstarttask"
        ):
            op.execute(context)
    finally:
        hook.delete_pool(pool_id)


def test_autoscale_pool_waits_for_the_formula_nodes(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-auto-{uid}"
    result = _pool_op(
        pool_id,
        target_dedicated_nodes=None,
        auto_scale_formula="$TargetDedicatedNodes = 2;",
        auto_scale_evaluation_interval=300,
        min_usable_nodes=2,
    ).execute(context)
    assert result["usable_nodes"] == 2
    pool = hook.get_pool(pool_id)
    assert (
        pool is not None and pool["enableAutoScale"] is True and pool["autoScaleEvaluationInterval"] == "PT5M"
    )
    with pytest.raises(BatchProviderError, match="enableAutoScale: existing True, requested False"):
        _pool_op(pool_id, wait_for_completion=False).execute(context)
    hook.delete_pool(pool_id)


# -- rebooting nodes whose start task failed -----------------------------------------------------------

#: Counts the node's boots in its shared directory, which survives a reboot; fails on the first boot only.
FAILS_ON_FIRST_BOOT = (
    '/bin/sh -c \'echo boot >> "$AZ_BATCH_NODE_SHARED_DIR/boots"; '
    'test -f "$AZ_BATCH_NODE_SHARED_DIR/failed-once" || '
    '{ touch "$AZ_BATCH_NODE_SHARED_DIR/failed-once"; echo E: dpkg lock held >&2; exit 1; }\''
)
ALWAYS_FAILS = (
    '/bin/sh -c \'echo boot >> "$AZ_BATCH_NODE_SHARED_DIR/boots"; echo E: Unable to locate package foo >&2; '
    "exit 100'"
)


def _boots(hook: BatchHook, pool_id: str) -> int:
    """How often the pool's only node has booted (its start task counts the boots)."""
    (node,) = hook.list_nodes(pool_id, select=["id"])
    data = b"".join(hook.client.download_node_file(pool_id, node["id"], "shared/boots"))
    return data.decode().count("boot")


def _start_task(command_line: str) -> dict[str, Any]:
    return {"command_line": command_line, "wait_for_success": True}


def test_a_reboot_fixes_a_start_task_that_fails_once(
    hook: BatchHook, context: dict, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pool_id = f"itest-reboot-{uid}"
    try:
        result = _pool_op(
            pool_id,
            target_dedicated_nodes=1,
            start_task=_start_task(FAILS_ON_FIRST_BOOT),
            max_start_task_reboots=1,
        ).execute(context)
        assert result["usable_nodes"] == 1
        assert _boots(hook, pool_id) == 2  # the first boot and one reboot
        (node,) = hook.list_nodes(pool_id, select=["id"])
        log = capsys.readouterr().out  # the task log
        assert f"Rebooting node {node['id']} of pool '{pool_id}' (reboot 1 of 1)" in log
        assert "exit code 1" in log and "E: dpkg lock held" in log
    finally:
        hook.delete_pool(pool_id)


def test_without_reboots_a_start_task_failure_fails_the_wait_as_before(
    hook: BatchHook, context: dict, uid: str
) -> None:
    pool_id = f"itest-fail-once-{uid}"
    try:
        with pytest.raises(BatchPoolNotReadyError) as info:
            _pool_op(pool_id, target_dedicated_nodes=1, start_task=_start_task(FAILS_ON_FIRST_BOOT)).execute(
                context
            )
        message = str(info.value)
        assert "start task failed on 1 node(s)" in message and "E: dpkg lock held" in message
        assert "Reboot" not in message and "max_start_task_reboots" not in message
        assert _boots(hook, pool_id) == 1
    finally:
        hook.delete_pool(pool_id)


def test_reboots_are_bounded_and_named_in_the_error(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-reboots-{uid}"
    try:
        with pytest.raises(BatchPoolNotReadyError) as info:
            _pool_op(
                pool_id,
                target_dedicated_nodes=1,
                start_task=_start_task(ALWAYS_FAILS),
                max_start_task_reboots=2,
            ).execute(context)
        message = str(info.value)
        assert "start task failed on 1 node(s)" in message
        assert "2 reboot(s) were tried before giving up (max_start_task_reboots=2 per node" in message
        assert "exit code 100" in message and "E: Unable to locate package foo" in message
        assert _boots(hook, pool_id) == 3  # the first boot and two reboots
    finally:
        hook.delete_pool(pool_id)


async def _run_trigger(
    kwargs: dict[str, Any], restart_when: Any, restarts: list[dict[str, Any]]
) -> dict[str, Any]:
    """Run the trigger ``kwargs`` describe until its event. The first time ``restart_when()`` (called
    off the loop) is true while one runs, that trigger is killed and a new one is created from the same
    ``kwargs``: a triggerer restart, which re-creates triggers from the table."""
    running = asyncio.ensure_future(events_of(BatchPoolTrigger(**kwargs)))
    while not running.done():
        if not restarts and await asyncio.to_thread(restart_when):
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            restarts.append(kwargs)
            running = asyncio.ensure_future(events_of(BatchPoolTrigger(**kwargs)))
        await asyncio.sleep(0.05)
    (event,) = running.result()
    return event


def _resume_like_airflow(
    op: Any, context: dict, deferred: Any, restart_when: Any = lambda: False
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """Drive ``op``'s deferrals as Airflow does: each trigger created from its table arguments, each
    event handed to the resume method, which may defer again. Returns what the operator returned (or
    the error it raised), the events, and the restarts made (see :func:`_run_trigger`)."""
    from airflow.sdk.exceptions import TaskDeferred

    events: list[dict[str, Any]] = []
    restarts: list[dict[str, Any]] = []
    while True:
        events.append(asyncio.run(_run_trigger(stored_kwargs(deferred.trigger), restart_when, restarts)))
        try:
            return op.execute_complete(context, events[-1], **(deferred.kwargs or {})), events, restarts
        except TaskDeferred as again:
            deferred = again
        except Exception as err:
            return err, events, restarts


def test_deferred_wait_reboots_from_the_trigger(hook: BatchHook, context: dict, uid: str) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    pool_id = f"itest-defer-reboot-{uid}"
    op = _pool_op(
        pool_id,
        deferrable=True,
        target_dedicated_nodes=1,
        start_task=_start_task(FAILS_ON_FIRST_BOOT),
        max_start_task_reboots=1,
    )
    try:
        with pytest.raises(TaskDeferred) as deferred:  # the first boot fails: never ready at once
            op.execute(context)
        trigger = deferred.value.trigger
        assert isinstance(trigger, BatchPoolTrigger)
        kwargs = stored_kwargs(trigger)
        assert kwargs["max_start_task_reboots"] == 1 and kwargs["checkpoint_each_reboot"] is True
        # Usually empty; the operator's own first check may already have rebooted the node.
        assert set(kwargs["start_task_reboots"]) == {"counts", "rebooted_for"}
        result, events, _ = _resume_like_airflow(op, context, deferred.value)
        assert result["usable_nodes"] == 1 and _boots(hook, pool_id) == 2
        assert events[-1]["status"] == "ready"
        # A reboot the trigger made ended it with a checkpoint; the task deferred again with the count.
        for event in events[:-1]:
            assert event["status"] == "checkpoint", events
            assert list(event["trigger_kwargs"]["start_task_reboots"]["counts"].values()) == [1]
    finally:
        hook.delete_pool(pool_id)


#: A start task that runs for a second, then fails: the node is starting long enough to restart a
#: triggerer while it does.
SLOWLY_FAILS = ALWAYS_FAILS.replace("/bin/sh -c '", "/bin/sh -c 'sleep 1; ", 1)


def test_reboot_counts_carry_over_a_triggerer_restart(hook: BatchHook, context: dict, uid: str) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from tests.support.state_store import MemoryTaskStateStore

    pool_id = f"itest-triggerer-restart-{uid}"
    store = MemoryTaskStateStore()
    context = {**context, "task_state_store": store}
    op = _pool_op(
        pool_id,
        deferrable=True,
        target_dedicated_nodes=1,
        poll_interval=0.2,
        start_task=_start_task(SLOWLY_FAILS),
        max_start_task_reboots=2,
    )

    boot_times: set[str] = set()

    def rebooted_once() -> bool:  # the node's second boot time shows the first reboot
        nodes = hook.list_nodes(pool_id, select=["id", "lastBootTime"])
        boot_times.update(str(node["lastBootTime"]) for node in nodes if node.get("lastBootTime"))
        return len(boot_times) >= 2

    try:
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context)
        error, events, restarts = _resume_like_airflow(op, context, deferred.value, rebooted_once)
        # The triggerer was restarted after the first reboot, and the trigger it re-created knew it.
        (restarted_with,) = restarts
        assert list(restarted_with["start_task_reboots"]["counts"].values()) == [1]
        assert isinstance(error, BatchPoolNotReadyError), events
        assert "2 reboot(s) were tried before giving up" in str(error)
        assert _boots(hook, pool_id) == 3  # the first boot and two reboots, none repeated
        # Each checkpoint also went to the task state store, for a retry of the task.
        saved = store.get(f"batch_wait_progress pool {pool_id!r}")
        assert list(saved["start_task_reboots"]["counts"].values()) == [2]
    finally:
        hook.delete_pool(pool_id)


def test_trigger_fails_after_its_reboots_and_honours_counts_it_was_given(
    hook: BatchHook, context: dict, uid: str
) -> None:
    pool_id = f"itest-trigger-reboots-{uid}"
    try:
        _pool_op(
            pool_id, target_dedicated_nodes=1, wait_for_completion=False, start_task=_start_task(ALWAYS_FAILS)
        ).execute(context)
        trigger = BatchPoolTrigger(pool_id=pool_id, poll_interval=0.1, max_start_task_reboots=1)
        (event,) = asyncio.run(events_of(trigger))
        assert event["status"] == "failed"
        assert (
            "1 reboot(s) were tried" in event["message"]
            and "Unable to locate package foo" in event["message"]
        )
        assert _boots(hook, pool_id) == 2

        # A trigger re-created with the budget already spent (as after a restart) reboots no more.
        _classpath, kwargs = trigger.serialize()
        (again,) = asyncio.run(events_of(BatchPoolTrigger(**json.loads(json.dumps(kwargs)))))
        assert again["status"] == "failed" and "1 reboot(s) were tried" in again["message"]
        assert _boots(hook, pool_id) == 2
        with pytest.raises(BatchPoolNotReadyError, match="max_start_task_reboots=1"):
            BatchPoolSensor(task_id="wait_pool", pool_id=pool_id).execute_complete(context, event)
    finally:
        hook.delete_pool(pool_id)


def test_reboot_counts_carry_over_a_triggerer_restart_through_the_state_store(
    hook: BatchHook, context: dict, uid: str
) -> None:
    from tests.support.state_store import MemoryTaskStateStore

    pool_id = f"itest-restart-reboots-{uid}"
    try:
        _pool_op(
            pool_id, target_dedicated_nodes=1, wait_for_completion=False, start_task=_start_task(ALWAYS_FAILS)
        ).execute(context)
        deferred_with = json.loads(
            json.dumps(
                BatchPoolTrigger(pool_id=pool_id, poll_interval=0.1, max_start_task_reboots=1).serialize()[1]
            )
        )
        store = MemoryTaskStateStore()
        first = BatchPoolTrigger(**deferred_with)
        first.state_store = store
        (event,) = asyncio.run(events_of(first))
        assert event["status"] == "failed" and _boots(hook, pool_id) == 2  # one reboot, then no budget

        # A new triggerer re-creates the trigger from the arguments it was deferred with (no reboots
        # in them) in a new event loop; the state store tells it the reboot was made already.
        again = BatchPoolTrigger(**deferred_with)
        again.state_store = store
        (second,) = asyncio.run(events_of(again))
        assert second["status"] == "failed" and "1 reboot(s) were tried" in second["message"]
        assert _boots(hook, pool_id) == 2  # no second reboot
    finally:
        hook.delete_pool(pool_id)


def test_a_retry_goes_on_from_the_reboots_an_earlier_try_made(hook: BatchHook, uid: str) -> None:
    from tests.support.state_store import MemoryTaskStateStore
    from tests.support.task_context import task_context

    pool_id = f"itest-retry-reboots-{uid}"
    store = MemoryTaskStateStore()
    context = {**task_context(uid, "pool"), "task_state_store": store}  # both tries of one task
    try:
        for _try in (1, 2):
            with pytest.raises(BatchPoolNotReadyError, match="1 reboot\\(s\\) were tried"):
                _pool_op(
                    pool_id,
                    target_dedicated_nodes=1,
                    start_task=_start_task(ALWAYS_FAILS),
                    max_start_task_reboots=1,
                ).execute(context)
            assert _boots(hook, pool_id) == 2  # the second try made no reboot of its own
    finally:
        hook.delete_pool(pool_id)


def test_pool_sensor_reboots_in_poke_mode(hook: BatchHook, context: dict, uid: str) -> None:
    pool_id = f"itest-sensor-reboot-{uid}"
    try:
        _pool_op(
            pool_id,
            target_dedicated_nodes=1,
            wait_for_completion=False,
            start_task=_start_task(FAILS_ON_FIRST_BOOT),
        ).execute(context)
        sensor = BatchPoolSensor(
            task_id="wait_pool", pool_id=pool_id, max_start_task_reboots=1, poke_interval=0.1, timeout=60
        )
        assert sensor.execute(context) == {"pool_id": pool_id, "usable_nodes": 1}
        assert _boots(hook, pool_id) == 2
    finally:
        hook.delete_pool(pool_id)
