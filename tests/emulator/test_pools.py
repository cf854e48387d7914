"""Pools through the SDK: defaults, validation, updates, deletion, resizing, quota and autoscale."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.aio import BatchClient as AsyncBatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import (
    POLL,
    UBUNTU,
    error_of,
    pool_options,
    unique,
    wait_for,
    wait_for_idle_nodes,
)


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[BatchEmulatorServer]:
    """Transitions take 0.3 s here, long enough to observe ``resizing`` and ``deleting``."""
    with BatchEmulatorServer(step_delay=0.3, dedicated_core_quota=4) as server:
        yield server


@pytest.fixture(scope="module")
def slow_client(slow_emulator: BatchEmulatorServer) -> BatchClient:
    credential = AzureNamedKeyCredential(slow_emulator.account_name, slow_emulator.account_key)
    return BatchClient(slow_emulator.endpoint, credential)


def test_create_fills_in_the_service_defaults(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    pool = client.get_pool(pool_id)
    assert pool.state == "active"
    assert pool.task_slots_per_node == 1
    assert pool.task_scheduling_policy.node_fill_type == "Spread"
    assert pool.resize_timeout.total_seconds() == 15 * 60
    assert pool.enable_auto_scale is False
    assert pool.creation_time is not None and pool.etag.startswith("0x")
    assert pool.vm_size == "standard_d2s_v3"
    assert pool.url.endswith(f"/pools/{pool_id}")
    nodes = wait_for_idle_nodes(client, pool_id, 2)
    steady = wait_for(lambda: p if (p := client.get_pool(pool_id)).allocation_state == "steady" else None)
    assert steady.current_dedicated_nodes == 2 and steady.target_dedicated_nodes == 2
    assert all(node.vm_size == "standard_d2s_v3" and node.is_dedicated for node in nodes)


def test_duplicate_ids_conflict_case_insensitively(client: BatchClient) -> None:
    pool_id = unique("dup")
    client.create_pool(pool_options(pool_id))
    with pytest.raises(ResourceExistsError) as excinfo:
        client.create_pool(pool_options(pool_id.upper()))
    assert error_of(excinfo) == (409, "PoolExists")


@pytest.mark.parametrize(
    ("overrides", "code", "property_name"),
    [
        ({"id": "has space"}, "InvalidPropertyValue", "id"),
        ({"id": "x" * 65}, "InvalidPropertyValue", "id"),
        ({"vm_size": None}, "MissingRequiredProperty", "vmSize"),
        ({"vm_size": "standard_imaginary_v9"}, "InvalidPropertyValue", "vmSize"),
        ({"virtual_machine_configuration": None}, "MissingRequiredProperty", "virtualMachineConfiguration"),
        (
            {
                "virtual_machine_configuration": m.VirtualMachineConfiguration(
                    image_reference=UBUNTU.image_reference, node_agent_sku_id="batch.node.centos 7"
                )
            },
            "InvalidPropertyValue",
            "virtualMachineConfiguration/nodeAgentSKUId",
        ),
        ({"task_slots_per_node": 0}, "InvalidPropertyValue", "taskSlotsPerNode"),
        ({"resize_timeout": "PT1M"}, "InvalidPropertyValue", "resizeTimeout"),
        (
            {"start_task": m.BatchStartTask(command_line="")},
            "MissingRequiredProperty",
            "startTask/commandLine",
        ),
    ],
)
def test_invalid_pools_are_rejected(
    client: BatchClient, overrides: dict[str, object], code: str, property_name: str
) -> None:
    values = {"id": unique("bad"), **overrides}
    pool_id = str(values.pop("id"))
    options = pool_options(pool_id, **values)
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_pool(options)
    assert error_of(excinfo) == (400, code)
    assert excinfo.value.error is not None
    details = {detail.code: detail.message for detail in excinfo.value.error.details}
    assert details["PropertyName"] == property_name
    if " " not in pool_id and len(pool_id) <= 64:
        with pytest.raises(ResourceNotFoundError):
            client.get_pool(pool_id)


def test_missing_pool_is_pool_not_found(client: BatchClient) -> None:
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_pool("no-such-pool")
    assert error_of(excinfo) == (404, "PoolNotFound")
    assert "The specified pool does not exist." in str(excinfo.value)


def test_pool_exists(client: BatchClient, shared_pool: str) -> None:
    assert client.pool_exists(shared_pool) is True
    # azure-batch 15.1.0 raises instead of returning False (its exception policy sees the 404 first).
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists("no-such-pool")


def test_patch_changes_only_what_is_sent(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(
        pool_options(pool_id, metadata=[m.BatchMetadataItem(name="team", value="a")], display_name="before")
    )
    before = client.get_pool(pool_id)
    client.update_pool(pool_id, m.BatchPoolUpdateOptions(start_task=m.BatchStartTask(command_line="echo hi")))
    after = client.get_pool(pool_id)
    assert after.start_task.command_line == "echo hi"
    assert after.start_task.wait_for_success is True
    assert after.metadata[0].value == "a" and after.display_name == "before"
    assert after.etag != before.etag and after.last_modified >= before.last_modified


def test_update_properties_replaces_everything_it_owns(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(
        pool_options(
            pool_id,
            start_task=m.BatchStartTask(command_line="echo start"),
            metadata=[m.BatchMetadataItem(name="team", value="a")],
        )
    )
    client.replace_pool_properties(
        pool_id,
        m.BatchPoolReplaceOptions(
            application_package_references=[], metadata=[m.BatchMetadataItem(name="x", value="1")]
        ),
    )
    pool = client.get_pool(pool_id)
    assert pool.start_task is None
    assert [(item.name, item.value) for item in pool.metadata] == [("x", "1")]


def test_delete_goes_through_deleting(slow_client: BatchClient) -> None:
    pool_id = unique("pool")
    slow_client.create_pool(pool_options(pool_id))
    poller = slow_client.begin_delete_pool(pool_id, polling_interval=POLL)
    assert slow_client.get_pool(pool_id).state == "deleting"
    with pytest.raises(HttpResponseError) as excinfo:
        slow_client.update_pool(pool_id, m.BatchPoolUpdateOptions(display_name="late"))
    assert error_of(excinfo) == (409, "PoolBeingDeleted")
    poller.result()
    with pytest.raises(ResourceNotFoundError):
        slow_client.get_pool(pool_id)


def test_resize_grows_and_shrinks(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=1))
    wait_for_idle_nodes(client, pool_id, 1)
    client.begin_resize_pool(
        pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=POLL
    ).result()
    pool = client.get_pool(pool_id)
    assert (pool.allocation_state, pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (
        "steady",
        3,
        3,
    )
    client.begin_resize_pool(
        pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=POLL
    ).result()
    assert client.get_pool(pool_id).current_dedicated_nodes == 1
    assert len(list(client.list_nodes(pool_id))) == 1


def test_resize_while_resizing_conflicts_and_stop_resize_settles(slow_client: BatchClient) -> None:
    pool_id = unique("pool")
    slow_client.create_pool(pool_options(pool_id, target_dedicated_nodes=1))
    assert slow_client.get_pool(pool_id).allocation_state == "resizing"
    with pytest.raises(HttpResponseError) as excinfo:
        slow_client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=2))
    assert error_of(excinfo) == (409, "PoolBeingResized")
    slow_client.begin_stop_pool_resize(pool_id, polling_interval=POLL).result()
    pool = slow_client.get_pool(pool_id)
    assert pool.allocation_state == "steady"
    assert pool.target_dedicated_nodes == pool.current_dedicated_nodes


def test_remove_nodes(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    nodes = wait_for_idle_nodes(client, pool_id, 2)
    wait_for(lambda: client.get_pool(pool_id).allocation_state == "steady")
    client.begin_remove_nodes(
        pool_id, m.BatchNodeRemoveOptions(node_ids=[nodes[0].id]), polling_interval=POLL
    ).result()
    remaining = [node.id for node in client.list_nodes(pool_id)]
    assert remaining == [nodes[1].id]
    assert client.get_pool(pool_id).target_dedicated_nodes == 1


def test_core_quota_limits_allocation_with_a_resize_error(slow_client: BatchClient) -> None:
    pool_id = unique("quota")
    # 4 vCPUs of quota, standard_d2s_v3 has 2: only two of the three nodes fit.
    slow_client.create_pool(pool_options(pool_id, target_dedicated_nodes=3))
    pool = wait_for(lambda: p if (p := slow_client.get_pool(pool_id)).allocation_state == "steady" else None)
    assert pool.current_dedicated_nodes == 2
    assert pool.target_dedicated_nodes == 3
    assert [error.code for error in pool.resize_errors] == ["AccountCoreQuotaReached"]
    slow_client.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_autoscale_formula_sets_targets(client: BatchClient, shared_pool: str) -> None:
    pool_id = unique("auto")
    client.create_pool(
        pool_options(
            pool_id,
            target_dedicated_nodes=None,
            enable_auto_scale=True,
            auto_scale_formula="$TargetDedicatedNodes = 2; $TargetLowPriorityNodes = 0;",
            auto_scale_evaluation_interval="PT5M",
        )
    )
    wait_for_idle_nodes(client, pool_id, 2)
    pool = client.get_pool(pool_id)
    assert pool.enable_auto_scale is True
    assert pool.auto_scale_run is not None and "$TargetDedicatedNodes=2" in pool.auto_scale_run.results
    assert pool.resize_timeout is None

    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="nowhere")))
    run = client.evaluate_pool_auto_scale(
        pool_id,
        m.BatchPoolEvaluateAutoScaleOptions(
            auto_scale_formula=(
                "pending = max($PendingTasks.GetSample(1)); "
                "$TargetDedicatedNodes = min(4, max(1, pending / 2) + 1);"
            )
        ),
    )
    assert run.error is None
    assert "$TargetDedicatedNodes=2" in run.results

    bad = client.evaluate_pool_auto_scale(
        pool_id, m.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = (")
    )
    assert bad.error is not None and bad.error.code == "AutoScalingFormulaSyntaxError"

    with pytest.raises(HttpResponseError) as excinfo:
        client.enable_pool_auto_scale(
            pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = max(")
        )
    assert error_of(excinfo) == (400, "AutoScalingFormulaSyntaxError")

    client.enable_pool_auto_scale(
        pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 1;")
    )
    wait_for(lambda: len(list(client.list_nodes(pool_id))) == 1)

    with pytest.raises(HttpResponseError) as excinfo:
        client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3))
    assert error_of(excinfo) == (409, "OperationNotValidOnPool")

    client.disable_pool_auto_scale(pool_id)
    pool = client.get_pool(pool_id)
    assert pool.enable_auto_scale is False and pool.auto_scale_formula is None


def test_supported_images_and_node_counts(client: BatchClient, shared_pool: str) -> None:
    images = list(client.list_supported_images())
    agents = {image.node_agent_sku_id for image in images}
    assert {"batch.node.ubuntu 22.04", "batch.node.ubuntu 24.04"} <= agents
    ubuntu = [image for image in images if image.node_agent_sku_id == "batch.node.ubuntu 24.04"]
    assert ubuntu[0].image_reference.publisher == "canonical"
    assert ubuntu[0].os_type == "linux"

    counts = {entry.pool_id: entry for entry in client.list_pool_node_counts()}
    shared = counts[shared_pool]
    assert shared.dedicated.total == 2
    assert shared.dedicated.idle + shared.dedicated.running == 2
    assert shared.low_priority.total == 0


async def test_async_pool_lifecycle(aio_client: AsyncBatchClient) -> None:
    pool_id = unique("apool")
    await aio_client.create_pool(pool_options(pool_id, target_low_priority_nodes=1, target_dedicated_nodes=0))
    pool = await aio_client.get_pool(pool_id)
    assert pool.target_low_priority_nodes == 1
    ids = [pool.id async for pool in aio_client.list_pools(filter=f"id eq '{pool_id}'")]
    assert ids == [pool_id]
    poller = await aio_client.begin_delete_pool(pool_id, polling_interval=POLL)
    await poller.result()
    with pytest.raises(ResourceNotFoundError):
        await aio_client.get_pool(pool_id)


def test_autoscale_reevaluates_on_its_interval() -> None:
    with BatchEmulatorServer(autoscale_interval_scale=0.001) as server:  # PT5M becomes 0.3 s
        client = BatchClient(
            server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key)
        )
        pool_id = unique("auto")
        formula = "$TargetDedicatedNodes = min(3, max($PendingTasks.GetSample(1)));"
        client.create_pool(
            pool_options(
                pool_id,
                target_dedicated_nodes=None,
                enable_auto_scale=True,
                auto_scale_formula=formula,
                auto_scale_evaluation_interval="PT5M",
            )
        )
        assert client.get_pool(pool_id).target_dedicated_nodes == 0
        job_id = unique("job")
        client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
        client.create_tasks(
            job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(5)]
        )
        wait_for(lambda: client.get_pool(pool_id).target_dedicated_nodes == 3)
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.succeeded == 5)
        wait_for(lambda: client.get_pool(pool_id).current_dedicated_nodes == 0)


def test_malformed_bodies_get_400s(client: BatchClient) -> None:
    from azure.core.rest import HttpRequest

    def post(content: str) -> tuple[int, str]:
        request = HttpRequest(
            "POST",
            "/pools?api-version=2025-06-01",
            content=content,
            headers={"content-type": "application/json; odata=minimalmetadata"},
        )
        with pytest.raises(HttpResponseError) as excinfo:
            client.send_request(request)
        return error_of(excinfo)

    pool_id = unique("raw")
    assert post("{not json") == (400, "InvalidRequestBody")
    image = {"imageReference": {"publisher": "canonical"}, "nodeAgentSKUId": "batch.node.ubuntu 24.04"}
    pool = {"id": pool_id, "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": image}
    assert post(json.dumps({**pool, "targetDedicatedNodes": "two"})) == (400, "InvalidPropertyValue")
    assert post(json.dumps({**pool, "targetDedicatedNodes": 1, "taskSchedulingPolicy": "pack"})) == (
        400,
        "InvalidPropertyValue",
    )
    with pytest.raises(ResourceNotFoundError):
        client.get_pool(pool_id)


@pytest.mark.parametrize(
    ("image_id", "accepted"),
    [
        ("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/img", True),
        (
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/img/versions/1.0.0",
            True,
        ),
        ("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/managed", True),
        (
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/gallery/gal/images/img/versions/v",
            False,
        ),
        ("not-an-id", False),
    ],
)
def test_custom_image_ids_must_be_resource_manager_image_ids(
    client: BatchClient, image_id: str, accepted: bool
) -> None:
    configuration = m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(virtual_machine_image_id=image_id),
        node_agent_sku_id="batch.node.ubuntu 22.04",
    )
    options = pool_options(
        unique("custom"), virtual_machine_configuration=configuration, target_dedicated_nodes=0
    )
    if accepted:
        client.create_pool(options)
        image = client.get_pool(options.id).virtual_machine_configuration.image_reference
        assert image.virtual_machine_image_id == image_id and image.version is None
        client.begin_delete_pool(options.id, polling_interval=POLL).result()
        return
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_pool(options)
    assert error_of(excinfo) == (400, "InvalidPropertyValue")
