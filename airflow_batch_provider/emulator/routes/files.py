"""File access shared by task files and node files: listing, properties, ranged reads, deletion."""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from airflow_batch_provider.emulator.errors import BatchError, invalid_query, resource_not_found
from airflow_batch_provider.emulator.models.base import check_preconditions
from airflow_batch_provider.emulator.routes.common import list_response
from airflow_batch_provider.emulator.serialization import format_datetime, format_http_date

#: ``bytes=start-end``; 18 digits at most (beyond any file's size), so no number is too long to parse.
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")


def resolve(root: Path, file_path: str) -> Path:
    """``file_path`` (already percent-decoded) under ``root``; 404 ``FileNotFound`` if it is not there."""
    relative = file_path.strip("/")
    target = (root / relative).resolve()
    root = root.resolve()
    if target != root and root not in target.parents:
        raise resource_not_found("file")
    if not target.exists():
        raise resource_not_found("file")
    return target


def _times(info: os.stat_result) -> tuple[datetime, datetime]:
    modified = datetime.fromtimestamp(info.st_mtime, timezone.utc)
    created = datetime.fromtimestamp(min(info.st_ctime, info.st_mtime), timezone.utc)
    return created, modified


def _entry(root: Path, path: Path, files_url: str) -> dict[str, Any]:
    name = path.relative_to(root).as_posix()
    info = path.stat()
    created, modified = _times(info)
    is_directory = path.is_dir()
    entry: dict[str, Any] = {
        "name": name,
        "url": f"{files_url}/{quote(name, safe='')}",
        "isDirectory": is_directory,
    }
    if not is_directory:
        entry["properties"] = {
            "creationTime": format_datetime(created),
            "lastModified": format_datetime(modified),
            "contentLength": str(info.st_size),
            "contentType": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "fileMode": oct(stat.S_IMODE(info.st_mode) | (info.st_mode & 0o170000))[2:],
        }
    return entry


def _walk(root: Path, recursive: bool, files_url: str) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    paths = sorted(root.rglob("*")) if recursive else sorted(root.iterdir())
    return [_entry(root, path, files_url) for path in paths if path.exists()]


async def list_files(request: Request, root: Path, files_url: str, fragment: str) -> Response:
    recursive = request.query_params.get("recursive", "false").lower() == "true"
    entries = await anyio.to_thread.run_sync(_walk, root, recursive, files_url)
    return list_response(request, entries, fragment)


def _headers(path: Path, url: str) -> tuple[dict[str, str], datetime, int]:
    info = path.stat()
    created, modified = _times(info)
    headers = {
        "ocp-creation-time": format_http_date(created),
        "ocp-batch-file-isdirectory": "true" if path.is_dir() else "false",
        "ocp-batch-file-url": url,
        "ocp-batch-file-mode": oct(stat.S_IMODE(info.st_mode) | (info.st_mode & 0o170000))[2:],
        "Last-Modified": format_http_date(modified),
    }
    size = 0 if path.is_dir() else info.st_size
    return headers, modified, size


def file_properties(request: Request, root: Path, file_path: str, url: str) -> Response:
    """HEAD: the file's properties as headers, no body."""
    path = resolve(root, file_path)
    headers, modified, size = _headers(path, url)
    check_preconditions("", modified, request.headers, read=True)
    headers["Content-Length"] = str(size)
    headers["Content-Type"] = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(status_code=200, headers=headers)


#: Bytes read from disk and sent at a time: a download holds one chunk, whatever the file's size.
CHUNK_BYTES = 256 * 1024


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``path`` from ``start``, a chunk at a time (Starlette reads it on a thread)."""
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:  # the file shrank meanwhile: the response ends short, as a cut connection
                return
            remaining -= len(chunk)
            yield chunk


async def download(request: Request, root: Path, file_path: str, url: str) -> Response:
    """GET: the file's bytes, or the ``ocp-range: bytes=a-b`` slice of them, streamed from disk."""
    path = resolve(root, file_path)
    if path.is_dir():
        raise BatchError(
            400,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
            {"Reason": "The path is a directory; list it with the files operation."},
        )
    headers, modified, size = _headers(path, url)
    check_preconditions("", modified, request.headers, read=True)
    start, end = 0, size - 1
    requested = request.headers.get("ocp-range")
    if requested:
        match = _RANGE.fullmatch(requested.strip())
        if not match or (not match.group(1) and not match.group(2)):
            raise invalid_query("ocp-range", requested, "The range must look like bytes=start-end.")
        if match.group(1):
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else size - 1
        else:
            start = max(0, size - int(match.group(2)))
        end = min(end, size - 1)
        if start >= size or end < start:
            raise BatchError(
                416, "InvalidRange", "The range specified is invalid for the current size of the resource."
            )
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return StreamingResponse(_chunks(path, start, length), 200, headers, media_type=media_type)


def delete(request: Request, root: Path, file_path: str) -> Response:
    path = resolve(root, file_path)
    if path == root.resolve():
        raise BatchError(
            409, "OperationInvalidForCurrentState", "The task's root directory cannot be deleted."
        )
    if path.is_dir():
        if request.query_params.get("recursive", "false").lower() != "true" and any(path.iterdir()):
            raise BatchError(
                409,
                "OperationInvalidForCurrentState",
                "The specified operation is not valid for the current state of the resource.",
                {"Reason": "The directory is not empty; pass recursive=true to delete it."},
            )
        shutil.rmtree(path)
    else:
        path.unlink()
    return Response(status_code=200)
