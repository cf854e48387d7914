"""Container pool and task settings: shapes, connection credentials, and the pool check."""

from __future__ import annotations

import json

import pytest

from airflow_batch_provider.batch.containers import (
    check_container_tasks,
    container_capable_image,
    container_configuration,
    container_settings,
)
from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.utils.secrets import connection_credentials

SECRET = "registry-s3cret"


def _credentials(conn_id: str) -> tuple[str | None, str | None]:
    return {"acr": ("robot", SECRET), "empty": ("robot", None)}[conn_id]


def test_a_pool_configuration_reads_registry_credentials_from_a_connection() -> None:
    body = container_configuration(
        {
            "type": "dockercompatible",
            "container_image_names": ["myacr.azurecr.io/tools:1"],
            "container_registries": [{"registry_server": "myacr.azurecr.io", "conn_id": "acr"}],
        },
        _credentials,
    )
    assert body == {
        "type": "dockerCompatible",
        "containerImageNames": ["myacr.azurecr.io/tools:1"],
        "containerRegistries": [
            {"registryServer": "myacr.azurecr.io", "username": "robot", "password": SECRET}
        ],
    }


def test_registry_credentials_are_masked_as_they_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[str | None] = []
    monkeypatch.setattr("airflow_batch_provider.utils.secrets.mask", masked.append)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ACR_PULL", json.dumps({"conn_type": "generic", "login": "robot", "password": SECRET})
    )
    assert connection_credentials("acr_pull") == ("robot", SECRET)
    assert masked == [SECRET]


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ({"registry_server": "r.io", "password": SECRET}, "password written into the DAG"),
        ({"registry_server": "r.io", "username": "me"}, "no password"),
        ({"registry_server": "r.io", "conn_id": "empty"}, "needs a login"),
        (
            {"registry_server": "r.io", "conn_id": "acr", "identity_reference": {"resource_id": "x"}},
            "not both",
        ),
    ],
)
def test_registry_credentials_must_come_from_a_connection(registry: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as excinfo:
        container_configuration(
            {"type": "dockerCompatible", "container_registries": [registry]}, _credentials
        )
    assert SECRET not in str(excinfo.value)


def test_a_pool_configuration_needs_a_known_type() -> None:
    with pytest.raises(InvalidInputError, match="type must be one of dockerCompatible, criCompatible"):
        container_configuration({"type": "rkt"})


def test_task_settings_are_checked_and_take_python_names() -> None:
    body = container_settings(
        {
            "image_name": "python:3.12-slim",
            "working_directory": "containerimagedefault",
            "container_run_options": "--rm",
            "container_host_batch_bind_mounts": [{"source": "task", "is_read_only": True}],
        }
    )
    assert body == {
        "imageName": "python:3.12-slim",
        "workingDirectory": "containerImageDefault",
        "containerRunOptions": "--rm",
        "containerHostBatchBindMounts": [{"source": "Task", "isReadOnly": True}],
    }
    with pytest.raises(InvalidInputError, match="needs image_name"):
        container_settings({"working_directory": "taskWorkingDirectory"})
    with pytest.raises(InvalidInputError, match="working_directory must be one of"):
        container_settings({"image_name": "x", "working_directory": "home"})


def test_a_container_task_is_refused_for_a_pool_without_container_configuration() -> None:
    tasks = [{"id": "plain", "commandLine": "echo"}, {"id": "boxed", "containerSettings": {"imageName": "x"}}]
    plain_pool = {"id": "cpu", "virtualMachineConfiguration": {"nodeAgentSKUId": "batch.node.ubuntu 22.04"}}
    with pytest.raises(
        InvalidInputError, match=r"Task 'boxed' runs in a container .* pool 'cpu' has no container"
    ):
        check_container_tasks(tasks, plain_pool)
    container_pool = {"id": "boxes", "virtualMachineConfiguration": {"containerConfiguration": {"type": "x"}}}
    check_container_tasks(tasks, container_pool)


def test_an_image_alias_resolves_to_a_container_capable_image() -> None:
    supported = [
        {
            "imageReference": {
                "publisher": "canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts",
            },
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            "capabilities": [],
        },
        {
            "imageReference": {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2204"},
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            "capabilities": ["DockerCompatible"],
        },
    ]
    plain = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}
    reference, agent = container_capable_image(plain, "batch.node.ubuntu 22.04", supported)
    assert (reference["offer"], agent) == ("ubuntu-hpc", "batch.node.ubuntu 22.04")
    with pytest.raises(InvalidInputError, match="no container-capable image for node agent"):
        container_capable_image(plain, "batch.node.el 9", supported)
