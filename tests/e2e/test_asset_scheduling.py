"""Data-aware scheduling: a Batch storage step's Asset event queues the DAG scheduled on it.

Both DAGs are serialized into Airflow's real metadata DB; the upstream one runs with ``dag.test()``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG, Asset, task

from airflow_batch_provider.operators.storage import BlobUploadFilesOperator
from airflow_batch_provider.testing.stack import LocalAzureStack

pytestmark = pytest.mark.integration


def test_an_upload_queues_the_dag_scheduled_on_its_asset(
    local_azure_stack: LocalAzureStack, run_dag: Any, tmp_path: Path
) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    uid = uuid.uuid4().hex[:8]
    for index in range(3):
        (tmp_path / f"part-{index}.csv").write_text("x\n" * (index + 1))
    container = f"assets-{uid}"
    account = local_azure_stack.azurite.account_name
    uri = f"azblob://{account}/{container}/inputs/{uid}"

    with DAG(f"asset_downstream_{uid}", schedule=[Asset(uri)]) as downstream:

        @task
        def consume() -> None:
            pass

        consume()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(downstream)
    sync_bag_to_db(bag, "dags-folder", None)

    with DAG(f"asset_upstream_{uid}", schedule=None) as upstream:
        BlobUploadFilesOperator(
            task_id="upload", container=container, prefix=f"inputs/{uid}/", source=str(tmp_path)
        )
    dag_run, xcoms = run_dag(upstream)
    assert str(dag_run.state) == "success", xcoms

    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
        assert asset is not None, "the upload registered no Asset for its prefix"
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        assert len(events) == 1
        assert events[0].extra["count"] == 3 and events[0].extra["bytes"] == 2 + 4 + 6
        assert events[0].source_dag_id == upstream.dag_id
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
        assert queued == [downstream.dag_id]


def test_a_workflow_run_queues_the_results_example_through_its_output_asset(
    local_azure_stack: LocalAzureStack, run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.e2e.conftest import write_csv
    from tests.support.example_dags import load_example

    results = load_example(monkeypatch, "azure_batch_workflow_results")
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(results)
    sync_bag_to_db(bag, "dags-folder", None)

    for index in range(2):
        write_csv(tmp_path / "input" / f"batch-{index}.csv", ["label", "reading"], [["a", index]])
    workflow = load_example(monkeypatch, "azure_batch_workflow", AZURE_BATCH_WORKFLOW_POLL_SECONDS="0.2")
    dag_run, xcoms = run_dag(
        workflow, run_conf={"input_dir": str(tmp_path / "input"), "output_dir": str(tmp_path / "out")}
    )
    assert str(dag_run.state) == "success", xcoms

    job_id = xcoms["create_job"]["job_id"]
    account = local_azure_stack.azurite.account_name
    uri = f"azblob://{account}/batch-workflow-output/{job_id}/results"
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
        assert asset is not None
        [event] = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        assert event.extra == {"job_id": job_id, "task_count": 2}
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
        assert queued == ["azure_batch_workflow_results"]
