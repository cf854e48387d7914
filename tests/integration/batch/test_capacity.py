"""Waiting for account capacity, against an emulator with a small quota: the create waits, then succeeds
once capacity is freed, and fails with a clear error when the bound passes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_batch_provider.batch.capacity import QuotaWait
from airflow_batch_provider.exceptions import BatchProviderError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.support.task_context import task_context
from tests.support.triggers import events_of, recreated

CONN = "azbatch_capacity"


@pytest.fixture
def one_job_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchHook]:
    """An emulator account that holds one active job, with a pool, and a hook on it."""
    with BatchEmulatorServer(step_delay=0.005, active_job_quota=1) as server:
        conn = {
            "conn_type": "azbatch",
            "host": server.endpoint,
            "login": server.account_name,
            "password": server.account_key,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        BatchCreatePoolOperator(
            task_id="pool",
            pool_id="p",
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=1,
            wait_for_completion=False,
            azbatch_conn_id=CONN,
        ).execute(task_context("capacity"))
        yield BatchHook(CONN)


def _create(job_id: str, **options: Any) -> dict[str, Any]:
    return BatchCreateJobOperator(
        task_id=f"create-{job_id}", job_id=job_id, pool_id="p", azbatch_conn_id=CONN, **options
    ).execute(task_context("capacity"))


def test_create_waits_for_the_job_quota_and_succeeds_once_a_job_ends(one_job_account: BatchHook) -> None:
    _create("blocking")
    freer = threading.Timer(1.0, one_job_account.terminate_job, args=("blocking",))
    freer.start()
    started = time.monotonic()
    try:
        result = _create("waiting", quota_wait_timeout=30, quota_retry_delay=0.2)
    finally:
        freer.join()
    assert result == {"job_id": "waiting", "pool_id": "p", "created": True}
    assert time.monotonic() - started >= 1.0  # it did wait for the blocking job to end
    assert one_job_account.get_job("waiting") is not None


def test_create_fails_naming_the_quota_when_the_wait_bound_passes(one_job_account: BatchHook) -> None:
    _create("blocking")
    started = time.monotonic()
    with pytest.raises(BatchProviderError, match="active job quota is used up") as info:
        _create("waiting", quota_wait_timeout=1.0, quota_retry_delay=0.2)
    assert 1.0 <= time.monotonic() - started < 10
    assert "still used up after waiting" in str(info.value)
    assert "quota_wait_timeout" in str(info.value)
    assert one_job_account.get_job("waiting") is None


def test_without_a_quota_wait_the_create_fails_at_once(one_job_account: BatchHook) -> None:
    _create("blocking")
    started = time.monotonic()
    with pytest.raises(BatchProviderError, match="set quota_wait_timeout"):
        _create("second")
    assert time.monotonic() - started < 5


def _resume_deferred_create(op: BatchCreateJobOperator, deferred: Any) -> dict[str, Any]:
    """Run the deferral's trigger (its pause), then resume the operator; again while it defers."""
    from airflow.sdk.exceptions import TaskDeferred

    while True:
        assert deferred.method_name == "execute_after_quota_pause"
        asyncio.run(events_of(deferred.trigger))  # the pause (Airflow's trigger: its own serialization)
        try:
            return getattr(op, deferred.method_name)(task_context("capacity"), None, **deferred.kwargs)
        except TaskDeferred as again:
            deferred = again


def _deferred_create(quota_wait_timeout: float) -> tuple[BatchCreateJobOperator, Any]:
    """A deferrable create of job ``waiting`` while job ``blocking`` holds the only slot, and the
    deferral its execute raised (the quota is used up: the worker is freed)."""
    from airflow.sdk.exceptions import TaskDeferred

    _create("blocking")
    op = BatchCreateJobOperator(
        task_id="create-waiting",
        job_id="waiting",
        pool_id="p",
        azbatch_conn_id=CONN,
        quota_wait_timeout=quota_wait_timeout,
        quota_retry_delay=0.2,
        deferrable=True,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context("capacity"))
    return op, deferred.value


def test_a_deferrable_create_spends_the_quota_wait_in_the_triggerer(one_job_account: BatchHook) -> None:
    op, deferred = _deferred_create(quota_wait_timeout=30)
    assert deferred.kwargs["quota_wait"]["tries"] == 1
    freer = threading.Timer(1.0, one_job_account.terminate_job, args=("blocking",))
    freer.start()
    try:
        result = _resume_deferred_create(op, deferred)
    finally:
        freer.join()
    assert result == {"job_id": "waiting", "pool_id": "p", "created": True}
    assert one_job_account.get_job("waiting") is not None


def test_a_deferrable_create_fails_naming_the_quota_when_the_bound_passes(one_job_account: BatchHook) -> None:
    op, deferred = _deferred_create(quota_wait_timeout=1.0)
    with pytest.raises(BatchProviderError, match="active job quota is used up") as info:
        _resume_deferred_create(op, deferred)
    assert "still used up after waiting" in str(info.value)
    assert one_job_account.get_job("waiting") is None


def test_quota_wait_backs_off_exponentially_up_to_its_cap() -> None:
    delays = QuotaWait(timeout=60, first_delay=1, max_delay=5).delays()
    assert [next(delays) for _ in range(5)] == [1, 2, 4, 5, 5]
    with pytest.raises(ValueError, match="first_delay"):
        QuotaWait(timeout=10, first_delay=0)


@pytest.fixture
def two_core_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchHook]:
    """An emulator account with 2 dedicated cores: one standard_d2s_v3 node."""
    with BatchEmulatorServer(step_delay=0.005, dedicated_core_quota=2) as server:
        conn = {
            "conn_type": "azbatch",
            "host": server.endpoint,
            "login": server.account_name,
            "password": server.account_key,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        yield BatchHook(CONN)


def _pool(pool_id: str, **options: Any) -> dict[str, Any]:
    return BatchCreatePoolOperator(
        task_id=f"pool-{pool_id}",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        poll_interval=0.1,
        azbatch_conn_id=CONN,
        **options,
    ).execute(task_context("capacity"))


def test_pool_waits_for_the_core_quota_and_gets_its_node_once_cores_are_freed(
    two_core_account: BatchHook,
) -> None:
    assert _pool("blocking")["usable_nodes"] == 1
    freer = threading.Timer(1.0, two_core_account.delete_pool, args=("blocking",))
    freer.start()
    try:
        result = _pool("waiting", quota_wait_timeout=30, quota_retry_delay=0.3)
    finally:
        freer.join()
    assert result["usable_nodes"] == 1


def test_pool_quota_wait_fails_naming_the_quota_when_the_bound_passes(two_core_account: BatchHook) -> None:
    from airflow_batch_provider.exceptions import BatchPoolNotReadyError

    _pool("blocking")
    started = time.monotonic()
    with pytest.raises(BatchPoolNotReadyError, match="AccountCoreQuotaReached") as info:
        _pool("waiting", quota_wait_timeout=1.0, quota_retry_delay=0.3)
    assert time.monotonic() - started < 15
    assert "still used up after waiting" in str(info.value)


def _deferred_pool(pool_id: str, **options: Any) -> tuple[BatchCreatePoolOperator, Any]:
    """The pool operator in deferrable mode, and the deferral its execute raised."""
    from airflow.sdk.exceptions import TaskDeferred

    op = BatchCreatePoolOperator(
        task_id=f"pool-{pool_id}",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        poll_interval=0.1,
        azbatch_conn_id=CONN,
        deferrable=True,
        **options,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context("capacity"))
    return op, deferred.value


def _run_trigger(deferred: Any) -> dict[str, Any]:
    """The trigger's event, run from its JSON arguments as a triggerer does."""
    (event,) = asyncio.run(events_of(recreated(deferred.trigger)))
    return event


def test_a_deferred_pool_waits_for_the_core_quota_in_the_triggerer(two_core_account: BatchHook) -> None:
    _pool("blocking")
    op, deferred = _deferred_pool("waiting", quota_wait_timeout=30, quota_retry_delay=0.3)
    assert deferred.trigger.serialize()[1]["core_quota_retry"]["timeout"] == 30
    freer = threading.Timer(1.0, two_core_account.delete_pool, args=("blocking",))
    freer.start()
    try:
        event = _run_trigger(deferred)
    finally:
        freer.join()
    assert event["status"] == "ready", event
    result = op.execute_complete(task_context("capacity"), event)
    assert result["usable_nodes"] == 1 and result["created"] is True


def test_a_deferred_pool_quota_wait_fails_naming_the_quota_when_the_bound_passes(
    two_core_account: BatchHook,
) -> None:
    from airflow_batch_provider.exceptions import BatchPoolNotReadyError

    _pool("blocking")
    op, deferred = _deferred_pool("waiting", quota_wait_timeout=1.0, quota_retry_delay=0.3)
    started = time.monotonic()
    event = _run_trigger(deferred)
    assert time.monotonic() - started < 15
    with pytest.raises(BatchPoolNotReadyError, match="AccountCoreQuotaReached") as info:
        op.execute_complete(task_context("capacity"), event)
    assert "still used up after waiting" in str(info.value) and "quota_wait_timeout" in str(info.value)
