"""OpenLineage events of the storage steps, written by the real OpenLineage provider (file transport)
during ``dag.test()`` against Azurite: namespaces and names per the spec, counts, and no SAS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_batch_provider.operators.storage import BlobDownloadFilesOperator, BlobUploadFilesOperator
from airflow_batch_provider.testing.stack import LocalAzureStack

pytestmark = pytest.mark.integration


@pytest.fixture
def lineage_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The OpenLineage provider configured to append every event to a file, as JSON lines."""
    from airflow.providers.openlineage import conf as ol_conf
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
    from airflow.sdk.listener import get_listener_manager

    path = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "batch-tests")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT", "60")
    for name in dir(ol_conf):
        cached = getattr(getattr(ol_conf, name), "cache_clear", None)
        if cached is not None:
            cached()
    listener = get_openlineage_listener()
    listener.adapter._client = None  # built again from the transport above
    # Plugins load once per process: when an earlier test loaded them with OpenLineage unconfigured,
    # its listener was left out. Register it with the task runner's listener manager for this test.
    manager = get_listener_manager()
    added = not manager.pm.is_registered(listener)
    manager.add_listener(listener)
    yield path
    if added:
        manager.pm.unregister(listener)


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_storage_steps_report_prefix_datasets_with_counts_and_no_sas(
    local_azure_stack: LocalAzureStack, run_dag: Any, lineage_file: Path, tmp_path: Path
) -> None:
    uid = uuid.uuid4().hex[:8]
    source = tmp_path / "in"
    source.mkdir()
    for index in range(5):
        (source / f"part-{index}.csv").write_text("x\n" * (index + 1))
    container = f"lineage-{uid}"
    account = local_azure_stack.azurite.account_name

    with DAG(f"lineage_{uid}", schedule=None) as dag:
        upload = BlobUploadFilesOperator(
            task_id="upload", container=container, prefix=f"inputs/{uid}/", source=str(source)
        )
        download = BlobDownloadFilesOperator(
            task_id="download", container=container, prefix=f"inputs/{uid}/", local_dir=str(tmp_path / "out")
        )
        upload >> download
    dag_run, xcoms = run_dag(dag)
    assert str(dag_run.state) == "success", xcoms

    raw = lineage_file.read_text()
    assert "sig=" not in raw and local_azure_stack.azurite.account_key not in raw
    events = _events(lineage_file)
    complete = {
        event["job"]["name"].rsplit(".", 1)[-1]: event
        for event in events
        if event["eventType"] == "COMPLETE" and event["job"]["name"].startswith(dag.dag_id + ".")
    }
    assert set(complete) == {"upload", "download"}, [e["job"]["name"] for e in events]

    blob_namespace = f"wasbs://{container}@{account}.dfs.core.windows.net"
    upload_event, download_event = complete["upload"], complete["download"]
    assert [(d["namespace"], d["name"]) for d in upload_event["inputs"]] == [("file", str(source.resolve()))]
    [written] = upload_event["outputs"]
    assert (written["namespace"], written["name"]) == (blob_namespace, f"inputs/{uid}")
    statistics = written["outputFacets"]["outputStatistics"]
    assert statistics["fileCount"] == 5 and statistics["size"] == 2 * (1 + 2 + 3 + 4 + 5)

    [read] = download_event["inputs"]
    assert (read["namespace"], read["name"]) == (blob_namespace, f"inputs/{uid}")
    assert read["inputFacets"]["inputStatistics"]["fileCount"] == 5
    assert [(d["namespace"], d["name"]) for d in download_event["outputs"]] == [
        ("file", str((tmp_path / "out").resolve()))
    ]


def test_the_workflow_example_reports_each_steps_inputs_and_outputs(
    local_azure_stack: LocalAzureStack,
    run_dag: Any,
    lineage_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.e2e.conftest import write_csv
    from tests.support.example_dags import load_example

    for index in range(3):
        write_csv(tmp_path / "input" / f"batch-{index}.csv", ["label", "reading"], [["a", index], ["b", 2]])
    dag = load_example(monkeypatch, "azure_batch_workflow", AZURE_BATCH_WORKFLOW_POLL_SECONDS="0.2")
    dag_run, xcoms = run_dag(
        dag, run_conf={"input_dir": str(tmp_path / "input"), "output_dir": str(tmp_path / "out")}
    )
    assert str(dag_run.state) == "success", xcoms

    raw = lineage_file.read_text()
    assert "sig=" not in raw and "%26sig" not in raw.lower()
    complete = {
        event["job"]["name"].rsplit(".", 1)[-1]: event
        for event in _events(lineage_file)
        if event["eventType"] == "COMPLETE" and event["job"]["name"].startswith(f"{dag.dag_id}.")
    }
    account = local_azure_stack.azurite.account_name
    data = f"wasbs://batch-workflow@{account}.dfs.core.windows.net"
    output = f"wasbs://batch-workflow-output@{account}.dfs.core.windows.net"
    run_key = xcoms["create_job"]["job_id"]

    def named(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(dataset["namespace"], dataset["name"]) for dataset in datasets}

    assert named(complete["upload_inputs"]["outputs"]) == {(data, f"{run_key}/inputs")}
    assert named(complete["upload_inputs"]["inputs"]) == {("file", str((tmp_path / "input").resolve()))}
    assert named(complete["upload_app"]["outputs"]) == {(data, f"{run_key}/app")}
    add_tasks = complete["add_tasks"]
    assert named(add_tasks["inputs"]) == {(data, f"{run_key}/inputs"), (data, f"{run_key}/app")}
    counts = {d["name"]: d["inputFacets"]["inputStatistics"]["fileCount"] for d in add_tasks["inputs"]}
    assert counts[f"{run_key}/inputs"] == 3
    assert named(add_tasks["outputs"]) == {(output, f"{run_key}/results")}
    assert named(complete["download_outputs"]["inputs"]) == {(output, f"{run_key}/results")}
    # The collect step reads what the tasks uploaded: one dataset, every listed blob counted.
    [listed] = complete["collect_logs"]["inputs"]
    assert (listed["namespace"], listed["name"]) == (output, f"{run_key}/results")
    statistics = listed["inputFacets"]["inputStatistics"]
    assert statistics["fileCount"] == xcoms["collect_logs"]["output_url_count"] == 9
    assert complete["collect_logs"]["outputs"] == []  # the logs went to the Airflow log, not to Blob
