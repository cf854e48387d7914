"""The storage operators, run by Airflow itself (``dag.test()``) against a real Azurite.

The connection comes from ``AIRFLOW_CONN_AZBLOB_DEFAULT``; XComs are read back from the metadata DB.
Error cases call ``execute`` directly, which is what the task runner does, to check the exact error.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG
from azure.storage.blob import BlobServiceClient, ContainerClient

from airflow_batch_provider.exceptions import AzureAuthenticationError, BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.operators.storage import (
    BlobDownloadFilesOperator,
    BlobUploadApplicationFilesOperator,
    BlobUploadFilesOperator,
    manifest_blob_name,
)
from airflow_batch_provider.testing.azurite import AzuriteServer

pytestmark = pytest.mark.integration

RunDag = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture
def default_conn(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "azblob", "extra": {"connection_string": azurite.connection_string}}
    monkeypatch.setenv("AIRFLOW_CONN_AZBLOB_DEFAULT", json.dumps(conn))


@pytest.fixture
def container() -> str:
    return f"op-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def raw(azurite: AzuriteServer) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def dag_id() -> str:
    return f"storage_{uuid.uuid4().hex[:8]}"


FILES = {
    "a.txt": b"alpha",
    "nested/b.csv": b"1,2\n3,4\n",
    "nested/deeper/c.bin": os.urandom(3000),
}


def assert_no_sas(value: Any) -> None:
    text = json.dumps(value)
    assert "sig=" not in text and "?" not in text


# -- through Airflow ------------------------------------------------------------------------------------


def test_upload_then_download_round_trip_in_a_dag(
    default_conn: None, run_dag: RunDag, container: str, tmp_path: Path
) -> None:
    source, target = tmp_path / "in", tmp_path / "out"
    write_tree(source, FILES)
    with DAG(dag_id(), schedule=None, params={"out": str(target)}) as dag:
        upload = BlobUploadFilesOperator(
            task_id="upload",
            source=str(source),
            container=container,
            prefix="{{ dag.dag_id }}/inputs",
        )
        download = BlobDownloadFilesOperator(
            task_id="download",
            container=container,
            prefix="{{ dag.dag_id }}/inputs/",
            local_dir="{{ params.out }}",
        )
        upload >> download

    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "success"
    assert tree_bytes(target) == FILES

    sent = xcoms["upload"]
    assert sent["container"] == container
    assert sent["prefix"] == f"{dag.dag_id}/inputs/"
    assert (sent["count"], sent["uploaded"], sent["skipped"]) == (3, 3, 0)
    assert sent["bytes"] == sent["total_bytes"] == sum(len(data) for data in FILES.values())
    assert sent["manifest_url"] is None
    assert sorted(sent["blobs"]) == sorted(
        f"{sent['container_url']}/{dag.dag_id}/inputs/{name}" for name in FILES
    )
    assert_no_sas(sent)

    got = xcoms["download"]
    assert (got["count"], got["downloaded"], got["bytes"]) == (3, 3, sent["bytes"])
    assert sorted(got["files"]) == sorted(FILES)
    assert got["local_dir"] == str(target)


def test_second_run_uploads_nothing(
    default_conn: None, run_dag: RunDag, container: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, FILES)
    with DAG(dag_id(), schedule=None) as dag:
        BlobUploadFilesOperator(task_id="upload", source=f"{tmp_path}/**/*", container=container, prefix="p")
    _, first = run_dag(dag)
    _, second = run_dag(dag)
    assert first["upload"]["uploaded"] == 3
    assert (second["upload"]["uploaded"], second["upload"]["skipped"], second["upload"]["bytes"]) == (0, 3, 0)
    assert second["upload"]["blobs"] == first["upload"]["blobs"]


def test_manifest_above_the_threshold(
    default_conn: None, run_dag: RunDag, container: str, tmp_path: Path, raw: BlobServiceClient
) -> None:
    files = {f"part-{i:03d}.txt": f"row {i}\n".encode() for i in range(120)}
    write_tree(tmp_path / "many", files)
    with DAG(dag_id(), schedule=None) as dag:
        BlobUploadFilesOperator(
            task_id="upload", source=str(tmp_path / "many"), container=container, prefix="big"
        )
    dag_run, xcoms = run_dag(dag)
    summary = xcoms["upload"]
    assert summary["count"] == 120 and summary["blobs"] is None
    expected_name = manifest_blob_name(dag.dag_id, dag_run.run_id, "upload")
    assert summary["manifest_url"] == f"{summary['container_url']}/{expected_name}"
    assert_no_sas(summary)
    assert len(json.dumps(summary)) < 1000

    manifest = json.loads(raw.get_blob_client(container, expected_name).download_blob().readall())
    assert [entry["name"] for entry in manifest] == [f"big/{name}" for name in sorted(files)]
    assert {entry["status"] for entry in manifest} == {"uploaded"}
    assert all("sig=" not in entry["url"] for entry in manifest)

    # The manifest lives outside the prefix, so downloading the prefix brings back exactly the data.
    hook = BlobStorageHook()
    hook.download_prefix(container, "big", tmp_path / "back")
    assert tree_bytes(tmp_path / "back") == files


def test_manifest_name_is_deterministic_per_run(default_conn: None, container: str, tmp_path: Path) -> None:
    write_tree(tmp_path, {f"{i}.txt": b"x" for i in range(5)})
    operator = BlobUploadFilesOperator(
        task_id="upload", source=str(tmp_path), container=container, manifest_threshold=2
    )
    context: Any = {"run_id": "manual__2026-01-01T00:00:00+00:00"}
    first = operator.execute(context)
    retry = operator.execute(context)
    assert first["manifest_url"] == retry["manifest_url"]
    assert first["manifest_url"].endswith("/manual__2026-01-01T00_00_00_00_00/upload.json")
    assert manifest_blob_name("d", "r", "t", 3).endswith("/d/r/t-3.json")
    assert manifest_blob_name("d", "r", "t", -1).endswith("/d/r/t.json")


def test_application_files_give_a_sas_free_resource_file_descriptor(
    default_conn: None, run_dag: RunDag, container: str, tmp_path: Path
) -> None:
    write_tree(tmp_path / "app", {"run.sh": b"#!/bin/sh\necho hi\n", "lib/helper.py": b"print(1)\n"})
    with DAG(dag_id(), schedule=None) as dag:
        BlobUploadApplicationFilesOperator(
            task_id="app", source=str(tmp_path / "app"), container=container, node_path="bin"
        )
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "success"
    summary = xcoms["app"]
    assert summary["prefix"] == "apps/"
    assert summary["resource_files"] == [
        {"container": container, "blob_prefix": "apps/", "file_path": "bin", "file_mode": "0755"}
    ]
    assert_no_sas(summary)

    # At submit time a Batch operator turns the descriptor into resourceFiles with a fresh read SAS.
    (entry,) = BlobStorageHook().resource_files(**summary["resource_files"][0], expiry=timedelta(hours=2))
    assert entry["blobPrefix"] == "apps/" and entry["filePath"] == "bin" and entry["fileMode"] == "0755"
    with ContainerClient.from_container_url(entry["storageContainerUrl"]) as client:
        assert sorted(blob.name for blob in client.list_blobs(name_starts_with="apps/")) == [
            "apps/lib/helper.py",
            "apps/run.sh",
        ]
        assert client.download_blob("apps/run.sh").readall() == b"#!/bin/sh\necho hi\n"


def test_failing_task_fails_the_run(
    default_conn: None, run_dag: RunDag, container: str, tmp_path: Path
) -> None:
    with DAG(dag_id(), schedule=None) as dag:
        BlobUploadFilesOperator(task_id="upload", source=str(tmp_path / "missing"), container=container)
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "failed"
    assert "upload" not in xcoms


# -- errors, raised before anything is uploaded ---------------------------------------------------------


def test_missing_path(default_conn: None, container: str, tmp_path: Path, raw: BlobServiceClient) -> None:
    operator = BlobUploadFilesOperator(task_id="t", source=str(tmp_path / "nope"), container=container)
    with pytest.raises(InvalidInputError, match="does not exist"):
        operator.execute({})
    assert not raw.get_container_client(container).exists()


def test_empty_glob(default_conn: None, container: str, tmp_path: Path, raw: BlobServiceClient) -> None:
    operator = BlobUploadFilesOperator(task_id="t", source=f"{tmp_path}/**/*.parquet", container=container)
    with pytest.raises(InvalidInputError, match=r"matches no files.*fail_on_empty=False"):
        operator.execute({})
    assert not raw.get_container_client(container).exists()

    lenient = BlobUploadFilesOperator(
        task_id="t", source=f"{tmp_path}/*.parquet", container=container, fail_on_empty=False
    )
    summary = lenient.execute({})
    assert (summary["count"], summary["uploaded"], summary["blobs"]) == (0, 0, [])


def test_invalid_container(default_conn: None, tmp_path: Path) -> None:
    operator = BlobUploadFilesOperator(task_id="t", source=str(tmp_path), container="Input_Data")
    with pytest.raises(InvalidInputError, match=r"container 'Input_Data' is not a valid.*'input-data'"):
        operator.execute({})
    download = BlobDownloadFilesOperator(task_id="d", container="x", prefix="p", local_dir=str(tmp_path))
    with pytest.raises(InvalidInputError, match="container 'x'"):
        download.execute({})


def test_invalid_file_mode(default_conn: None, container: str, tmp_path: Path) -> None:
    operator = BlobUploadApplicationFilesOperator(
        task_id="t", source=str(tmp_path), container=container, file_mode="rwx"
    )
    with pytest.raises(InvalidInputError, match="file_mode 'rwx'"):
        operator.execute({})


def test_wrong_key(
    azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch, container: str, tmp_path: Path
) -> None:
    wrong_key = base64.b64encode(os.urandom(64)).decode()
    conn = {
        "conn_type": "azblob",
        "host": azurite.blob_endpoint,
        "login": azurite.account_name,
        "password": wrong_key,
    }
    monkeypatch.setenv("AIRFLOW_CONN_AZBLOB_WRONG", json.dumps(conn))
    write_tree(tmp_path, FILES)
    operator = BlobUploadFilesOperator(
        task_id="t", source=str(tmp_path), container=container, azblob_conn_id="azblob_wrong"
    )
    with pytest.raises(AzureAuthenticationError) as error:
        operator.execute({})
    assert "'azblob_wrong'" in str(error.value) and wrong_key not in str(error.value)


def test_download_of_an_empty_prefix(
    default_conn: None, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    raw.create_container(container)
    operator = BlobDownloadFilesOperator(
        task_id="d", container=container, prefix="none", local_dir=str(tmp_path)
    )
    with pytest.raises(BatchProviderError, match="No blobs under 'none/'"):
        operator.execute({})
    operator.fail_on_empty = False
    assert operator.execute({})["count"] == 0


def test_download_lists_files_only_up_to_the_threshold(
    default_conn: None, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    raw.create_container(container)
    for i in range(4):
        raw.get_blob_client(container, f"out/{i}.txt").upload_blob(b"x")
    operator = BlobDownloadFilesOperator(
        task_id="d", container=container, prefix="out", local_dir=str(tmp_path), manifest_threshold=3
    )
    summary = operator.execute({})
    assert summary["count"] == 4 and summary["files"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.txt", "1.txt", "2.txt", "3.txt"]


def test_template_fields() -> None:
    # The connection id is templated too (issue 15: connection fields templated in every operator).
    assert set(BlobUploadFilesOperator.template_fields) == {"source", "container", "prefix", "azblob_conn_id"}
    assert set(BlobUploadApplicationFilesOperator.template_fields) == {
        "source",
        "container",
        "prefix",
        "node_path",
        "azblob_conn_id",
    }
    assert set(BlobDownloadFilesOperator.template_fields) == {
        "container",
        "prefix",
        "local_dir",
        "azblob_conn_id",
    }


def test_expiry_default_is_a_day(default_conn: None, container: str) -> None:
    url = BlobStorageHook().get_container_sas_url(container)
    expiry = url.split("se=", 1)[1].split("&", 1)[0].replace("%3A", ":")
    ends = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    assert timedelta(hours=23) < ends - datetime.now(timezone.utc) <= timedelta(hours=24)
