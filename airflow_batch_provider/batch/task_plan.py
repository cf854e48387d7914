"""Task bodies: tasks in the REST shape, their output files, and the SAS URLs they carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_batch_provider.batch.rest import environment_list, to_rest
from airflow_batch_provider.exceptions import InvalidInputError

_UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")


def container_destination(
    container_url: str, path: str | None = None, identity_reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``OutputFileDestination`` for a blob container (SAS URL, or plain URL with an identity)."""
    container: dict[str, Any] = {"containerUrl": container_url}
    if path:
        container["path"] = path
    if identity_reference:
        container["identityReference"] = to_rest(dict(identity_reference))
    return {"container": container}


def output_file(
    file_pattern: str,
    container_url: str,
    path: str | None = None,
    upload_condition: str = "tasksuccess",
    identity_reference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``outputFiles`` entry."""
    condition = upload_condition.lower()
    if condition not in _UPLOAD_CONDITIONS:
        raise InvalidInputError(
            f"upload_condition must be one of {', '.join(_UPLOAD_CONDITIONS)}, got {upload_condition!r}."
        )
    return {
        "filePattern": file_pattern,
        "destination": container_destination(container_url, path, identity_reference),
        "uploadOptions": {"uploadCondition": condition},
    }


def std_log_output_files(
    container_url: str, path: str, identity_reference: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Upload the task's stdout.txt and stderr.txt on completion (success or failure).

    The pattern is relative to the task's working directory, whose parent holds the two logs.
    """
    return [output_file("../std*.txt", container_url, path.rstrip("/"), "taskcompletion", identity_reference)]


def normalize_task(task: Any) -> dict[str, Any]:
    """One task in the REST shape (``commandLine``, ``resourceFiles``...)."""
    if isinstance(task, str):
        raise InvalidInputError(
            f"A task must be a dict or a BatchTaskCreateOptions, not a string ({task[:60]!r}); "
            "use {'id': ..., 'command_line': ...}."
        )
    rest = to_rest(task)
    if not isinstance(rest, dict):
        raise InvalidInputError(
            f"A task must be a dict or a BatchTaskCreateOptions, got {type(task).__name__}."
        )
    if "environmentSettings" in rest and isinstance(rest["environmentSettings"], Mapping):
        rest["environmentSettings"] = environment_list(rest["environmentSettings"])
    return rest


def sas_urls_in_task(task: Mapping[str, Any]) -> list[str]:
    """Every URL in a task's resource and output files that carries a SAS signature."""
    urls: list[str] = []
    for resource in task.get("resourceFiles") or []:
        for key in ("httpUrl", "storageContainerUrl"):
            url = resource.get(key)
            if isinstance(url, str) and "sig=" in url:
                urls.append(url)
    for output in task.get("outputFiles") or []:
        url = ((output.get("destination") or {}).get("container") or {}).get("containerUrl")
        if isinstance(url, str) and "sig=" in url:
            urls.append(url)
    return urls


def strip_sas(url: str) -> str:
    """A URL without its query string (so no SAS reaches logs or XCom)."""
    return url.split("?", 1)[0]
