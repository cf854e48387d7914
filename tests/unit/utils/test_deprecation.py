"""Old public names keep working with a DeprecationWarning; the new ones work silently; both is an error."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.operators.job import BatchDeleteJobOperator, BatchTerminateJobOperator
from airflow_batch_provider.operators.output import BatchCollectTaskOutputOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.triggers.pool import BatchPoolTrigger

POOL = {"task_id": "p", "pool_id": "p", "vm_size": "standard_d2s_v3"}


def _pool(**kwargs: Any) -> BatchCreatePoolOperator:
    return BatchCreatePoolOperator(**POOL, **kwargs)


def _delete_pool(**kwargs: Any) -> BatchDeletePoolOperator:
    return BatchDeletePoolOperator(task_id="d", pool_id="p", **kwargs)


def _delete_job(**kwargs: Any) -> BatchDeleteJobOperator:
    return BatchDeleteJobOperator(task_id="d", job_id="j", **kwargs)


def _collect(**kwargs: Any) -> BatchCollectTaskOutputOperator:
    return BatchCollectTaskOutputOperator(task_id="c", job_id="j", **kwargs)


def _trigger(**kwargs: Any) -> BatchPoolTrigger:
    return BatchPoolTrigger(pool_id="p", **kwargs)


#: (build, old name, old value, new name, new value the old one becomes)
RENAMES: list[tuple[Callable[..., Any], str, Any, str, Any]] = [
    (_pool, "wait_for_ready", False, "wait_for_completion", False),
    (_pool, "wait_timeout", 90, "timeout", 90),
    (_delete_pool, "wait_for_deletion", True, "wait_for_completion", True),
    (_delete_job, "wait_for_deletion", True, "wait_for_completion", True),
    (_collect, "which", "all", "only_failed", False),
    (_collect, "which", "failed", "only_failed", True),
    (_trigger, "carry", {"pool_id": "p"}, "resume_xcom", {"pool_id": "p"}),
]
IDS = [f"{build.__name__}-{old}={value}" for build, old, value, *_ in RENAMES]


@pytest.mark.parametrize(("build", "old", "old_value", "new", "new_value"), RENAMES, ids=IDS)
def test_an_old_argument_name_still_works_and_warns(
    build: Callable[..., Any], old: str, old_value: Any, new: str, new_value: Any
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{old}= is deprecated; use {new}= instead"):
        made = build(**{old: old_value})
    assert getattr(made, new) == new_value


@pytest.mark.parametrize(("build", "old", "old_value", "new", "new_value"), RENAMES, ids=IDS)
def test_the_new_argument_name_works_without_a_warning(
    build: Callable[..., Any], old: str, old_value: Any, new: str, new_value: Any
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        made = build(**{new: new_value})
    assert getattr(made, new) == new_value


@pytest.mark.parametrize(("build", "old", "old_value", "new", "new_value"), RENAMES, ids=IDS)
def test_both_names_at_once_is_a_clear_error(
    build: Callable[..., Any], old: str, old_value: Any, new: str, new_value: Any
) -> None:
    with pytest.raises(InvalidInputError, match=rf"both {new}= and {old}=.*pass only {new}="):
        build(**{old: old_value, new: new_value})


def test_an_unknown_which_names_the_values_and_the_new_argument() -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidInputError, match="only_failed=False"):
        _collect(which="some")


def test_a_trigger_serialized_with_carry_resumes_with_it() -> None:
    # A trigger deferred before the rename is re-created by the triggerer from its stored kwargs.
    with pytest.warns(DeprecationWarning):
        trigger = BatchPoolTrigger(pool_id="p", carry={"created": True})
    _, kwargs = trigger.serialize()
    assert kwargs["resume_xcom"] == {"created": True} and "carry" not in kwargs
    assert BatchPoolTrigger(**kwargs).resume_xcom == {"created": True}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("UploadDataFilesOperator", "BlobUploadFilesOperator"),
        ("UploadApplicationFilesOperator", "BlobUploadApplicationFilesOperator"),
        ("DownloadOutputFilesOperator", "BlobDownloadFilesOperator"),
    ],
)
def test_an_old_storage_operator_name_is_the_renamed_class_and_warns(old: str, new: str) -> None:
    module = importlib.import_module("airflow_batch_provider.operators.storage")
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated; use {new} instead"):
        old_class = getattr(module, old)
    assert old_class is getattr(module, new)
    with pytest.warns(DeprecationWarning):
        exec(f"from airflow_batch_provider.operators.storage import {old}", {})


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    module = importlib.import_module("airflow_batch_provider.operators.storage")
    with pytest.raises(AttributeError, match="NoSuchOperator"):
        module.NoSuchOperator  # noqa: B018


@pytest.mark.parametrize(
    "build",
    [
        lambda **kw: _delete_pool(wait_for_completion=True, **kw),
        lambda **kw: _delete_job(wait_for_completion=True, **kw),
        lambda **kw: BatchTerminateJobOperator(task_id="t", job_id="j", wait_for_completion=True, **kw),
    ],
    ids=["delete_pool", "delete_job", "terminate_job"],
)
def test_delete_and_terminate_waits_are_bounded_by_timeout(build: Callable[..., Any]) -> None:
    calls: list[dict[str, Any]] = []

    class Hook:
        def delete_pool(self, _id: str, **kwargs: Any) -> str:
            calls.append(kwargs)
            return "deleted"

        delete_job = delete_pool

        def terminate_job(self, _id: str, _reason: str, **kwargs: Any) -> str:
            calls.append(kwargs)
            return "terminated"

    op = build(timeout=timedelta(minutes=2), poll_interval=timedelta(seconds=3))
    op.__dict__["hook"] = Hook()
    op.execute({})
    assert calls == [{"wait": True, "poll_interval": 3.0, "timeout": 120.0}]
    op = build()
    op.__dict__["hook"] = Hook()
    op.execute({})
    assert calls[-1]["timeout"] == 3600.0


def test_the_run_job_wait_takes_a_timedelta_too() -> None:
    from airflow_batch_provider.operators.run_job import BatchRunJobOperator

    op = BatchRunJobOperator(
        task_id="run", job_id="j", pool_id="p", timeout=timedelta(hours=2), poll_interval=timedelta(seconds=7)
    )
    sensor = op._sensor("j", None)
    assert (sensor.timeout, sensor.poke_interval) == (7200.0, 7.0)


def test_an_old_argument_name_works_in_partial_and_expand() -> None:
    from airflow.sdk import DAG

    with DAG("mapped"):
        mapped = BatchCollectTaskOutputOperator.partial(task_id="c", which="all").expand(job_id=["a", "b"])
    with pytest.warns(DeprecationWarning, match="which= is deprecated"):
        op = BatchCollectTaskOutputOperator(**{**mapped.partial_kwargs, "task_id": "c", "job_id": "a"})
    assert op.only_failed is False
