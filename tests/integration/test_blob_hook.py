"""BlobStorageHook against a real Azurite, for every authentication mode that runs locally.

Account key, connection string and SAS token are exercised over HTTP. The Entra ID modes need a token
from Microsoft Entra, which Azurite cannot issue: for them the hook is only built (client and
credential constructed, no request sent), and the user delegation key that signs their SAS is the one
stubbed call in this file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.log import redact
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    ResourceTypes,
    generate_account_sas,
)

from airflow_batch_provider.exceptions import (
    AzureAuthenticationError,
    BatchProviderError,
    ConnectionConfigError,
    InvalidInputError,
)
from airflow_batch_provider.hooks.blob import BlobInfo, BlobStorageHook
from airflow_batch_provider.hooks.blob import transfer as blob_hook_module
from airflow_batch_provider.storage import digest_cache, local_files
from airflow_batch_provider.storage.local_files import safe_local_path
from airflow_batch_provider.testing.azurite import AzuriteServer

pytestmark = pytest.mark.integration

LOCAL_MODES = ("shared_key", "connection_string", "sas_token")


def account_sas(server: AzuriteServer, permission: str = "racwdl", resource_types: str = "sco") -> str:
    return generate_account_sas(
        server.account_name,
        server.account_key,
        resource_types=ResourceTypes.from_string(resource_types),
        permission=AccountSasPermissions.from_string(permission),
        expiry=datetime.now(timezone.utc) + timedelta(hours=2),
        start=datetime.now(timezone.utc) - timedelta(minutes=5),
    )


def connection(server: AzuriteServer, mode: str, **overrides: Any) -> dict[str, Any]:
    """An ``azblob`` connection, in Airflow's JSON form, for one authentication mode."""
    if mode == "shared_key":
        conn: dict[str, Any] = {
            "conn_type": "azblob",
            "host": server.blob_endpoint,
            "login": server.account_name,
            "password": server.account_key,
        }
    elif mode == "connection_string":
        conn = {"conn_type": "azblob", "extra": {"connection_string": server.connection_string}}
    elif mode == "sas_token":
        conn = {
            "conn_type": "azblob",
            "host": server.blob_endpoint,
            "extra": {"sas_token": account_sas(server)},
        }
    else:
        raise ValueError(mode)
    conn.update(overrides)
    return conn


@pytest.fixture
def make_hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, Any]], BlobStorageHook]]:
    """Register a connection through its AIRFLOW_CONN_* variable and return a hook on it."""
    hooks: list[BlobStorageHook] = []

    def make(conn: dict[str, Any]) -> BlobStorageHook:
        conn_id = f"azblob_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        hook = BlobStorageHook(azblob_conn_id=conn_id)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture(params=LOCAL_MODES)
def hook(request: pytest.FixtureRequest, azurite: AzuriteServer, make_hook: Any) -> BlobStorageHook:
    return make_hook(connection(azurite, request.param))


@pytest.fixture
def raw(azurite: AzuriteServer) -> Iterator[BlobServiceClient]:
    """A plain SDK client, to check what the hook did independently of it."""
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    yield client
    client.close()


@pytest.fixture
def container() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


NESTED = {
    "a.txt": b"alpha\n",
    "empty.bin": b"",
    "sub/b.csv": b"x,y\n1,2\n",
    "sub/deeper/c.csv": os.urandom(5000),
    "sub/deeper/with space & plus+.json": b'{"k": 1}',
    "unicode/\u00e9t\u00e9.txt": "\u00e9t\u00e9".encode(),
}


# -- connection and clients -----------------------------------------------------------------------------


def test_test_connection_succeeds(hook: BlobStorageHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert "devstoreaccount1" in message


def test_clients_are_created_once(hook: BlobStorageHook) -> None:
    assert hook.get_conn() is hook.get_conn()


async def test_async_client_is_cached_per_loop(hook: BlobStorageHook) -> None:
    first = await hook.aget_conn()
    assert await hook.aget_conn() is first
    await hook.aclose()


@pytest.mark.parametrize(
    "extra",
    [
        {"tenant_id": "t", "client_id": "c", "client_secret": "entra-secret-value"},
        {"managed_identity": True},
        {"auth_type": "default_azure_credential"},
    ],
    ids=["service-principal", "managed-identity", "default"],
)
def test_entra_modes_build_clients_without_a_request(make_hook: Any, extra: dict[str, Any]) -> None:

    host = "https://acct.blob.core.windows.net"
    hook = make_hook({"conn_type": "azblob", "host": host, "extra": extra})
    assert hook.settings.resolve_mode().uses_entra_id
    assert hasattr(hook.get_conn().credential, "get_token")
    assert hook.container_url("data") == f"{host}/data"


async def test_entra_async_client_gets_an_async_credential(make_hook: Any) -> None:
    import azure.identity.aio

    hook = make_hook({"conn_type": "azblob", "login": "acct", "extra": {"managed_identity": True}})
    client = await hook.aget_conn()
    assert isinstance(client.credential, azure.identity.aio.ManagedIdentityCredential)
    await hook.aclose()


def test_entra_over_plain_http_is_refused(azurite: AzuriteServer, make_hook: Any) -> None:
    hook = make_hook(
        {"conn_type": "azblob", "host": azurite.blob_endpoint, "extra": {"managed_identity": True}}
    )
    with pytest.raises(ConnectionConfigError, match="HTTPS"):
        hook.get_conn()


# -- upload / download ----------------------------------------------------------------------------------


def test_round_trip_of_nested_directories(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    write_tree(source, NESTED)

    result = hook.upload(container, str(source), "inputs/run-1")
    assert sorted(item.name for item in result.transferred) == sorted(
        f"inputs/run-1/{name}" for name in NESTED
    )
    assert result.skipped == []
    assert result.bytes_transferred == sum(len(data) for data in NESTED.values())
    for item in result.transferred:
        assert "?" not in item.url and "sig=" not in item.url
        assert item.url.startswith(f"{hook.settings.blob_account_url}/{container}/inputs/run-1/")

    stored = {blob.name: blob for blob in raw.get_container_client(container).list_blobs()}
    for name, data in NESTED.items():
        props = stored[f"inputs/run-1/{name}"]
        assert props.size == len(data)
        assert bytes(props.content_settings.content_md5) == hashlib.md5(data).digest()
    assert stored["inputs/run-1/sub/b.csv"].content_settings.content_type == "text/csv"

    downloaded = hook.download_prefix(container, "inputs/run-1/", target)
    assert len(downloaded.transferred) == len(NESTED)
    assert tree_bytes(target) == NESTED


def test_rerun_uploads_nothing_and_changes_only_what_changed(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, NESTED)
    hook.upload(container, tmp_path, "p")
    etags = {blob.name: blob.etag for blob in raw.get_container_client(container).list_blobs()}

    again = hook.upload(container, tmp_path, "p")
    assert again.transferred == []
    assert again.bytes_transferred == 0
    assert len(again.skipped) == len(NESTED)
    assert {blob.name: blob.etag for blob in raw.get_container_client(container).list_blobs()} == etags

    (tmp_path / "a.txt").write_bytes(b"ALPHA\n")  # same size, new content: only MD5 tells
    (tmp_path / "new.txt").write_bytes(b"new")
    third = hook.upload(container, tmp_path, "p")
    assert sorted(item.name for item in third.transferred) == ["p/a.txt", "p/new.txt"]
    assert third.bytes_transferred == 9


@pytest.fixture
def file_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Paths whose content the upload hashes from disk, with a digest cache of this test's own.

    Files count as settled 50 ms after their last change (2 s in real runs), so the tests need not wait.
    """
    monkeypatch.setenv("AIRFLOW__AZURE_BATCH_PROVIDER__DIGEST_CACHE_DIR", str(tmp_path / "digests"))
    monkeypatch.setattr(digest_cache, "SETTLE_NS", 50_000_000)
    reads: list[str] = []
    real = local_files.file_md5

    def spied(path: str | os.PathLike[str]) -> bytes:
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(local_files, "file_md5", spied)
    monkeypatch.setattr(blob_hook_module, "file_md5", spied)
    return reads


def test_rerun_of_files_the_digest_cache_knows_reads_none_of_them(
    azurite: AzuriteServer, make_hook: Any, container: str, tmp_path: Path, file_reads: list[str]
) -> None:
    hook = make_hook(connection(azurite, "shared_key"))
    source = tmp_path / "src"
    write_tree(source, {**NESTED, "big.bin": os.urandom(5 * 1024 * 1024)})  # above the 4 MiB block limit
    time.sleep(0.1)
    hook.upload(container, source, "p")

    file_reads.clear()
    again = hook.upload(container, source, "p")
    assert again.transferred == [] and len(again.skipped) == len(NESTED) + 1
    assert file_reads == []

    without_cache = hook.upload(container, source, "p", digest_cache=False)
    assert without_cache.transferred == []
    assert sorted(file_reads) == sorted(Path(name).name for name in [*NESTED, "big.bin"])


def test_file_rewritten_with_its_old_size_and_modification_time_is_uploaded_again(
    azurite: AzuriteServer,
    make_hook: Any,
    raw: BlobServiceClient,
    container: str,
    tmp_path: Path,
    file_reads: list[str],
) -> None:
    hook = make_hook(connection(azurite, "shared_key"))
    source = tmp_path / "src"
    write_tree(source, NESTED)
    time.sleep(0.1)
    hook.upload(container, source, "p")
    path = source / "a.txt"
    before = os.stat(path)

    path.write_bytes(b"ALPHA\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as a restore or `touch -r` would
    again = hook.upload(container, source, "p")
    assert [item.name for item in again.transferred] == ["p/a.txt"]
    assert raw.get_blob_client(container, "p/a.txt").download_blob().readall() == b"ALPHA\n"


def test_files_changed_just_before_a_run_are_read_again_on_the_next(
    azurite: AzuriteServer,
    make_hook: Any,
    container: str,
    tmp_path: Path,
    file_reads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(digest_cache, "SETTLE_NS", 60_000_000_000)  # nothing has settled yet
    hook = make_hook(connection(azurite, "shared_key"))
    write_tree(tmp_path / "src", NESTED)
    hook.upload(container, tmp_path / "src", "p")
    file_reads.clear()
    again = hook.upload(container, tmp_path / "src", "p")
    assert again.transferred == []
    assert sorted(file_reads) == sorted(Path(name).name for name in NESTED)


def test_glob_with_double_star_keeps_paths_below_the_pattern_base(
    hook: BlobStorageHook, container: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write_tree(source, NESTED)
    result = hook.upload(container, f"{source}/**/*.csv", "csv")
    assert [item.name for item in result.files] == ["csv/sub/b.csv", "csv/sub/deeper/c.csv"]

    target = tmp_path / "dst"
    hook.download_prefix(container, "csv", target)
    assert tree_bytes(target) == {
        "sub/b.csv": NESTED["sub/b.csv"],
        "sub/deeper/c.csv": NESTED["sub/deeper/c.csv"],
    }


def test_single_file_and_list_of_sources(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    write_tree(tmp_path, NESTED)
    single = hook.upload(container, tmp_path / "sub" / "b.csv", "one")
    assert [item.name for item in single.files] == ["one/b.csv"]
    several = hook.upload(container, [str(tmp_path / "a.txt"), f"{tmp_path}/unicode/*.txt"], "")
    assert [item.name for item in several.files] == ["a.txt", "\u00e9t\u00e9.txt"]


class CountingPolicy(SansIOHTTPPolicy[Any, Any]):
    """Counts the HTTP requests a hook sends, by method, and the body bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []
        self.bytes_sent = 0

    def on_request(self, request: Any) -> None:
        self.methods.append(request.http_request.method)
        body = request.http_request.body
        self.bytes_sent += len(body) if isinstance(body, (bytes, bytearray)) else 0


def test_rerun_sends_one_listing_and_nothing_else(
    hook: BlobStorageHook, container: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, {f"f{i:03d}.bin": os.urandom(100) for i in range(40)})
    hook.upload(container, tmp_path, "once")
    counter = CountingPolicy()
    rerun = BlobStorageHook(azblob_conn_id=hook.conn_id, http_policies=[counter])
    result = rerun.upload(container, tmp_path, "once")
    rerun.close()
    assert len(result.skipped) == 40 and result.transferred == []
    assert counter.methods == ["GET"] and counter.bytes_sent == 0


def test_nothing_to_upload_sends_nothing(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    counter = CountingPolicy()
    counted = BlobStorageHook(azblob_conn_id=hook.conn_id, http_policies=[counter])
    assert counted.upload(container, f"{tmp_path}/*.nothing", "x").files == []
    assert counted.upload(container, tmp_path / "empty", "x").files == []
    counted.close()
    assert counter.methods == []


def test_glob_rerun_lists_under_the_names_common_start(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"run-7-a.csv": b"a", "run-7-b.csv": b"b", "other.csv": b"o"})
    hook.upload(container, f"{tmp_path}/run-7-*.csv", "")
    listed: list[str] = []

    class PrefixSpy(SansIOHTTPPolicy[Any, Any]):
        def on_request(self, request: Any) -> None:
            query = request.http_request.query
            if query.get("comp") == "list":
                listed.append(query.get("prefix", ""))

    spied = BlobStorageHook(azblob_conn_id=hook.conn_id, http_policies=[PrefixSpy()])
    again = spied.upload(container, f"{tmp_path}/run-7-*.csv", "")
    spied.close()
    assert again.transferred == [] and len(again.skipped) == 2
    assert listed == ["run-7-"]


def test_rerun_over_several_listing_pages_skips_everything_unchanged(
    hook: BlobStorageHook, container: str, tmp_path: Path
) -> None:
    hook.list_page_size = 3
    files = {f"f{i:02d}.txt": f"content {i:02d}".encode() for i in range(10)}
    write_tree(tmp_path, files)
    assert len(hook.upload(container, tmp_path, "paged").transferred) == 10

    again = hook.upload(container, tmp_path, "paged")
    assert again.transferred == [] and len(again.skipped) == 10

    (tmp_path / "f09.txt").write_bytes(b"CONTENT 09")  # last page, same size, new content
    third = hook.upload(container, tmp_path, "paged")
    assert [item.name for item in third.transferred] == ["paged/f09.txt"]
    assert len(third.skipped) == 9


def test_a_blob_without_content_md5_is_uploaded_again(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"same bytes")
    hook.upload(container, tmp_path, "nomd5")
    written_elsewhere = raw.get_blob_client(container, "nomd5/a.txt")
    written_elsewhere.set_http_headers(content_settings=ContentSettings(content_type="text/plain"))
    assert written_elsewhere.get_blob_properties().content_settings.content_md5 is None

    again = hook.upload(container, tmp_path, "nomd5")
    assert [item.name for item in again.transferred] == ["nomd5/a.txt"]
    props = written_elsewhere.get_blob_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(b"same bytes").digest()
    assert hook.upload(container, tmp_path, "nomd5").transferred == []


def test_upload_to_a_missing_container(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    with pytest.raises(BatchProviderError, match=f"Container '{container}' does not exist"):
        hook.upload(container, tmp_path, "x", create_container=False)
    assert [item.name for item in hook.upload(container, tmp_path, "x").transferred] == ["x/a.txt"]


def test_listing_matches_the_sdks_over_several_pages(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    write_tree(tmp_path, NESTED)
    hook.upload(container, tmp_path, "same")
    raw.get_blob_client(container, "same/no-md5.txt").upload_blob(b"x")
    raw.get_blob_client(container, "same/no-md5.txt").set_http_headers(ContentSettings("text/plain"))
    hook.list_page_size = 2
    for prefix in ("", "same/sub/deeper/with space & p", "same/unicode/\u00e9"):
        expected = [
            BlobInfo(
                item.name,
                item.size,
                bytes(item.content_settings.content_md5) if item.content_settings.content_md5 else None,
                item.last_modified,
            )
            for item in raw.get_container_client(container).list_blobs(name_starts_with=prefix or None)
        ]
        assert expected
        assert hook.list_blobs(container, prefix) == expected


def test_big_files_use_block_upload_and_still_skip(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    data = os.urandom(9 * 1024 * 1024 + 123)  # above the 4 MiB single-request limit: parallel blocks
    (tmp_path / "big.bin").write_bytes(data)
    first = hook.upload(container, tmp_path, "big", max_concurrency_per_file=4)
    assert first.bytes_transferred == len(data)
    props = raw.get_blob_client(container, "big/big.bin").get_blob_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(data).digest()

    assert hook.upload(container, tmp_path, "big").transferred == []
    changed = bytearray(data)
    changed[-1] ^= 0xFF
    (tmp_path / "big.bin").write_bytes(bytes(changed))
    assert [item.name for item in hook.upload(container, tmp_path, "big").transferred] == ["big/big.bin"]

    out = tmp_path / "out"
    hook.download_prefix(container, "big", out, max_concurrency_per_file=4)
    assert (out / "big.bin").read_bytes() == bytes(changed)
    skipped = hook.download_prefix(container, "big", out, skip_unchanged=True)
    assert skipped.transferred == [] and len(skipped.skipped) == 1


async def test_async_upload_and_download(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    write_tree(tmp_path / "src", NESTED)
    result = await hook.aupload(container, tmp_path / "src", "async")
    assert len(result.transferred) == len(NESTED)
    await hook.adownload_prefix(container, "async", tmp_path / "dst")
    await hook.aclose()
    assert tree_bytes(tmp_path / "dst") == NESTED


def test_many_files_in_parallel(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(64 + i) for i in range(300)}
    write_tree(tmp_path / "src", files)
    assert len(hook.upload(container, tmp_path / "src", "many", max_concurrency=16).transferred) == 300
    assert len(hook.list_blobs(container, "many/")) == 300
    hook.download_prefix(container, "many", tmp_path / "dst", max_concurrency=16)
    assert tree_bytes(tmp_path / "dst") == files


def test_create_container_is_idempotent(hook: BlobStorageHook, container: str) -> None:
    assert hook.create_container(container) is True
    assert hook.create_container(container) is False


def test_delete_prefix(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    write_tree(tmp_path, {f"f{i}.txt": b"x" for i in range(300)})
    hook.upload(container, tmp_path, "gone")
    hook.upload(container, tmp_path / "f1.txt", "kept")
    hook.upload(container, tmp_path / "f2.txt", "gone-but-not-prefix")
    assert hook.delete_prefix(container, "gone") == 300
    assert sorted(blob.name for blob in hook.list_blobs(container)) == [
        "gone-but-not-prefix/f2.txt",
        "kept/f1.txt",
    ]
    assert hook.delete_prefix(container, "gone/") == 0
    with pytest.raises(InvalidInputError, match="non-empty prefix"):
        hook.delete_prefix(container, "/")


# -- SAS ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["shared_key", "connection_string"])
def test_read_sas_reads_and_lists_but_cannot_write(
    azurite: AzuriteServer, make_hook: Any, container: str, tmp_path: Path, mode: str
) -> None:
    hook = make_hook(connection(azurite, mode))
    write_tree(tmp_path, {"in/data.txt": b"payload"})
    hook.upload(container, tmp_path, "")

    url = hook.get_container_sas_url(container, "read")
    assert url.startswith(f"{azurite.blob_endpoint}/{container}?")
    token = url.split("?", 1)[1]
    assert "sp=rl" in token
    signature = token.split("sig=", 1)[1]
    assert signature not in str(redact(f"submitting with {url}"))

    with ContainerClient.from_container_url(url) as client:
        assert [blob.name for blob in client.list_blobs()] == ["in/data.txt"]
        assert client.download_blob("in/data.txt").readall() == b"payload"
        with pytest.raises(HttpResponseError) as refused:
            client.upload_blob("in/evil.txt", b"no")
        assert refused.value.status_code == 403


@pytest.mark.parametrize("mode", ["shared_key", "connection_string"])
def test_write_sas_writes_but_cannot_read_or_list(
    azurite: AzuriteServer, make_hook: Any, container: str, mode: str
) -> None:
    hook = make_hook(connection(azurite, mode))
    hook.create_container(container)
    url = hook.get_container_sas_url(container, "write", expiry=timedelta(hours=1))
    assert "sp=cw" in url
    with ContainerClient.from_container_url(url) as client:
        client.upload_blob("out/result.txt", b"done")
        for action in (
            lambda: list(client.list_blobs()),
            lambda: client.download_blob("out/result.txt").readall(),
        ):
            with pytest.raises(HttpResponseError) as refused:
                action()
            assert refused.value.status_code == 403
    assert hook.list_blobs(container)[0].name == "out/result.txt"


def test_blob_sas(hook: BlobStorageHook, container: str, tmp_path: Path) -> None:
    if hook.settings.resolve_mode().value == "sas_token":
        pytest.skip("a SAS-token connection reuses its own token; covered below")
    (tmp_path / "x.txt").write_bytes(b"x-data")
    hook.upload(container, tmp_path, "b")
    from azure.storage.blob import BlobClient

    read_url = hook.get_blob_sas_url(container, "b/x.txt", "read")
    assert "sp=r&" in read_url and "sr=b" in read_url
    with BlobClient.from_blob_url(read_url) as client:
        assert client.download_blob().readall() == b"x-data"
        with pytest.raises(HttpResponseError) as refused:
            client.upload_blob(b"over", overwrite=True)
        assert refused.value.status_code == 403


def test_sas_token_connection_reuses_a_sufficient_token(
    azurite: AzuriteServer, make_hook: Any, container: str
) -> None:
    token = account_sas(azurite, permission="rl", resource_types="co")
    hook = make_hook(connection(azurite, "sas_token", extra={"sas_token": token}))
    raw = BlobServiceClient.from_connection_string(azurite.connection_string)
    raw.create_container(container)
    url = hook.get_container_sas_url(container, "read")
    assert url == f"{azurite.blob_endpoint}/{container}?{token}"
    with ContainerClient.from_container_url(url) as client:
        assert list(client.list_blobs()) == []

    with pytest.raises(ConnectionConfigError) as error:
        hook.get_container_sas_url(container, "write")
    message = str(error.value)
    assert "no new SAS can be signed" in message and "missing 'cw'" in message
    assert token not in message


def test_entra_modes_sign_with_a_user_delegation_key(make_hook: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one stub in these tests: Azure issues user delegation keys only to Entra ID tokens.

    ``get_user_delegation_key`` is replaced with a function returning a key of the service's shape;
    everything else (SAS signing, masking, key reuse) is the real code.
    """
    from azure.storage.blob import UserDelegationKey

    hook = make_hook(
        {
            "conn_type": "azblob",
            "host": "https://acct.blob.core.windows.net",
            "extra": {"tenant_id": "tenant", "client_id": "client", "client_secret": "entra-secret-value"},
        }
    )
    requests: list[tuple[datetime, datetime]] = []

    def fake_key(start: datetime, expiry: datetime, **_: Any) -> UserDelegationKey:
        requests.append((start, expiry))
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = "00000000-0000-0000-0000-000000000001", "tenant"
        key.signed_start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version = "b", "2025-01-05"
        key.value = base64.b64encode(b"delegation-key-bytes-0123456789ab").decode()
        return key

    monkeypatch.setattr(hook.get_conn(), "get_user_delegation_key", fake_key)
    url = hook.get_container_sas_url("inputs", "read", expiry=timedelta(hours=6))
    assert url.startswith("https://acct.blob.core.windows.net/inputs?")
    assert "sp=rl" in url and "skoid=00000000-0000-0000-0000-000000000001" in url and "sig=" in url
    assert url.split("sig=", 1)[1] not in str(redact(url))

    write_url = hook.get_blob_sas_url("outputs", "run/result.txt", "write", expiry=timedelta(hours=2))
    assert "sp=cw" in write_url and "sr=b" in write_url
    assert len(requests) == 1, "the key covering 6 hours is reused for a 2-hour SAS"

    with pytest.raises(InvalidInputError, match="at most 7 days"):
        hook.get_container_sas_url("inputs", expiry=timedelta(days=8))


def test_sas_expiry_in_the_past_is_refused(azurite: AzuriteServer, make_hook: Any) -> None:
    hook = make_hook(connection(azurite, "shared_key"))
    with pytest.raises(InvalidInputError, match="is in the past"):
        hook.get_container_sas_url("data", expiry=datetime.now(timezone.utc) - timedelta(minutes=1))
    with pytest.raises(InvalidInputError, match="access must be 'read'"):
        hook.get_container_sas_url("data", "delete")  # type: ignore[arg-type]


# -- errors ---------------------------------------------------------------------------------------------


def test_wrong_key_raises_authentication_error_without_the_key(
    azurite: AzuriteServer, make_hook: Any, container: str, tmp_path: Path
) -> None:
    wrong_key = base64.b64encode(os.urandom(64)).decode()
    hook = make_hook(connection(azurite, "shared_key", password=wrong_key))
    (tmp_path / "f.txt").write_text("data")
    with pytest.raises(AzureAuthenticationError) as error:
        hook.upload(container, tmp_path, "x")
    message = str(error.value)
    assert hook.conn_id in message
    assert "account key" in message
    assert wrong_key not in message and wrong_key[:20] not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__

    ok, text = hook.test_connection()
    assert not ok
    assert hook.conn_id in text and wrong_key not in text


def test_wrong_connection_string_key(azurite: AzuriteServer, make_hook: Any, container: str) -> None:
    wrong_key = base64.b64encode(b"w" * 64).decode()
    bad = azurite.connection_string.replace(azurite.account_key, wrong_key)
    hook = make_hook({"conn_type": "azblob", "extra": {"connection_string": bad}})
    with pytest.raises(AzureAuthenticationError) as error:
        hook.list_blobs(container)
    assert "connection string" in str(error.value) and wrong_key not in str(error.value)


def test_forged_sas_is_rejected(azurite: AzuriteServer, make_hook: Any, container: str) -> None:
    token = account_sas(azurite)
    forged = token.replace("sig=", "sig=AAAA")
    hook = make_hook(connection(azurite, "sas_token", extra={"sas_token": forged}))
    with pytest.raises(AzureAuthenticationError) as error:
        hook.create_container(container)
    assert "SAS token" in str(error.value) and forged not in str(error.value)


def test_read_only_sas_connection_cannot_upload(
    azurite: AzuriteServer, make_hook: Any, container: str, tmp_path: Path
) -> None:
    hook = make_hook(connection(azurite, "sas_token", extra={"sas_token": account_sas(azurite, "rl")}))
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)
    (tmp_path / "f.txt").write_text("data")
    with pytest.raises(AzureAuthenticationError, match="do not allow this operation"):
        hook.upload(container, tmp_path, "x", create_container=False)


def test_container_scoped_sas_connection_test(
    azurite: AzuriteServer, make_hook: Any, container: str, raw: BlobServiceClient
) -> None:
    raw.create_container(container)
    owner = make_hook(connection(azurite, "shared_key"))
    token = owner.get_container_sas_url(container, "read").split("?", 1)[1]
    hook = make_hook(connection(azurite, "sas_token", extra={"sas_token": token}))
    ok, message = hook.test_connection()
    assert not ok
    assert "scoped to a single container" in message
    assert token not in message


def test_input_errors_before_any_request(hook: BlobStorageHook, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        hook.upload("valid-name", tmp_path / "missing", "x")
    with pytest.raises(InvalidInputError, match="not a valid Blob container name"):
        hook.upload("Bad_Name", tmp_path, "x")
    assert hook.upload("valid-name-never-created", f"{tmp_path}/*.nothing", "x").files == []
    assert "valid-name-never-created" not in [c.name for c in hook.get_conn().list_containers()]


def test_missing_container_is_named(hook: BlobStorageHook) -> None:
    with pytest.raises(BatchProviderError, match="Container 'no-such-container' does not exist"):
        hook.list_blobs("no-such-container")


@pytest.mark.parametrize("name", ["../up.txt", "a/../../up.txt", "/abs.txt", "a//b", "C:/x", "..\\x", ""])
def test_unsafe_blob_names_cannot_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(BatchProviderError, match="cannot be downloaded safely"):
        safe_local_path(tmp_path, name)
    assert safe_local_path(tmp_path, "ok/name.txt") == (tmp_path / "ok" / "name.txt").resolve()


def test_download_refuses_escaping_blob_before_writing(
    hook: BlobStorageHook, raw: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    raw.create_container(container)
    raw.get_blob_client(container, "out/a.txt").upload_blob(b"fine")
    raw.get_blob_client(container, "out/..\\..\\escape.txt").upload_blob(b"evil")
    target = tmp_path / "target"
    with pytest.raises(BatchProviderError, match="cannot be downloaded safely"):
        hook.download_prefix(container, "out", target)
    assert not (tmp_path / "escape.txt").exists()
    assert not target.exists() or list(target.rglob("*")) == []
