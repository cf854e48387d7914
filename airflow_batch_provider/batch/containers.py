"""Container pools and container tasks: the request shapes, checked before anything is created.

A pool's ``container_configuration`` and a task's ``container_settings`` take the REST names or the
Python ones. A registry's credentials come from an Airflow connection (``conn_id``: its login and
password, read by a :data:`CredentialsLookup` that masks it) or from a managed identity
(``identity_reference``); a password written into a DAG is refused, so none reaches a rendered field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_batch_provider.batch.rest import to_rest
from airflow_batch_provider.exceptions import InvalidInputError

CONTAINER_TYPES = ("dockerCompatible", "criCompatible")
WORKING_DIRECTORIES = ("taskWorkingDirectory", "containerImageDefault")
BIND_MOUNT_SOURCES = ("Shared", "Startup", "VfsMounts", "Task", "JobPrep", "Applications")
#: The capability the supported-images list gives images that run containers.
CONTAINER_CAPABILITY = "DockerCompatible"

#: Reads a connection's ``(login, password)`` by id (the provider's masks the password it returns).
CredentialsLookup = Callable[[str], tuple[str | None, str | None]]


def _choice(value: Any, allowed: Sequence[str], name: str) -> str:
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}.")


def registry_reference(
    registry: Mapping[str, Any], credentials: CredentialsLookup | None, name: str
) -> dict[str, Any]:
    """A ``ContainerRegistryReference`` with the password read from the registry's connection."""
    entry = to_rest(dict(registry))
    if entry.get("password"):
        raise InvalidInputError(
            f"{name} has a password written into the DAG: put the registry's user and password in an "
            "Airflow connection and pass its id as conn_id (or use identity_reference)."
        )
    conn_id = entry.pop("connId", None) or entry.pop("conn_id", None)
    if conn_id and entry.get("identityReference"):
        raise InvalidInputError(f"{name}: give conn_id or identity_reference, not both.")
    if conn_id:
        if credentials is None:
            raise InvalidInputError(f"{name}: conn_id {conn_id!r} cannot be read here.")
        login, password = credentials(str(conn_id))
        if not login or not password:
            raise InvalidInputError(
                f"{name}: the connection {conn_id!r} needs a login (the registry user) and a password."
            )
        entry["username"], entry["password"] = login, password
    elif not entry.get("identityReference") and entry.get("username"):
        raise InvalidInputError(
            f"{name} names a user but no password: pass conn_id (a connection with both) instead."
        )
    return entry


def container_configuration(
    configuration: Mapping[str, Any], credentials: CredentialsLookup | None = None
) -> dict[str, Any]:
    """A pool's ``containerConfiguration``: its type, images to prefetch and registries."""
    body = to_rest(dict(configuration))
    result: dict[str, Any] = {"type": _choice(body.get("type", "dockerCompatible"), CONTAINER_TYPES, "type")}
    images = body.get("containerImageNames") or []
    if isinstance(images, str) or not all(isinstance(image, str) and image for image in images):
        raise InvalidInputError(f"container_image_names must be a list of image names, got {images!r}.")
    if images:
        result["containerImageNames"] = list(images)
    registries = body.get("containerRegistries") or []
    if registries:
        result["containerRegistries"] = [
            registry_reference(registry, credentials, f"container_registries[{index}]")
            for index, registry in enumerate(registries)
        ]
    return result


def container_settings(
    settings: Mapping[str, Any],
    credentials: CredentialsLookup | None = None,
    name: str = "container_settings",
) -> dict[str, Any]:
    """A task's ``containerSettings``: image, run options, working directory, registry, bind mounts."""
    body = to_rest(dict(settings))
    if not body.get("imageName"):
        raise InvalidInputError(f"{name} needs image_name (the image the task runs in).")
    if body.get("workingDirectory") is not None:
        body["workingDirectory"] = _choice(
            body["workingDirectory"], WORKING_DIRECTORIES, f"{name}.working_directory"
        )
    for index, mount in enumerate(body.get("containerHostBatchBindMounts") or []):
        mount["source"] = _choice(
            mount.get("source"), BIND_MOUNT_SOURCES, f"{name}.container_host_batch_bind_mounts[{index}]"
        )
    if body.get("registry"):
        body["registry"] = registry_reference(body["registry"], credentials, f"{name}.registry")
    return body


def check_container_tasks(tasks: Sequence[Mapping[str, Any]], pool: Mapping[str, Any] | None) -> None:
    """Refuse container tasks for a pool that cannot run them, naming the task and the pool."""
    if pool is None:
        return
    configuration = (pool.get("virtualMachineConfiguration") or {}).get("containerConfiguration")
    if configuration:
        return
    for task in tasks:
        if task.get("containerSettings"):
            raise InvalidInputError(
                f"Task {task.get('id')!r} runs in a container (containerSettings) but pool "
                f"{pool.get('id')!r} has no container configuration: create the pool with "
                "container_configuration, or drop the task's container_settings."
            )


def container_capable_image(
    reference: dict[str, Any], agent: str, supported_images: Sequence[Mapping[str, Any]] | None
) -> tuple[dict[str, Any], str]:
    """The image to use for a container pool: ``reference`` if the account lists it as able to run
    containers (or lists nothing), else a listed container-capable image with the same node agent."""
    entries = [to_rest(dict(entry)) for entry in supported_images or []]
    if not entries:
        return reference, agent

    def capable(entry: Mapping[str, Any]) -> bool:
        return CONTAINER_CAPABILITY.lower() in [str(c).lower() for c in entry.get("capabilities") or []]

    def same(entry: Mapping[str, Any]) -> bool:
        listed = entry.get("imageReference") or {}
        return all(
            str(listed.get(k, "")).lower() == str(reference.get(k, "")).lower()
            for k in ("publisher", "offer", "sku")
        )

    if any(same(entry) and capable(entry) for entry in entries):
        return reference, agent
    for entry in entries:
        if capable(entry) and _agent(entry).lower() == agent.lower():
            found = dict(entry.get("imageReference") or {})
            found.setdefault("version", "latest")
            return found, _agent(entry)
    raise InvalidInputError(
        f"The image {reference.get('offer')}/{reference.get('sku')} cannot run containers and the account "
        f"lists no container-capable image for node agent {agent!r}: pick an image whose capabilities "
        "include DockerCompatible."
    )


def _agent(entry: Mapping[str, Any]) -> str:
    return str(entry.get("nodeAgentSKUId") or entry.get("nodeAgentSkuId") or "")
