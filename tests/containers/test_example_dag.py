"""The container example DAG, run by Airflow (``dag.test()``) on the local stack with a real engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.support.example_dags import load_example

pytestmark = pytest.mark.integration


def test_the_container_example_reads_its_input_uploads_its_output_and_logs_its_stdout(
    local_azure_stack: LocalAzureStack,
    image: str,
    run_dag: Callable[..., tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dag = load_example(
        monkeypatch,
        "azure_batch_containers",
        BATCH_CONTAINER_IMAGE=image,
        BATCH_CONTAINER_POLL_SECONDS="0.2",
        BATCH_CONTAINER_INPUT_DIR=str(tmp_path),
    )
    dag_run, xcoms = run_dag(dag)
    task_log = "".join(capfd.readouterr())
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "success", (states, xcoms)
    assert set(states.values()) == {"success"}

    # The task's stdout, written in the container, reached the Airflow log.
    (log_entry,) = xcoms["collect_logs"]["logs"].values()
    assert log_entry["stdout.txt"] == "logged"
    assert "poem counted 12 words" in task_log
    # Its output file, written in the container's working directory, landed in Azurite.
    hook = BlobStorageHook("azblob_default")
    counts = [
        blob.name
        for blob in hook.list_blobs("batch-containers-output")
        if blob.name.endswith("/count-poem/count.txt")
    ]
    assert len(counts) == 1, [blob.name for blob in hook.list_blobs("batch-containers-output")]
    downloaded = hook.download_prefix(
        "batch-containers-output", counts[0].rsplit("/", 1)[0], tmp_path / "out"
    )
    assert downloaded.files and (tmp_path / "out" / "count.txt").read_text() == "12"
