"""One fault at the worst moment: every create and cleanup call survives a lost response or a reset.

A *lost* response means the service committed the change but the client saw the connection drop;
a *reset* means it never got the request. Either way the client cannot tell, retries, and must end
up with exactly one pool, job or task collection, reported as created by this run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import (
    BatchCreateJobOperator,
    BatchDeleteJobOperator,
    BatchTerminateJobOperator,
)
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.storage import BlobUploadFilesOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.testing.stack import LocalAzureStack

pytestmark = pytest.mark.integration

ONE_WAY_FAULTS = ("lost", "reset")


@pytest.fixture
def stack(faulty_stack: LocalAzureStack) -> Iterator[LocalAzureStack]:
    yield faulty_stack
    faulty_stack.clear_faults()


@pytest.fixture
def hook(stack: LocalAzureStack) -> Iterator[BatchHook]:
    batch = BatchHook()
    yield batch
    batch.close()


def _fail_once(stack: LocalAzureStack, kind: str, method: str, path_pattern: str) -> None:
    stack.batch.set_faults(rate=1.0, kinds=[kind], methods=[method], path_pattern=path_pattern, max_faults=1)


def _assert_fault_hit(stack: LocalAzureStack, kind: str) -> None:
    assert [record.kind for record in stack.batch.fault_records] == [kind]


def _pools(stack: LocalAzureStack) -> list[str]:
    return sorted(stack.batch.call(lambda account: [pool.id for pool in account.pools.all()]))


def _create_pool(pool_id: str, **kwargs: Any) -> BatchCreatePoolOperator:
    return BatchCreatePoolOperator(
        task_id="create_pool",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        poll_interval=0.1,
        timeout=60,
        **kwargs,
    )


def _make_job(stack: LocalAzureStack, hook: BatchHook, context: dict[str, Any], uid: str) -> str:
    pool_id, job_id = f"lost-pool-{uid}", f"lost-job-{uid}"
    _create_pool(pool_id, wait_for_completion=False).execute(context)
    BatchCreateJobOperator(task_id="job", job_id=job_id, pool_id=pool_id).execute(context)
    return job_id


@pytest.mark.parametrize("kind", ONE_WAY_FAULTS)
def test_create_pool_after_a_dropped_answer_is_created_once(
    stack: LocalAzureStack, hook: BatchHook, context: dict[str, Any], uid: str, kind: str
) -> None:
    pool_id = f"lost-pool-{uid}"
    _fail_once(stack, kind, "POST", r"^/pools$")
    # if_exists="fail": the pool the retry finds is the one this very call created.
    result = _create_pool(pool_id, if_exists="fail").execute(context)
    _assert_fault_hit(stack, kind)
    assert result["created"] is True and result["usable_nodes"] == 1
    assert [pool for pool in _pools(stack) if uid in pool] == [pool_id]
    assert hook.delete_pool(pool_id) == "deleted"


@pytest.mark.parametrize("kind", ONE_WAY_FAULTS)
def test_create_job_after_a_dropped_answer_is_created_once(
    stack: LocalAzureStack, hook: BatchHook, context: dict[str, Any], uid: str, kind: str
) -> None:
    pool_id, job_id = f"lost-pool-{uid}", f"lost-job-{uid}"
    _create_pool(pool_id, wait_for_completion=False).execute(context)
    _fail_once(stack, kind, "POST", r"^/jobs$")
    result = BatchCreateJobOperator(task_id="job", job_id=job_id, pool_id=pool_id, if_exists="fail").execute(
        context
    )
    _assert_fault_hit(stack, kind)
    assert result == {"job_id": job_id, "pool_id": pool_id, "created": True}
    assert hook.get_job(job_id) is not None
    assert hook.delete_job(job_id) == "deleted" and hook.delete_pool(pool_id) == "deleted"


@pytest.mark.parametrize("kind", ONE_WAY_FAULTS)
def test_add_tasks_after_a_dropped_answer_adds_each_task_once(
    stack: LocalAzureStack, hook: BatchHook, context: dict[str, Any], uid: str, kind: str
) -> None:
    job_id = _make_job(stack, hook, context, uid)
    _fail_once(stack, kind, "POST", r"/addtaskcollection$")
    tasks = [{"id": f"t{index}", "command_line": "/bin/true"} for index in range(150)]
    result = BatchAddTasksOperator(task_id="add", job_id=job_id, tasks=tasks, max_concurrency=1).execute(
        context
    )
    _assert_fault_hit(stack, kind)
    assert result["task_count"] == 150
    assert result["added"] + result["already_existed"] == 150
    assert result["already_existed"] == (100 if kind == "lost" else 0)
    assert len(hook.list_tasks(job_id, select=["id"])) == 150
    hook.delete_job(job_id)


@pytest.mark.parametrize("kind", ONE_WAY_FAULTS)
def test_cleanup_after_a_dropped_answer_succeeds(
    stack: LocalAzureStack, hook: BatchHook, context: dict[str, Any], uid: str, kind: str
) -> None:
    job_id = _make_job(stack, hook, context, uid)
    pool_id = f"lost-pool-{uid}"
    _fail_once(stack, kind, "POST", r"/terminate$")
    terminated = BatchTerminateJobOperator(task_id="terminate", job_id=job_id).execute(context)
    _assert_fault_hit(stack, kind)
    assert terminated["outcome"] in ("terminated", "already_completed")
    _fail_once(stack, kind, "DELETE", r"^/jobs/")
    deleted = BatchDeleteJobOperator(task_id="delete_job", job_id=job_id).execute(context)
    _assert_fault_hit(stack, kind)
    assert deleted["outcome"] in ("deleted", "being_deleted")
    _fail_once(stack, kind, "DELETE", r"^/pools/")
    deleted_pool = BatchDeletePoolOperator(
        task_id="delete_pool", pool_id=pool_id, wait_for_completion=True, poll_interval=0.1
    ).execute(context)
    _assert_fault_hit(stack, kind)
    assert deleted_pool["outcome"] in ("deleted", "being_deleted")
    assert pool_id not in _pools(stack)


@pytest.mark.parametrize("kind", ONE_WAY_FAULTS)
def test_upload_after_dropped_answers_stores_every_file_once(
    stack: LocalAzureStack, context: dict[str, Any], uid: str, kind: str, tmp_path: Path
) -> None:
    for index in range(5):
        (tmp_path / f"part-{index}.csv").write_text(f"value\n{index}\n")
    assert stack.storage_proxy is not None
    # The container create and the first two blob writes lose their answers (or never arrive).
    stack.storage_proxy.set_faults(rate=1.0, kinds=[kind], methods=["PUT"], max_faults=3)
    container = f"lost-{kind}-{uid}"
    result = BlobUploadFilesOperator(
        task_id="upload", source=str(tmp_path / "*.csv"), container=container, prefix="in/"
    ).execute(context)
    assert [record.kind for record in stack.storage_proxy.fault_records] == [kind] * 3
    assert result["count"] == 5
    with BlobServiceClient.from_connection_string(stack.azurite.connection_string) as service:
        client = service.get_container_client(container)
        stored = {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}
        client.delete_container()
    assert stored == {f"in/part-{index}.csv": f"value\n{index}\n".encode() for index in range(5)}
