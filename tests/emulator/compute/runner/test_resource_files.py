"""Resource files: fetched into the working directory before the command, or the command never runs."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from airflow_batch_provider.emulator.compute.runner.executor import TaskExecutor
from airflow_batch_provider.emulator.compute.runner.spec import RunKind, TaskRunResult, TaskRunSpec

from .helpers import Node, Storage

pytestmark = pytest.mark.integration

# Records that the command line ran, and which files it saw.
LIST_FILES = "/bin/sh -c 'find . -type f | sort > ../seen.txt'"


async def run(spec: TaskRunSpec) -> TaskRunResult:
    return await TaskExecutor().run(spec, asyncio.Event())


def seen(spec: TaskRunSpec) -> list[str]:
    return (spec.task_dir / "seen.txt").read_text().split()


async def test_http_url_of_a_blob_with_sas(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("tools/run.sh", b"#!/bin/sh\necho from-script\n")
    spec = node.spec(
        "./bin/run.sh",
        resource_files=[
            {
                "httpUrl": storage.blob_url(container, "tools/run.sh"),
                "filePath": "bin/run.sh",
                "fileMode": "0755",
            }
        ],
    )
    result = await run(spec)
    assert result.exit_code == 0, result.failure_info
    assert (spec.task_dir / "stdout.txt").read_text() == "from-script\n"
    assert stat.S_IMODE((spec.task_dir / "wd" / "bin" / "run.sh").stat().st_mode) == 0o755


async def test_default_file_mode_is_0770(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("data.txt", b"x")
    spec = node.spec(
        "true", resource_files=[{"httpUrl": storage.blob_url(container, "data.txt"), "filePath": "d.txt"}]
    )
    assert (await run(spec)).exit_code == 0
    assert stat.S_IMODE((spec.task_dir / "wd" / "d.txt").stat().st_mode) == 0o770


async def test_plain_http_url(node: Node, storage: Storage) -> None:
    """A URL that is not a SAS blob URL is fetched as plain HTTP (here a public Azurite container)."""
    container = storage.container(public_access="blob")
    container.upload_blob("page.html", b"<html/>")
    url = f"{storage.server.blob_endpoint}/{container.container_name}/page.html"
    spec = node.spec("true", resource_files=[{"httpUrl": url, "filePath": "page.html"}])
    assert (await run(spec)).exit_code == 0
    assert (spec.task_dir / "wd" / "page.html").read_bytes() == b"<html/>"


async def test_storage_container_url_with_prefix_keeps_blob_directories(node: Node, storage: Storage) -> None:
    container = storage.container()
    for name in ("inputs/a.csv", "inputs/deep/b.csv", "inputs-extra.txt", "other/c.csv"):
        container.upload_blob(name, name.encode())
    spec = node.spec(
        LIST_FILES,
        resource_files=[
            {
                "storageContainerUrl": storage.sas_url(container, "rl"),
                "blobPrefix": "inputs",
                "filePath": "data",
            }
        ],
    )
    result = await run(spec)
    assert result.exit_code == 0, result.failure_info
    assert seen(spec) == ["./data/inputs-extra.txt", "./data/inputs/a.csv", "./data/inputs/deep/b.csv"]
    assert (spec.task_dir / "wd" / "data" / "inputs" / "deep" / "b.csv").read_text() == "inputs/deep/b.csv"


async def test_auto_storage_container(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("model/weights.bin", b"\x00\x01")
    container.upload_blob("readme.txt", b"hi")
    spec = node.spec(
        LIST_FILES,
        resource_files=[{"autoStorageContainerName": container.container_name, "blobPrefix": "model/"}],
        auto_storage_connection_string=storage.server.connection_string,
    )
    result = await run(spec)
    assert result.exit_code == 0, result.failure_info
    assert seen(spec) == ["./model/weights.bin"]


async def test_start_task_resource_files_land_in_its_working_directory(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("setup.txt", b"setup")
    spec = node.spec(
        "true",
        kind=RunKind.START_TASK,
        resource_files=[{"httpUrl": storage.blob_url(container, "setup.txt"), "filePath": "setup.txt"}],
    )
    assert (await run(spec)).exit_code == 0
    assert (node.root / "startup" / "wd" / "setup.txt").read_text() == "setup"


async def test_missing_blob_fails_before_the_command_runs(node: Node, storage: Storage) -> None:
    container = storage.container()
    spec = node.spec(
        LIST_FILES,
        resource_files=[{"httpUrl": storage.blob_url(container, "absent.bin"), "filePath": "absent.bin"}],
    )
    result = await run(spec)
    assert not (spec.task_dir / "seen.txt").exists()
    assert result.exit_code is None
    assert result.result == "failure"
    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert result.failure_info["code"] == "BlobNotFound"
    assert "absent.bin" in result.failure_info["message"]
    assert "sig=" not in str(result.failure_info)  # the SAS never leaks into the task's record


async def test_bad_sas_is_access_denied(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("secret.txt", b"s")
    url = storage.blob_url(container, "secret.txt").replace("sig=", "sig=AAAA")
    spec = node.spec(LIST_FILES, resource_files=[{"httpUrl": url, "filePath": "secret.txt"}])
    result = await run(spec)
    assert not (spec.task_dir / "seen.txt").exists()
    assert result.exit_code is None
    assert result.failure_info is not None and result.failure_info["code"] == "BlobAccessDenied"
    assert "secret.txt" in result.failure_info["message"]


async def test_container_sas_without_list_permission_is_access_denied(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("a.txt", b"a")
    spec = node.spec(LIST_FILES, resource_files=[{"storageContainerUrl": storage.sas_url(container, "r")}])
    result = await run(spec)
    assert not (spec.task_dir / "seen.txt").exists()
    assert result.failure_info is not None and result.failure_info["code"] == "BlobAccessDenied"


async def test_plain_http_404_is_blob_not_found(node: Node, storage: Storage) -> None:
    container = storage.container(public_access="blob")
    url = f"{storage.server.blob_endpoint}/{container.container_name}/nothing.txt"
    spec = node.spec(LIST_FILES, resource_files=[{"httpUrl": url, "filePath": "nothing.txt"}])
    result = await run(spec)
    assert not (spec.task_dir / "seen.txt").exists()
    assert result.failure_info is not None and result.failure_info["code"] == "BlobNotFound"


async def test_unreachable_url_is_a_download_error(node: Node) -> None:
    spec = node.spec(LIST_FILES, resource_files=[{"httpUrl": "http://127.0.0.1:9/file", "filePath": "file"}])
    result = await run(spec)
    assert not (spec.task_dir / "seen.txt").exists()
    assert result.failure_info is not None and result.failure_info["code"] == "BlobDownloadMiscError"


async def test_file_path_may_not_leave_the_working_directory(node: Node, storage: Storage) -> None:
    container = storage.container()
    container.upload_blob("a.txt", b"a")
    spec = node.spec(
        LIST_FILES,
        resource_files=[{"httpUrl": storage.blob_url(container, "a.txt"), "filePath": "../../escape.txt"}],
    )
    result = await run(spec)
    assert result.exit_code is None
    assert result.failure_info is not None and result.failure_info["code"] == "ResourceFileCreateFailed"
    assert not (node.root / "workitems" / "escape.txt").exists()


@pytest.fixture
async def slow_url() -> AsyncIterator[str]:
    """A plain HTTP URL whose response never finishes."""

    async def hang(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"partial")
        await asyncio.sleep(60)
        return response

    app = web.Application()
    app.router.add_get("/slow", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/slow"
    await runner.cleanup()


async def test_wall_clock_covers_downloads(node: Node, slow_url: str) -> None:
    spec = node.spec(
        LIST_FILES, max_wall_clock_seconds=0.3, resource_files=[{"httpUrl": slow_url, "filePath": "f"}]
    )
    result = await asyncio.wait_for(run(spec), 5)
    assert result.timed_out
    assert result.exit_code is None
    assert result.failure_info is not None and result.failure_info["code"] == "TaskEnded"
    assert not (spec.task_dir / "seen.txt").exists()


async def test_cancel_during_downloads(node: Node, slow_url: str) -> None:
    spec = node.spec(LIST_FILES, resource_files=[{"httpUrl": slow_url, "filePath": "f"}])
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, cancel.set)
    result = await asyncio.wait_for(TaskExecutor().run(spec, cancel), 5)
    assert result.cancelled
    assert result.exit_code is None
    assert not (spec.task_dir / "seen.txt").exists()
