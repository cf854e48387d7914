"""Compute nodes through the SDK: life cycle, start task, reboot, scheduling, node files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.models._models import (
    BatchNodeDeallocateOptions,
    BatchNodeRebootOptions,
    BatchNodeReimageOptions,
)
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import (
    POLL,
    error_of,
    pool_options,
    sh,
    unique,
    wait_for,
    wait_for_idle_nodes,
    wait_for_task,
)


@pytest.fixture(scope="module")
def slow_client() -> Iterator[BatchClient]:
    """An emulator whose node transitions take 0.25 s, so every state can be observed."""
    with BatchEmulatorServer(step_delay=0.25) as server:
        yield BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key))


def _process_started(client: BatchClient, job_id: str) -> bool:
    """The task's first attempt got as far as creating its marker file."""
    if client.get_task(job_id, "t").state != "running":
        return False
    return "seen" in {f.name for f in client.list_task_files(job_id, "t")}


def _only_node(client: BatchClient, pool_id: str) -> m.BatchNode:
    return wait_for(lambda: next(iter(client.list_nodes(pool_id)), None))


def test_node_goes_through_its_states_and_runs_the_start_task(slow_client: BatchClient) -> None:
    pool_id = unique("pool")
    start_task = m.BatchStartTask(command_line=sh("sleep 0.3; echo started"), wait_for_success=True)
    slow_client.create_pool(pool_options(pool_id, start_task=start_task))
    node_id = _only_node(slow_client, pool_id).id
    seen: list[str] = []

    def settled() -> bool:
        state = slow_client.get_node(pool_id, node_id).state
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "idle"

    wait_for(settled, interval=0.01)
    assert seen[-3:] == ["starting", "waitingforstarttask", "idle"]
    node = slow_client.get_node(pool_id, node_id)
    info = node.start_task_info
    assert (info.state, info.exit_code, info.result, info.retry_count) == ("completed", 0, "success", 0)
    assert node.start_task.command_line == start_task.command_line
    assert node.last_boot_time is not None and node.allocation_time is not None
    assert node.scheduling_state == "enabled"
    output = b"".join(slow_client.download_node_file(pool_id, node_id, "startup/stdout.txt"))
    assert output == b"started\n"


def test_failed_start_task_makes_the_node_unusable_for_tasks(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(
        pool_options(pool_id, start_task=m.BatchStartTask(command_line=sh("exit 7"), max_task_retry_count=1))
    )
    node = wait_for(lambda: n if (n := _only_node(client, pool_id)).state == "starttaskfailed" else None)
    assert (node.start_task_info.exit_code, node.start_task_info.retry_count) == (7, 1)
    assert node.start_task_info.failure_info.category == "usererror"
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="true"))
    counts = client.list_pool_node_counts()
    assert next(c for c in counts if c.pool_id == pool_id).dedicated.start_task_failed == 1
    assert client.get_task(job_id, "t").state == "active"


def test_start_task_without_wait_lets_the_node_work_at_once(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(
        pool_options(pool_id, start_task=m.BatchStartTask(command_line="sleep 5", wait_for_success=False))
    )
    node = wait_for(lambda: n if (n := _only_node(client, pool_id)).state == "idle" else None)
    assert node.start_task_info.state == "running"


def test_reboot_requeues_running_tasks(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id))
    node_id = wait_for_idle_nodes(client, pool_id, 1)[0].id
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(id="t", command_line=sh("test -f ../seen || { touch ../seen; sleep 30; }")),
    )
    wait_for(lambda: _process_started(client, job_id))
    client.begin_reboot_node(
        pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=POLL
    ).result()
    task = wait_for_task(client, job_id, "t")
    assert task.execution_info.requeue_count == 1
    assert task.execution_info.result == "success"
    assert client.get_node(pool_id, node_id).state in ("idle", "running")


def test_disable_and_enable_scheduling(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id))
    node_id = wait_for_idle_nodes(client, pool_id, 1)[0].id
    client.disable_node_scheduling(
        pool_id, node_id, m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
    )
    node = client.get_node(pool_id, node_id)
    assert (node.scheduling_state, node.state) == ("disabled", "offline")
    with pytest.raises(HttpResponseError) as excinfo:
        client.disable_node_scheduling(
            pool_id, node_id, m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
        )
    assert error_of(excinfo) == (409, "NodeAlreadyInTargetSchedulingState")

    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="true"))
    assert client.get_task(job_id, "t").state == "active"
    client.enable_node_scheduling(pool_id, node_id)
    assert wait_for_task(client, job_id, "t").node_info.node_id == node_id


def test_missing_node(client: BatchClient, shared_pool: str) -> None:
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_node(shared_pool, "tvmps_nothere_d")
    assert error_of(excinfo) == (404, "NodeNotFound")


def test_node_details_and_files(client: BatchClient, shared_pool: str, job_on_shared_pool: str) -> None:
    client.create_task(job_on_shared_pool, m.BatchTaskCreateOptions(id="t", command_line="echo on-node"))
    task = wait_for_task(client, job_on_shared_pool, "t")
    node = client.get_node(shared_pool, task.node_info.node_id)
    assert node.vm_size == "standard_d2s_v3"
    assert node.total_tasks_run >= 1 and node.total_tasks_succeeded >= 1
    assert node.ip_address and node.affinity_id
    assert any(recent.task_id == "t" for recent in node.recent_tasks)

    names = {f.name for f in client.list_node_files(shared_pool, node.id, recursive=True)}
    stdout = f"{task.node_info.task_root_directory}/stdout.txt"
    assert {"shared", "startup", "workitems", stdout} <= names
    assert b"".join(client.download_node_file(shared_pool, node.id, stdout)) == b"on-node\n"
    props = client.get_node_file_properties(shared_pool, node.id, "workitems")
    assert props.is_directory is True


def test_reimage_deallocate_and_start(client: BatchClient) -> None:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id))
    node_id = wait_for_idle_nodes(client, pool_id, 1)[0].id
    client.begin_reimage_node(
        pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"), polling_interval=POLL
    ).result()
    assert client.get_node(pool_id, node_id).state == "idle"
    client.begin_deallocate_node(
        pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="requeue"), polling_interval=POLL
    ).result()
    assert client.get_node(pool_id, node_id).state == "deallocated"
    client.begin_start_node(pool_id, node_id, polling_interval=POLL).result()
    assert wait_for(lambda: client.get_node(pool_id, node_id).state == "idle")


def test_preemption_requeues_tasks(emulator: BatchEmulatorServer, client: BatchClient) -> None:
    pool_id = unique("spot")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=0, target_low_priority_nodes=1))
    node = wait_for_idle_nodes(client, pool_id, 1)[0]
    assert node.is_dedicated is False
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(id="t", command_line=sh("test -f ../seen || { touch ../seen; sleep 30; }")),
    )
    wait_for(lambda: _process_started(client, job_id))
    emulator.preempt_node(pool_id, node.id)
    assert wait_for(lambda: client.get_node(pool_id, node.id).state in ("preempted", "creating", "starting"))
    task = wait_for_task(client, job_id, "t")
    assert (task.execution_info.requeue_count, task.execution_info.result) == (1, "success")


def test_reboot_stops_a_running_start_task(client: BatchClient) -> None:
    pool_id = unique("pool")
    marker = '"$AZ_BATCH_NODE_SHARED_DIR/once"'
    start = m.BatchStartTask(command_line=sh(f"test -f {marker} || {{ touch {marker}; sleep 30; }}"))
    client.create_pool(pool_options(pool_id, start_task=start))
    node_id = _only_node(client, pool_id).id
    wait_for(
        lambda: "shared/once" in {f.name for f in client.list_node_files(pool_id, node_id, recursive=True)}
    )
    assert client.get_node(pool_id, node_id).state == "waitingforstarttask"
    client.begin_reboot_node(
        pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=POLL
    ).result()
    node = wait_for(
        lambda: n if (n := client.get_node(pool_id, node_id)).state == "idle" else None, timeout=10
    )
    assert node.start_task_info.result == "success"


def test_reboot_after_a_failed_start_task_reruns_it_and_keeps_the_shared_dir(
    slow_client: BatchClient,
) -> None:
    pool_id = unique("pool")
    marker = '"$AZ_BATCH_NODE_SHARED_DIR/failed-once"'
    start = m.BatchStartTask(
        command_line=sh(
            f"sleep 0.3; test -f {marker} || {{ touch {marker}; echo first boot fails >&2; exit 1; }}"
        ),
        wait_for_success=True,
    )
    slow_client.create_pool(pool_options(pool_id, start_task=start))
    node_id = _only_node(slow_client, pool_id).id
    failed = wait_for(
        lambda: n if (n := slow_client.get_node(pool_id, node_id)).state == "starttaskfailed" else None
    )
    assert failed.errors[0].code == "NodeStartTaskFailed"
    stderr = b"".join(slow_client.download_node_file(pool_id, node_id, "startup/stderr.txt"))
    assert stderr == b"first boot fails\n"
    slow_client.begin_reboot_node(
        pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=POLL
    )
    seen: list[str] = []

    def settled() -> bool:
        state = slow_client.get_node(pool_id, node_id).state
        if not seen or seen[-1] != state:
            seen.append(state)
        return state in ("idle", "starttaskfailed") and len(seen) > 1

    wait_for(settled, interval=0.01)
    assert seen == ["rebooting", "starting", "waitingforstarttask", "idle"]
    node = slow_client.get_node(pool_id, node_id)
    assert node.start_task_info.result == "success" and not node.errors
    assert node.last_boot_time > failed.last_boot_time
    files = {f.name for f in slow_client.list_node_files(pool_id, node_id, recursive=True)}
    assert "shared/failed-once" in files  # the node's disk survives a reboot (a reimage wipes it)
    assert b"".join(slow_client.download_node_file(pool_id, node_id, "startup/stderr.txt")) == b""
