"""``ObjectStoragePath`` on an ``azblob`` connection, against a real Azurite, for every local mode."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from airflow.sdk import ObjectStoragePath
from azure.storage.blob import BlobServiceClient

from airflow_batch_provider.fs.blob import AzblobFileSystem, schemes
from airflow_batch_provider.testing.azurite import AzuriteServer
from tests.integration.test_blob_hook import LOCAL_MODES, connection

pytestmark = pytest.mark.integration


@pytest.fixture
def raw(azurite: AzuriteServer) -> Iterator[BlobServiceClient]:
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    yield client
    client.close()


@pytest.fixture
def container(raw: BlobServiceClient) -> str:
    name = f"os-{uuid.uuid4().hex[:12]}"
    raw.create_container(name)
    return name


@pytest.mark.parametrize("mode", LOCAL_MODES)
def test_object_storage_path_round_trips_a_file(
    mode: str, azurite: AzuriteServer, raw: BlobServiceClient, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = f"azblob_os_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection(azurite, mode)))
    payload = f"written through {mode}\n".encode()

    root = ObjectStoragePath(f"azblob://{container}/results/", conn_id=conn_id)
    assert isinstance(root.fs, AzblobFileSystem)
    (root / "part-0.txt").write_bytes(payload)

    # The blob landed where the path says, as an independent client sees it.
    blob = raw.get_blob_client(container, "results/part-0.txt")
    assert blob.download_blob().readall() == payload

    raw.get_blob_client(container, "results/sub/part-1.txt").upload_blob(b"from the SDK")
    listed = sorted(path.name for path in root.iterdir())
    assert listed == ["part-0.txt", "sub"]
    assert (root / "sub" / "part-1.txt").read_text() == "from the SDK"
    assert (root / "part-0.txt").stat()["size"] == len(payload)


def test_the_scheme_does_not_clash_with_the_microsoft_azure_provider() -> None:
    assert set(schemes).isdisjoint({"abfs", "abfss", "az", "wasb", "wasbs", "adl"})
    assert AzblobFileSystem.protocol == ("azblob",)
