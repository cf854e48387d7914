"""Without a container engine, container pools and tasks fail with an error naming what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import (
    UBUNTU,
    pool_options,
    sh,
    unique,
    wait_for,
    wait_for_idle_nodes,
    wait_for_task,
)

ENGINE = "no-such-container-engine"


@pytest.fixture(scope="module")
def engineless() -> Iterator[BatchClient]:
    with BatchEmulatorServer(step_delay=0.005, container_engine=ENGINE) as server:
        yield BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key))


def _container_vm(*images: str) -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=UBUNTU.image_reference,
        node_agent_sku_id=UBUNTU.node_agent_sku_id,
        container_configuration=m.BatchContainerConfiguration(
            type="dockerCompatible", container_image_names=list(images)
        ),
    )


def test_a_container_task_fails_naming_the_missing_engine_and_never_runs_on_the_host(
    engineless: BatchClient, tmp_path: Path
) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    engineless.create_pool(pool_options(pool_id, virtual_machine_configuration=_container_vm()))
    wait_for_idle_nodes(engineless, pool_id, 1)
    engineless.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    marker = tmp_path / "ran-on-the-host"
    engineless.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="boxed",
            command_line=sh(f"touch {marker}"),
            container_settings=m.BatchTaskContainerSettings(image_name="debian:bookworm"),
        ),
    )
    info = wait_for_task(engineless, job_id, "boxed").execution_info
    assert info is not None and info.result == "failure"
    assert info.failure_info is not None and info.failure_info.code == "ContainerMiscError"
    assert "No container engine" in (info.failure_info.message or "")
    assert "--container-engine" in (info.failure_info.message or "")
    assert not marker.exists()


def test_a_container_pool_that_prefetches_images_has_unusable_nodes_naming_the_missing_engine(
    engineless: BatchClient,
) -> None:
    pool_id = unique("prefetch")
    engineless.create_pool(
        pool_options(pool_id, virtual_machine_configuration=_container_vm("debian:bookworm"))
    )
    node = wait_for(lambda: next((n for n in engineless.list_nodes(pool_id) if n.state == "unusable"), None))
    assert node.errors and node.errors[0].code == "ContainerEngineNotFound"
    assert "podman or docker" in (node.errors[0].message or "")


def test_a_container_configuration_needs_a_known_type(engineless: BatchClient) -> None:
    configuration = _container_vm()
    assert configuration.container_configuration is not None
    configuration.container_configuration.type = "rkt"
    with pytest.raises(HttpResponseError) as excinfo:
        engineless.create_pool(pool_options(unique("bad"), virtual_machine_configuration=configuration))
    assert excinfo.value.status_code == 400


def test_registry_passwords_are_write_only_on_pools_and_start_tasks(engineless: BatchClient) -> None:
    registry = m.ContainerRegistryReference(registry_server="r.example", username="me", password="s3cret")
    configuration = _container_vm()
    assert configuration.container_configuration is not None
    configuration.container_configuration.container_registries = [registry]
    start = m.BatchStartTask(
        command_line="true",
        container_settings=m.BatchTaskContainerSettings(image_name="r.example/tool:1", registry=registry),
    )
    pool_id = unique("secret")
    engineless.create_pool(
        pool_options(
            pool_id, target_dedicated_nodes=0, virtual_machine_configuration=configuration, start_task=start
        )
    )
    document = engineless.get_pool(pool_id).as_dict()
    assert "s3cret" not in str(document)
    read_back = document["virtualMachineConfiguration"]["containerConfiguration"]["containerRegistries"][0]
    assert read_back["username"] == "me"
