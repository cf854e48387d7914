"""Upload a task's output files to blob containers after its process has exited.

``filePattern`` is relative to the working directory (or absolute) and supports the documented
wildcards: ``*`` and ``?`` within a name, ``**`` for any number of directories, ``[abc]``/``[a-c]``/
``[!abc]`` classes; names starting with ``.`` only match a pattern segment that starts with ``.``.
``../stdout.txt`` reaches the task directory. The destination ``path`` is the blob name when the
pattern has no wildcards, else a virtual directory prepended to each file's path relative to the
pattern's fixed leading directories. As on real nodes, what happened is logged to
``fileuploadout.txt`` and ``fileuploaderr.txt`` in the task directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContentSettings

from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.failures import TaskFailure
from airflow_batch_provider.emulator.compute.runner.storage import StorageSession, redact_url

UPLOAD_LOG = "fileuploadout.txt"
UPLOAD_ERROR_LOG = "fileuploaderr.txt"
_WILDCARDS = frozenset("*?[")
_PARALLEL_FILES = 8
_PARALLEL_BLOCKS = 4
#: uploadHeaders that map onto the blob's content settings; any other header is sent as is.
_CONTENT_HEADERS = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-language": "content_language",
    "content-disposition": "content_disposition",
    "cache-control": "cache_control",
}


def has_wildcards(pattern: str) -> bool:
    return any(char in _WILDCARDS for char in pattern)


def _segment_matches(name: str, segment: str) -> bool:
    if name.startswith(".") and not segment.startswith("."):
        return False
    return fnmatchcase(name, segment)


def _walk(
    directory: str, segments: list[str], relative: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...]]]:
    segment, rest = segments[0], segments[1:]
    if segment == "**":
        if rest:
            yield from _walk(directory, rest, relative)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            yield from _walk(entry.path, segments, (*relative, entry.name))
        return
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not _segment_matches(entry.name, segment):
            continue
        if rest:
            if entry.is_dir():
                yield from _walk(entry.path, rest, (*relative, entry.name))
        elif entry.is_file():
            yield entry.path, (*relative, entry.name)


def match_files(pattern: str, working_dir: Path) -> list[tuple[Path, str]]:
    """Files matching ``pattern``, each with its name relative to the pattern's fixed leading part."""
    root = "/" if pattern.startswith("/") else str(working_dir)
    segments = [segment for segment in pattern.split("/") if segment not in ("", ".")]
    if not segments:
        return []
    if not has_wildcards(pattern):
        path = os.path.normpath(os.path.join(root, *segments))
        return [(Path(path), os.path.basename(path))] if os.path.isfile(path) else []
    fixed: list[str] = []
    while not has_wildcards(segments[0]):
        fixed.append(segments.pop(0))
    base = os.path.normpath(os.path.join(root, *fixed))
    if segments[-1] == "**":
        segments.append("*")  # a trailing ** means every file below
    found = dict(_walk(base, segments, ()))
    return sorted((Path(path), "/".join(parts)) for path, parts in found.items())


@dataclass(frozen=True)
class _Upload:
    local: Path
    blob_name: str
    container_url: str
    headers: tuple[tuple[str, str], ...]


def _condition_met(output_file: dict[str, Any], succeeded: bool) -> bool:
    options = output_file.get("uploadOptions") or {}
    condition = str(options.get("uploadCondition") or "taskcompletion").lower()
    if condition == "tasksuccess":
        return succeeded
    if condition == "taskfailure":
        return not succeeded
    return True


def _blob_name(pattern: str, relative: str, path: str | None) -> str:
    if not path:
        return relative
    if has_wildcards(pattern):
        return f"{path.rstrip('/')}/{relative}"
    return path


def _plan(output_files: list[dict[str, Any]], working_dir: Path, succeeded: bool) -> list[_Upload]:
    uploads: list[_Upload] = []
    for output_file in output_files:
        if not _condition_met(output_file, succeeded):
            continue
        pattern = str(output_file.get("filePattern") or "")
        destination = (output_file.get("destination") or {}).get("container") or {}
        container_url = destination.get("containerUrl")
        if not container_url:
            raise TaskFailure(
                failures.FILE_UPLOAD_MISC_ERROR,
                f"The output file pattern {pattern!r} has no destination container",
                {"FilePattern": pattern},
            )
        headers = tuple(
            (str(header.get("name")), str(header.get("value", "")))
            for header in destination.get("uploadHeaders") or []
            if header.get("name")
        )
        for local, relative in match_files(pattern, working_dir):
            uploads.append(
                _Upload(local, _blob_name(pattern, relative, destination.get("path")), container_url, headers)
            )
    return uploads


def _upload_failure(err: BaseException, upload: _Upload) -> TaskFailure:
    target = f"{redact_url(upload.container_url)}/{upload.blob_name}"
    details = {"FilePath": str(upload.local), "BlobUrl": target}
    error_code = getattr(err, "error_code", None)
    status = getattr(err, "status_code", None)
    if error_code == "ContainerNotFound" or (isinstance(err, ResourceNotFoundError) and error_code is None):
        return TaskFailure(
            failures.FILE_UPLOAD_CONTAINER_NOT_FOUND,
            f"The destination container was not found: {redact_url(upload.container_url)}",
            details,
        )
    if isinstance(err, ClientAuthenticationError) or status in (401, 403):
        return TaskFailure(
            failures.FILE_UPLOAD_ACCESS_DENIED,
            f"Access was denied when uploading {upload.local.name} to {target}",
            details,
        )
    reason = getattr(err, "message", None) or str(err) or type(err).__name__
    if isinstance(err, OSError) and not isinstance(err, aiohttp.ClientError):
        reason = err.strerror or reason
    return TaskFailure(
        failures.FILE_UPLOAD_MISC_ERROR,
        f"Uploading {upload.local.name} to {target} failed: {reason}",
        details,
    )


async def _send(upload: _Upload, session: StorageSession, semaphore: asyncio.Semaphore) -> None:
    settings: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, value in upload.headers:
        field = _CONTENT_HEADERS.get(name.lower())
        if field:
            settings[field] = value
        else:
            extra[name] = value
    kwargs: dict[str, Any] = {"overwrite": True, "max_concurrency": _PARALLEL_BLOCKS}
    if settings:
        kwargs["content_settings"] = ContentSettings(**settings)
    if extra:
        kwargs["headers"] = extra
    async with semaphore:
        container = session.container_from_url(upload.container_url)
        with open(upload.local, "rb") as data:
            await container.upload_blob(upload.blob_name, data, **kwargs)


def _write_log(path: Path, lines: list[str]) -> None:
    if lines:
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as log:
            log.write("".join(f"{line}\n" for line in lines))


async def upload_output_files(
    output_files: list[dict[str, Any]],
    task_dir: Path,
    working_dir: Path,
    session: StorageSession,
    succeeded: bool,
) -> None:
    """Upload what the conditions select; every file is tried, the first failure is raised."""
    if any("**" in str(output_file.get("filePattern") or "") for output_file in output_files):
        # A recursive pattern may walk a large tree: keep that off the event loop.
        uploads = await asyncio.to_thread(_plan, output_files, working_dir, succeeded)
    else:
        uploads = _plan(output_files, working_dir, succeeded)
    if not uploads:
        return
    semaphore = asyncio.Semaphore(_PARALLEL_FILES)
    results = await asyncio.gather(*(_send(u, session, semaphore) for u in uploads), return_exceptions=True)
    done: list[str] = []
    errors: list[str] = []
    first: TaskFailure | None = None
    for upload, result in zip(uploads, results, strict=True):
        target = f"{redact_url(upload.container_url)}/{upload.blob_name}"
        if result is None:
            done.append(f"Uploaded {upload.local} to {target}")
            continue
        if isinstance(result, asyncio.CancelledError):
            raise result
        if not isinstance(
            result, (AzureError, aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError)
        ):
            raise result
        failure = _upload_failure(result, upload)
        errors.append(f"{failure.code}: {failure.message}")
        first = first or failure
    _write_log(task_dir / UPLOAD_LOG, done)
    _write_log(task_dir / UPLOAD_ERROR_LOG, errors)
    if first is not None:
        raise first
