"""What every Batch resource shares: identity, ETag, timestamps, conditional requests and validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow_batch_provider.emulator.compute.runner.containers import BIND_MOUNT_SOURCES
from airflow_batch_provider.emulator.compute.runner.process import (
    MAX_COMMAND_LINE_BYTES,
    command_line_too_long,
)
from airflow_batch_provider.emulator.errors import (
    BatchError,
    condition_not_met,
    invalid_property,
    missing_property,
)
from airflow_batch_provider.emulator.serialization import (
    checked_duration,
    format_datetime,
    new_etag,
    parse_http_date,
    utcnow,
)

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Resource:
    """A resource with an id, an ETag and creation/last-modified times, all maintained by the service."""

    def __init__(self, resource_id: str) -> None:
        self.id = resource_id
        self.creation_time = utcnow()
        self.last_modified = self.creation_time
        self.etag = new_etag()
        self.state = ""
        self.state_transition_time = self.creation_time
        self.previous_state: str | None = None
        self.previous_state_transition_time: datetime | None = None

    def touch(self) -> None:
        """Record a change the client made: a new ETag and Last-Modified."""
        self.etag = new_etag()
        self.last_modified = utcnow()

    def set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.previous_state = self.state or None
        self.previous_state_transition_time = self.state_transition_time if self.state else None
        self.state = state
        self.state_transition_time = utcnow()
        self.touch()

    def common_properties(self, url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": url,
            "eTag": self.etag,
            "lastModified": format_datetime(self.last_modified),
            "creationTime": format_datetime(self.creation_time),
        }

    def check_preconditions(self, headers: Mapping[str, str], *, read: bool = False) -> None:
        """Apply If-Match / If-None-Match / If-(Un)Modified-Since; 412 ``ConditionNotMet`` (304 on reads)."""
        check_preconditions(self.etag, self.last_modified, headers, read=read)


def check_preconditions(
    etag: str, last_modified: datetime, headers: Mapping[str, str], *, read: bool = False
) -> None:
    if_match = headers.get("if-match")
    if if_match and if_match.strip() != "*" and etag not in _etag_list(if_match):
        raise condition_not_met()
    if_none_match = headers.get("if-none-match")
    if if_none_match and (if_none_match.strip() == "*" or etag in _etag_list(if_none_match)):
        raise _not_modified() if read else condition_not_met()
    modified_since = _header_date(headers.get("if-modified-since"))
    if modified_since is not None and last_modified.replace(microsecond=0) <= modified_since:
        raise _not_modified() if read else condition_not_met()
    unmodified_since = _header_date(headers.get("if-unmodified-since"))
    if unmodified_since is not None and last_modified.replace(microsecond=0) > unmodified_since:
        raise condition_not_met()


def _not_modified() -> BatchError:
    return BatchError(304, "NotModified", "The resource has not been modified since the given time or ETag.")


def _etag_list(value: str) -> list[str]:
    """ETags of a conditional header, quoted or not (the SDK quotes them, the service sends them bare)."""
    items = (item.strip() for item in value.split(","))
    return [item.removeprefix("W/").strip('"') for item in items]


def _header_date(value: str | None) -> datetime | None:
    return parse_http_date(value) if value else None


# Reading request bodies. Every body was validated against the service's schema before a model sees
# it (``emulator/request_bodies.py``): types, required properties and enum values are right, lenient
# inputs are coerced. What stays here are defaults and the service's rules a schema cannot express
# (id syntax, ranges, minimum durations). ``path`` names the property the way the service reports it
# (``startTask/commandLine``).


def validate_id(value: Any, path: str = "id") -> str:
    if value is None or value == "":
        raise missing_property(path)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise invalid_property(
            path,
            value,
            "The id can contain any combination of alphanumeric characters including hyphens and "
            "underscores, and cannot contain more than 64 characters.",
        )
    return value


def require(body: Mapping[str, Any], name: str, path: str | None = None) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise missing_property(path or name)
    return value


def get_str(
    body: Mapping[str, Any], name: str, path: str | None = None, default: str | None = None
) -> str | None:
    value = body.get(name)
    return default if value is None else str(value)


def get_int(
    body: Mapping[str, Any],
    name: str,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
    path: str | None = None,
) -> int:
    value = body.get(name)
    if value is None:
        return default
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise invalid_property(path or name, value, f"The value must be between {minimum} and {maximum}.")
    return int(value)


def get_bool(body: Mapping[str, Any], name: str, default: bool, path: str | None = None) -> bool:
    value = body.get(name)
    return default if value is None else bool(value)


def get_enum(
    body: Mapping[str, Any], name: str, allowed: Iterable[str], default: str | None, path: str | None = None
) -> str | None:
    """The value in lower case; 400 when it is one the emulator does not offer (of the spec's values)."""
    value = body.get(name)
    if value is None:
        return default
    allowed = list(allowed)
    if str(value).lower() not in allowed:
        raise invalid_property(path or name, value, f"The value must be one of: {', '.join(allowed)}.")
    return str(value).lower()


def get_duration(
    body: Mapping[str, Any],
    name: str,
    default: timedelta | None,
    minimum: timedelta | None = None,
    path: str | None = None,
) -> timedelta | None:
    value = body.get(name)
    if value is None:
        return default
    try:
        duration = checked_duration(str(value))
    except ValueError as err:
        reason = f"The value must be an ISO 8601 duration: {err}."
        raise invalid_property(path or name, value, reason) from err
    if duration < timedelta(0) or (minimum is not None and duration < minimum):
        raise invalid_property(path or name, value, f"The duration must be at least {minimum or 'zero'}.")
    return duration


def get_object(body: Mapping[str, Any], name: str, path: str | None = None) -> dict[str, Any] | None:
    value: dict[str, Any] | None = body.get(name)
    return value


def get_list(body: Mapping[str, Any], name: str, path: str | None = None) -> list[Any] | None:
    value: list[Any] | None = body.get(name)
    return value


def validate_container_settings(body: Mapping[str, Any], path: str = "") -> None:
    """Check ``containerSettings`` as the service does (an image name is required)."""
    settings = get_object(body, "containerSettings", f"{path}containerSettings")
    if settings is None:
        return
    require(settings, "imageName", f"{path}containerSettings/imageName")
    if get_object(settings, "registry", f"{path}containerSettings/registry") is not None:
        get_str(settings["registry"], "registryServer", f"{path}containerSettings/registry/registryServer")
    get_enum(
        settings,
        "workingDirectory",
        ("taskworkingdirectory", "containerimagedefault"),
        "taskWorkingDirectory",
        f"{path}containerSettings/workingDirectory",
    )
    mounts_path = f"{path}containerSettings/containerHostBatchBindMounts"
    for index, mount in enumerate(get_list(settings, "containerHostBatchBindMounts", mounts_path) or []):
        if not isinstance(mount, dict):
            raise invalid_property(f"{mounts_path}[{index}]", mount, "The value must be a JSON object.")
        get_enum(mount, "source", BIND_MOUNT_SOURCES, None, f"{mounts_path}[{index}]/source")


def validate_container_configuration(configuration: Mapping[str, Any], path: str) -> None:
    """Check a pool's ``containerConfiguration`` as the service does (a known type is required)."""
    require(configuration, "type", f"{path}/type")
    get_enum(configuration, "type", ("dockercompatible", "cricompatible"), None, f"{path}/type")
    for index, name in enumerate(
        get_list(configuration, "containerImageNames", f"{path}/containerImageNames") or []
    ):
        if not isinstance(name, str) or not name:
            raise invalid_property(
                f"{path}/containerImageNames[{index}]", name, "The value must be an image name."
            )
    for index, registry in enumerate(
        get_list(configuration, "containerRegistries", f"{path}/containerRegistries") or []
    ):
        if not isinstance(registry, dict):
            raise invalid_property(
                f"{path}/containerRegistries[{index}]", registry, "The value must be a JSON object."
            )


def validate_command_task(body: Mapping[str, Any], path: str = "") -> None:
    """Checks shared by tasks, start tasks and job preparation/release tasks (any may run in a container)."""
    require(body, "commandLine", f"{path}commandLine")
    if command_line_too_long(body["commandLine"]):
        # Only a body over the service's 1 MB limit can carry such a command line: refuse it the same way.
        raise BatchError(
            413,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
            {"MaxLimit": str(MAX_COMMAND_LINE_BYTES)},
        )
    validate_container_settings(body, path)
    for index, resource_file in enumerate(body.get("resourceFiles") or []):
        sources = [
            key
            for key in ("autoStorageContainerName", "storageContainerUrl", "httpUrl")
            if resource_file.get(key)
        ]
        if len(sources) != 1:
            raise invalid_property(
                f"{path}resourceFiles[{index}]",
                None,
                "Exactly one of autoStorageContainerName, storageContainerUrl and httpUrl must be specified.",
            )


def environment_dict(*settings_lists: list[dict[str, Any]] | None) -> dict[str, str]:
    """Merge ``environmentSettings`` lists (later ones win) into a plain mapping."""
    merged: dict[str, str] = {}
    for settings in settings_lists:
        for setting in settings or []:
            merged[str(setting["name"])] = "" if setting.get("value") is None else str(setting["value"])
    return merged
