"""Validation of operator inputs, done before any cloud resource is touched.

Each helper raises :class:`~airflow_batch_provider.exceptions.InvalidInputError` naming the argument
(``field``) that is wrong and how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_batch_provider.exceptions import InvalidInputError

#: 3-63 characters: lower-case letters, digits and single hyphens, starting and ending with a letter or
#: digit (https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
_CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
#: Containers Azure reserves and allows by these names although they break the pattern above.
_SPECIAL_CONTAINERS = frozenset({"$root", "$web", "$logs"})
#: A blob name is at most 1,024 characters.
_MAX_BLOB_NAME = 1024


def _suggest_container_name(name: str) -> str | None:
    """A valid name close to ``name``, for the error message, or ``None`` when there is none."""
    candidate = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower())
    candidate = re.sub(r"-{2,}", "-", candidate).strip("-")[:63].rstrip("-")
    if _CONTAINER_NAME.fullmatch(candidate):
        return candidate
    return None


def validate_container_name(name: str, field: str = "container") -> str:
    """Return ``name`` if it is a valid Blob container name, else raise ``InvalidInputError``."""
    if not isinstance(name, str):
        raise InvalidInputError(
            f"{field} must be a string naming a Blob container, got {type(name).__name__}."
        )
    if name in _SPECIAL_CONTAINERS or _CONTAINER_NAME.fullmatch(name):
        return name
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append(f"it has {len(name)} characters, not 3 to 63")
    if re.search(r"[^a-z0-9-]", name):
        bad = sorted(set(re.findall(r"[^a-z0-9-]", name)))
        problems.append(f"it contains {', '.join(repr(char) for char in bad)}")
    if "--" in name:
        problems.append("it contains consecutive hyphens")
    if name[:1] == "-" or name[-1:] == "-":
        problems.append("it starts or ends with a hyphen")
    reason = "; ".join(problems) or "it does not follow the naming rules"
    message = (
        f"{field} {name!r} is not a valid Blob container name: {reason}. Container names have 3 to 63 "
        "characters: lower-case letters, digits and single hyphens, starting and ending with a letter "
        "or digit."
    )
    suggestion = _suggest_container_name(name)
    if suggestion and suggestion != name:
        message += f" For example: {suggestion!r}."
    raise InvalidInputError(message)


def normalize_blob_prefix(prefix: str | None, field: str = "prefix") -> str:
    """Turn a virtual-directory prefix into ``a/b/`` form (``""`` for the container root).

    Leading and repeated slashes are dropped and backslashes become slashes; ``.`` and ``..`` segments
    are rejected because they would not round-trip to a local directory.
    """
    if prefix is None:
        return ""
    if not isinstance(prefix, str):
        raise InvalidInputError(f"{field} must be a string, got {type(prefix).__name__}.")
    segments = [segment for segment in prefix.replace("\\", "/").split("/") if segment]
    if any(segment in {".", ".."} for segment in segments):
        raise InvalidInputError(
            f"{field} {prefix!r} contains a '.' or '..' segment. Use a plain path such as 'inputs/run-1/'."
        )
    normalized = "/".join(segments)
    if len(normalized) >= _MAX_BLOB_NAME:
        raise InvalidInputError(
            f"{field} is {len(normalized)} characters long; blob names are limited to {_MAX_BLOB_NAME}."
        )
    return f"{normalized}/" if normalized else ""


def validate_non_negative_int(value: Any, field: str, meaning: str = "") -> int:
    """Return ``value`` if it is a whole number of at least 0, else raise ``InvalidInputError``.

    ``meaning`` (e.g. "reboots per node") is added to the message to say what the number counts.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    what = f" ({meaning})" if meaning else ""
    raise InvalidInputError(f"{field} must be a whole number of at least 0{what}, got {value!r}.")


def validate_start_task_reboots(value: Any) -> int:
    """Check ``max_start_task_reboots`` of the pool waits (operator, sensor, trigger)."""
    return validate_non_negative_int(
        value, "max_start_task_reboots", "reboots per node after its start task failed; 0 never reboots"
    )


# ---------------------------------------------------------------------------------------------------
# Batch ids, task collections and SAS lifetimes (Batch operators)
# ---------------------------------------------------------------------------------------------------

_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BATCH_ID_HINT = (
    "Batch ids may contain only letters, digits, hyphens and underscores, at most 64 characters. "
    "airflow_batch_provider.batch.ids.make_batch_id() turns any string into a valid, unique id."
)


def validate_batch_id(value: Any, kind: str = "task") -> str:
    """Return ``value`` if it is a valid Batch id for a ``kind`` (pool, job, task), else raise."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"The {kind} id is empty or not a string ({value!r}). {_BATCH_ID_HINT}")
    if len(value) > 64:
        raise InvalidInputError(
            f"The {kind} id {value[:80]!r} has {len(value)} characters, more than 64. {_BATCH_ID_HINT}"
        )
    if not _BATCH_ID.fullmatch(value):
        bad = sorted({ch for ch in value if not (ch.isascii() and (ch.isalnum() or ch in "-_"))})
        raise InvalidInputError(
            f"The {kind} id {value!r} contains characters Batch rejects: {''.join(bad)!r}. {_BATCH_ID_HINT}"
        )
    return value


def validate_unique_batch_ids(ids: Iterable[str], kind: str = "task") -> None:
    """Raise when two ids are equal ignoring case (Batch treats ids case-insensitively)."""
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for value in ids:
        key = value.lower()
        if key in seen:
            duplicates.append(value if seen[key] == value else f"{seen[key]}/{value}")
        else:
            seen[key] = value
    if duplicates:
        shown = ", ".join(duplicates[:10]) + (" ..." if len(duplicates) > 10 else "")
        raise InvalidInputError(
            f"{len(duplicates)} {kind} id(s) occur more than once (Batch ids are case-insensitive): "
            f"{shown}. Give every task its own id, or leave the ids out and let the operator number them."
        )


#: The service takes at most 1 MB (1,048,576 bytes) per add-task request; a task must fit alone,
#: with room for the ``{"value": [...]}`` envelope.
MAX_TASK_BODY_BYTES = 1_048_576 - 64


def task_body_size(task: Mapping[str, Any]) -> int:
    """Bytes the task takes in a request body (compact JSON, as the SDK sends it)."""
    return len(json.dumps(task, separators=(",", ":"), default=str).encode("utf-8"))


def _oversized_message(tasks: list[Mapping[str, Any]]) -> str:
    first = tasks[0]
    sizes = sorted(((task_body_size({key: value}), key) for key, value in first.items()), reverse=True)
    biggest = ", ".join(f"{key} ({size:,} bytes)" for size, key in sizes[:3])
    return (
        f"{len(tasks)} task(s) are larger than the 1 MB the Batch service accepts per request, e.g. "
        f"{first.get('id')!r} with {task_body_size(first):,} bytes; its biggest fields: {biggest}. "
        "Such a task can never be added: move large data into resource files (upload it with "
        "BlobUploadFilesOperator and pass it as common_resource_files or the task's resourceFiles) instead "
        "of the command line or environment."
    )


_WILDCARDS = frozenset("*?[")


def _upload_source_and_target(output: Mapping[str, Any]) -> tuple[str, tuple[str, str]] | None:
    """Where one ``outputFiles`` entry reads (its fixed path) and writes (container, blob name or pattern).

    As on Batch nodes: a pattern without wildcards uploads one file to ``path`` (else to its own name);
    a wildcard pattern uploads each file under ``path`` by its path below the pattern's fixed folders.
    """
    pattern = str(output.get("filePattern") or "")
    container = (output.get("destination") or {}).get("container") or {}
    url = str(container.get("containerUrl") or "").split("?", 1)[0].rstrip("/")
    path = str(container.get("path") or "").strip("/")
    segments = [segment for segment in pattern.split("/") if segment not in ("", ".")]
    if not segments:
        return None
    if not any(char in _WILDCARDS for char in pattern):
        return "/".join(segments), (url, path or segments[-1])
    fixed: list[str] = []
    while not any(char in _WILDCARDS for char in segments[0]):
        fixed.append(segments.pop(0))
    return "/".join(fixed), (url, "/".join([path, *segments] if path else segments))


def validate_output_destinations(task: Mapping[str, Any]) -> None:
    """Raise when two output file patterns of a task upload different files to the same blob name.

    One would silently overwrite the other: ``a/result.json`` and ``b/result.json`` both land as
    ``<path>/result.json``, and so would ``a/*.json`` and ``b/*.json`` for files of the same name.
    """
    outputs = task.get("outputFiles")
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for output in outputs if isinstance(outputs, list | tuple) else []:
        where = _upload_source_and_target(output) if isinstance(output, Mapping) else None
        if where is None:
            continue
        source, target = where
        pattern = str(output.get("filePattern"))
        other_source, other = seen.setdefault(target, (source, pattern))
        if other_source == source:
            continue  # the same files to the same place
        container, blob = target
        raise InvalidInputError(
            f"Task {task.get('id')!r}: the output file patterns {other!r} and {pattern!r} both upload to "
            f"the blob {blob!r} of {container}, so one would overwrite the other. Keep the folders in the "
            f"blob names with one wildcard pattern (e.g. '*/{blob.rsplit('/', 1)[-1]}'), or give the "
            "files different names."
        )


def validate_task_collection(
    tasks: Iterable[Mapping[str, Any]],
    *,
    task_slots_per_node: int | None = None,
    pool_id: str | None = None,
) -> None:
    """Check task bodies (REST JSON shape) before anything is sent.

    Every task needs a valid, unique id and a non-empty command line, no two of its output file
    patterns may upload to the same blob, and no task may require more slots than a node of the pool
    offers (such a task would never be scheduled).
    """
    task_list = list(tasks)
    if not task_list:
        raise InvalidInputError(
            "There are no tasks to add. Check the task list or the factory's input (blob prefix, "
            "parameter lists, upstream XCom)."
        )
    ids: list[str] = []
    empty: list[str] = []
    too_big: list[str] = []
    for index, task in enumerate(task_list):
        task_id = validate_batch_id(task.get("id"), kind=f"task (#{index})")
        ids.append(task_id)
        command = task.get("commandLine")
        if not isinstance(command, str) or not command.strip():
            empty.append(task_id)
        slots = task.get("requiredSlots")
        if slots is not None:
            if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
                raise InvalidInputError(
                    f"Task {task_id!r}: requiredSlots must be an integer of at least 1, got {slots!r}."
                )
            if task_slots_per_node is not None and slots > task_slots_per_node:
                too_big.append(f"{task_id} ({slots})")
    validate_unique_batch_ids(ids)
    for task in task_list:
        validate_output_destinations(task)
    oversized = [task for task in task_list if task_body_size(task) > MAX_TASK_BODY_BYTES]
    if oversized:
        raise InvalidInputError(_oversized_message(oversized))
    if empty:
        shown = ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else "")
        raise InvalidInputError(
            f"{len(empty)} task(s) have an empty command line: {shown}. Every Batch task needs a "
            "command, e.g. /bin/bash -c 'python run.py'."
        )
    if too_big:
        shown = ", ".join(too_big[:10]) + (" ..." if len(too_big) > 10 else "")
        where = f"pool {pool_id!r}" if pool_id else "the pool"
        raise InvalidInputError(
            f"{len(too_big)} task(s) require more slots than a node of {where} has "
            f"(taskSlotsPerNode={task_slots_per_node}): {shown}. Such tasks would never be scheduled; "
            "lower requiredSlots or use a pool with more task slots per node."
        )


def sas_expiry_of(url: str) -> datetime | None:
    """The expiry (``se``) of a SAS URL, or ``None`` when the URL carries no SAS."""
    values = parse_qs(urlsplit(url).query).get("se")
    if not values:
        return None
    raw = values[0].strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def validate_sas_lifetime(urls: Iterable[str], *, needed_until: datetime, reason: str) -> None:
    """Raise when a SAS URL expires before ``needed_until`` (tasks would fail to download or upload)."""
    for url in urls:
        expiry = sas_expiry_of(url)
        if expiry is None or expiry >= needed_until:
            continue
        base = url.split("?", 1)[0]
        short = timedelta(seconds=round((needed_until - expiry).total_seconds()))
        raise InvalidInputError(
            f"The SAS of {base} expires at {expiry:%Y-%m-%dT%H:%M:%SZ}, {short} before the tasks may "
            f"still need it ({reason}: until {needed_until:%Y-%m-%dT%H:%M:%SZ}). Mint a SAS that lasts "
            "longer, set a shorter job max_wall_clock_time, or use a managed identity "
            "(identity_reference) instead of SAS."
        )
