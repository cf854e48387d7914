"""The operator base: connection ids templated everywhere, hooks made once, links that never fail."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_batch_provider.links.portal import BatchJobLink
from airflow_batch_provider.operators.application import BatchPublishApplicationPackageOperator
from airflow_batch_provider.operators.base import BatchBaseOperator
from airflow_batch_provider.operators.job import BatchCreateJobOperator, BatchDeleteJobOperator
from airflow_batch_provider.operators.output import BatchCollectTaskOutputOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.storage import (
    BlobDownloadFilesOperator,
    BlobUploadApplicationFilesOperator,
    BlobUploadFilesOperator,
)
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.sensors.pool import BatchPoolSensor

BATCH = [
    BatchCreatePoolOperator,
    BatchDeletePoolOperator,
    BatchCreateJobOperator,
    BatchDeleteJobOperator,
    BatchAddTasksOperator,
    BatchCollectTaskOutputOperator,
    BatchJobSensor,
    BatchPoolSensor,
    BatchPublishApplicationPackageOperator,
]
BLOB = [
    BlobUploadFilesOperator,
    BlobUploadApplicationFilesOperator,
    BlobDownloadFilesOperator,
    BatchCreatePoolOperator,
    BatchAddTasksOperator,
    BatchCollectTaskOutputOperator,
]


@pytest.mark.parametrize("operator", BATCH, ids=lambda cls: cls.__name__)
def test_the_batch_connection_is_templated(operator: type) -> None:
    assert "azbatch_conn_id" in operator.template_fields


@pytest.mark.parametrize("operator", BLOB, ids=lambda cls: cls.__name__)
def test_the_blob_connection_is_templated(operator: type) -> None:
    # Regression: the storage operators did not template azblob_conn_id.
    assert "azblob_conn_id" in operator.template_fields


def test_a_storage_operator_renders_its_connection_from_a_template() -> None:
    with DAG("render", schedule=None):
        op = BlobUploadFilesOperator(
            task_id="up", source="/data/*.csv", container="data", azblob_conn_id="azblob_{{ params.env }}"
        )
    op.render_template_fields({"params": {"env": "prod"}})
    assert op.azblob_conn_id == "azblob_prod"


def test_hooks_are_made_once_per_connection() -> None:
    op = BatchAddTasksOperator(task_id="add", job_id="j", tasks=[], azblob_conn_id="blob_a")
    assert op.hook is op.hook and op.hook.conn_id == "azbatch_default"
    assert op.blob_hook_for() is op.blob_hook_for("blob_a")
    assert op.blob_hook_for("blob_b").conn_id == "blob_b"


class _Broken:
    def xcom_push(self, **kwargs: Any) -> None:
        raise RuntimeError("XCom is down")


def test_a_link_that_cannot_be_saved_never_fails_the_task() -> None:
    op = BatchDeleteJobOperator(task_id="d", job_id="j", azbatch_conn_id="no_such_connection")
    assert isinstance(op, BatchBaseOperator)
    op.persist_link(BatchJobLink, {"ti": _Broken()}, "j")  # no connection, no XCom: logged, not raised
