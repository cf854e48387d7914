"""Download a task's resource files into its working directory before the command line runs.

Supports the three documented sources: ``httpUrl`` (``filePath`` is the file), ``storageContainerUrl``
and ``autoStorageContainerName`` (``filePath`` is a directory, blob names keep their virtual
directories, ``blobPrefix`` filters). ``fileMode`` is applied as on Linux nodes, 0770 by default.
Any failure is raised as a :class:`TaskFailure` with the documented pre-processing code.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobClient, ContainerClient

from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.failures import TaskFailure
from airflow_batch_provider.emulator.compute.runner.storage import StorageSession, is_blob_url, redact_url

DEFAULT_FILE_MODE = 0o770
#: Files downloaded at the same time for one attempt.
_PARALLEL_FILES = 8
#: Parallel range requests the storage SDK may use for one large blob.
_PARALLEL_RANGES = 4
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Download:
    """One file to fetch: from a blob client or a plain URL, to a local path."""

    target: Path
    source: str  # for messages; never carries a SAS
    blob: BlobClient | None = None
    url: str | None = None


def _inside(root: Path, relative: str, what: str) -> Path:
    if os.path.isabs(relative):
        raise TaskFailure(
            failures.RESOURCE_FILE_CREATE_FAILED,
            f"The resource file path {relative!r} must be relative to the task working directory",
            {"FilePath": relative},
        )
    target = Path(os.path.normpath(root / relative))
    if target != root and root not in target.parents:
        raise TaskFailure(
            failures.RESOURCE_FILE_CREATE_FAILED,
            f"The {what} {relative!r} is outside the task working directory",
            {"FilePath": relative},
        )
    return target


def _file_mode(resource_file: dict[str, Any]) -> int:
    raw = resource_file.get("fileMode")
    if raw in (None, ""):
        return DEFAULT_FILE_MODE
    try:
        return int(str(raw), 8)
    except ValueError as err:
        raise TaskFailure(
            failures.RESOURCE_FILE_CREATE_FAILED,
            f"The file mode {raw!r} is not an octal number",
            {"FileMode": str(raw)},
        ) from err


def _storage_failure(err: BaseException, source: str) -> TaskFailure:
    details = {"Url": source}
    if isinstance(err, ResourceNotFoundError):
        return TaskFailure(failures.BLOB_NOT_FOUND, f"The resource file {source} does not exist", details)
    if isinstance(err, ClientAuthenticationError):
        return TaskFailure(
            failures.BLOB_ACCESS_DENIED, f"Access was denied to the resource file {source}", details
        )
    if isinstance(err, HttpResponseError) and err.status_code in (401, 403):
        return TaskFailure(
            failures.BLOB_ACCESS_DENIED, f"Access was denied to the resource file {source}", details
        )
    if isinstance(err, HttpResponseError) and err.status_code == 404:
        return TaskFailure(failures.BLOB_NOT_FOUND, f"The resource file {source} does not exist", details)
    if isinstance(err, asyncio.TimeoutError):
        return TaskFailure(
            failures.BLOB_DOWNLOAD_TIMED_OUT, f"Downloading the resource file {source} timed out", details
        )
    reason = getattr(err, "message", None) or str(err) or type(err).__name__
    return TaskFailure(
        failures.BLOB_DOWNLOAD_MISC_ERROR,
        f"The resource file {source} could not be downloaded: {reason}",
        details,
    )


def _http_failure(status: int, source: str) -> TaskFailure:
    details = {"Url": source, "HttpStatusCode": str(status)}
    if status == 404:
        return TaskFailure(failures.BLOB_NOT_FOUND, f"The resource file {source} does not exist", details)
    if status in (401, 403):
        return TaskFailure(
            failures.BLOB_ACCESS_DENIED, f"Access was denied to the resource file {source}", details
        )
    return TaskFailure(
        failures.BLOB_DOWNLOAD_MISC_ERROR,
        f"The resource file {source} could not be downloaded: HTTP {status}",
        details,
    )


def _open_target(target: Path) -> Any:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "wb")
    except OSError as err:
        raise TaskFailure(
            failures.RESOURCE_FILE_CREATE_FAILED,
            f"The local file {target.name!r} could not be created: {err.strerror or err}",
            {"FilePath": str(target)},
        ) from err


async def _fetch(download: _Download, session: StorageSession, mode: int) -> None:
    try:
        if download.blob is not None:
            stream = await download.blob.download_blob(max_concurrency=_PARALLEL_RANGES)
            with _open_target(download.target) as handle:
                await stream.readinto(handle)
        else:
            assert download.url is not None
            async with session.http.get(download.url) as response:
                if response.status >= 400:
                    raise _http_failure(response.status, download.source)
                with _open_target(download.target) as handle:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        handle.write(chunk)
        os.chmod(download.target, mode)
    except TaskFailure:
        raise
    except (AzureError, aiohttp.ClientError, asyncio.TimeoutError) as err:
        raise _storage_failure(err, download.source) from err
    except OSError as err:
        raise TaskFailure(
            failures.RESOURCE_FILE_WRITE_FAILED,
            f"The local file for {download.source} could not be written: {err.strerror or err}",
            {"FilePath": str(download.target)},
        ) from err


async def _list_container(
    container: ContainerClient, prefix: str | None, directory: Path, source: str
) -> list[_Download]:
    downloads: list[_Download] = []
    try:
        async for blob in container.list_blobs(name_starts_with=prefix or None):
            name: str = blob.name
            if name.endswith("/"):
                continue  # a directory marker, not a file
            target = _inside(directory, name, "blob name")
            downloads.append(_Download(target, f"{source}/{name}", blob=container.get_blob_client(name)))
    except TaskFailure:
        raise
    except (AzureError, aiohttp.ClientError, asyncio.TimeoutError) as err:
        raise _storage_failure(err, source) from err
    return downloads


async def _expand(
    resource_file: dict[str, Any],
    working_dir: Path,
    session: StorageSession,
    auto_storage_connection_string: str | None,
) -> list[_Download]:
    file_path = resource_file.get("filePath") or ""
    http_url = resource_file.get("httpUrl")
    if http_url:
        if not file_path:
            raise TaskFailure(
                failures.RESOURCE_FILE_CREATE_FAILED,
                f"The resource file {redact_url(http_url)} has no filePath",
                {"Url": redact_url(http_url)},
            )
        target = _inside(working_dir, file_path, "resource file path")
        source = redact_url(http_url)
        if is_blob_url(http_url):
            return [_Download(target, source, blob=session.blob_from_url(http_url))]
        return [_Download(target, source, url=http_url)]

    directory = _inside(working_dir, file_path, "resource file path") if file_path else working_dir
    prefix = resource_file.get("blobPrefix")
    container_url = resource_file.get("storageContainerUrl")
    if container_url:
        container = session.container_from_url(container_url)
        return await _list_container(container, prefix, directory, redact_url(container_url))
    container_name = resource_file.get("autoStorageContainerName")
    if container_name:
        if not auto_storage_connection_string:
            raise TaskFailure(
                failures.BLOB_DOWNLOAD_MISC_ERROR,
                f"The auto-storage container {container_name!r} was requested but the account has no "
                "auto-storage account",
                {"AutoStorageContainerName": container_name},
            )
        container = session.container_from_connection_string(auto_storage_connection_string, container_name)
        return await _list_container(container, prefix, directory, f"autostorage:{container_name}")
    raise TaskFailure(
        failures.BLOB_DOWNLOAD_MISC_ERROR,
        "A resource file has none of httpUrl, storageContainerUrl and autoStorageContainerName",
    )


async def _bounded(
    semaphore: asyncio.Semaphore, download: _Download, session: StorageSession, mode: int
) -> None:
    async with semaphore:
        await _fetch(download, session, mode)


async def download_resource_files(
    resource_files: list[dict[str, Any]],
    working_dir: Path,
    session: StorageSession,
    auto_storage_connection_string: str | None = None,
) -> None:
    """Fetch every resource file into ``working_dir``; the first failure cancels the rest."""
    plan: list[tuple[_Download, int]] = []
    for resource_file in resource_files:
        mode = _file_mode(resource_file)
        for download in await _expand(resource_file, working_dir, session, auto_storage_connection_string):
            plan.append((download, mode))
    if not plan:
        return
    if len(plan) == 1:
        download, mode = plan[0]
        await _fetch(download, session, mode)
        return
    semaphore = asyncio.Semaphore(_PARALLEL_FILES)
    tasks = [asyncio.ensure_future(_bounded(semaphore, d, session, m)) for d, m in plan]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
