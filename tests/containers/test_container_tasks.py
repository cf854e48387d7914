"""Container tasks and start tasks run by the emulator through a real engine, as on the service."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from azure.batch import BatchClient
from azure.batch import models as m

from airflow_batch_provider.emulator.compute.runner.containers import image_present
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.containers.conftest import container_vm, containers_named
from tests.emulator.conftest import pool_options, sh, unique, wait_for, wait_for_idle_nodes, wait_for_task
from tests.support.container_images import LocalRegistry

#: A name no registry answers for: pulling it fails at once, offline.
MISSING_IMAGE = "localhost:9/airflow-batch-provider/missing:1"


def _stdout(client: BatchClient, job_id: str, task_id: str) -> str:
    return b"".join(client.download_task_file(job_id, task_id, "stdout.txt")).decode()


def _container_task(task_id: str, script: str, image: str, **settings: object) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(
        id=task_id,
        command_line=sh(script),
        container_settings=m.BatchTaskContainerSettings(image_name=image, **settings),  # type: ignore[arg-type]
        environment_settings=[m.EnvironmentSetting(name="GREETING", value="hello from the task")],
    )


def test_a_container_task_runs_in_its_image_with_the_task_directories_and_environment(
    client: BatchClient, container_job: str, image: str
) -> None:
    script = (
        "test -e /run/.containerenv -o -e /.dockerenv && echo in-a-container; "
        'echo "pwd=$(pwd)"; echo "wd=$AZ_BATCH_TASK_WORKING_DIR"; echo "greeting=$GREETING"; '
        'echo "node=$AZ_BATCH_NODE_ROOT_DIR"; test -d "$AZ_BATCH_NODE_SHARED_DIR" && echo shared-mounted; '
        "python3 -c 'print(\"python\", 6 * 7)'; echo written > result.txt"
    )
    client.create_task(container_job, _container_task("env", script, image))
    task = wait_for_task(client, container_job, "env", timeout=60)
    out = _stdout(client, container_job, "env")
    assert task.execution_info is not None and task.execution_info.result == "success", out
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert "in-a-container" in out
    assert lines["pwd"] == lines["wd"] and lines["wd"].endswith(f"/{container_job}/job-1/env/wd")
    assert lines["greeting"] == "hello from the task"
    assert lines["node"] and "shared-mounted" in out
    assert "python 42" in out
    # The working directory is the node's own: what the container wrote is a task file on the host.
    written = b"".join(client.download_task_file(container_job, "env", "wd/result.txt"))
    assert written == b"written\n"


def test_container_image_default_keeps_the_images_working_directory(
    client: BatchClient, container_job: str, image: str
) -> None:
    client.create_task(
        container_job,
        _container_task("default-wd", "pwd", image, working_directory="containerImageDefault"),
    )
    task = wait_for_task(client, container_job, "default-wd", timeout=60)
    assert task.execution_info is not None and task.execution_info.result == "success"
    assert "/wd" not in _stdout(client, container_job, "default-wd")


def test_run_options_and_bind_mounts_are_applied(client: BatchClient, container_job: str, image: str) -> None:
    only_the_task = [m.ContainerHostBatchBindMountEntry(source="Task", is_read_only=False)]
    client.create_task(
        container_job,
        _container_task(
            "options",
            'echo "option=$FROM_RUN_OPTIONS"; test -d "$AZ_BATCH_NODE_SHARED_DIR" || echo no-shared; pwd',
            image,
            container_run_options="--env FROM_RUN_OPTIONS=applied",
            container_host_batch_bind_mounts=only_the_task,
        ),
    )
    task = wait_for_task(client, container_job, "options", timeout=60)
    out = _stdout(client, container_job, "options")
    assert task.execution_info is not None and task.execution_info.result == "success", out
    assert "option=applied" in out
    assert "no-shared" in out  # only the task directory is mounted


def test_an_image_that_cannot_be_pulled_fails_the_task_with_the_services_code(
    client: BatchClient, container_job: str
) -> None:
    client.create_task(container_job, _container_task("no-image", "echo never", MISSING_IMAGE))
    task = wait_for_task(client, container_job, "no-image", timeout=60)
    info = task.execution_info
    assert info is not None and info.result == "failure" and info.exit_code is None
    assert info.failure_info is not None and info.failure_info.code == "ContainerInvalidImage"
    assert MISSING_IMAGE in (info.failure_info.message or "")


def test_the_wall_clock_kills_the_container(
    client: BatchClient, container_job: str, image: str, container_engine: str
) -> None:
    options = _container_task("slow", "sleep 300", image)
    options.constraints = m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=2))
    started = time.monotonic()
    client.create_task(container_job, options)
    task = wait_for_task(client, container_job, "slow", timeout=60)
    assert time.monotonic() - started < 30
    assert task.execution_info is not None and task.execution_info.result == "failure"
    assert task.execution_info.failure_info is not None
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert containers_named(container_engine, "slow") == []


@pytest.mark.parametrize("how", ["terminate", "delete"])
def test_terminating_or_deleting_a_task_stops_its_container(
    client: BatchClient, container_job: str, image: str, container_engine: str, how: str
) -> None:
    task_id = f"stopped-{how}"
    client.create_task(container_job, _container_task(task_id, "sleep 300", image))
    wait_for(lambda: containers_named(container_engine, task_id), timeout=60)
    if how == "terminate":
        client.terminate_task(container_job, task_id)
        wait_for_task(client, container_job, task_id, timeout=30)
    else:
        client.delete_task(container_job, task_id)
    wait_for(lambda: not containers_named(container_engine, task_id), timeout=30)


def test_a_start_task_runs_in_a_container_before_the_node_takes_tasks(
    client: BatchClient, image: str
) -> None:
    pool_id = unique("start")
    start_task = m.BatchStartTask(
        command_line=sh('echo "ready in $(pwd)" > "$AZ_BATCH_NODE_SHARED_DIR/ready.txt"'),
        container_settings=m.BatchTaskContainerSettings(image_name=image),
        wait_for_success=True,
    )
    client.create_pool(
        pool_options(pool_id, virtual_machine_configuration=container_vm(), start_task=start_task)
    )
    (node,) = wait_for_idle_nodes(client, pool_id, 1)
    content = b"".join(client.download_node_file(pool_id, node.id, "shared/ready.txt")).decode()
    assert content.startswith("ready in ") and content.strip().endswith("/startup/wd")
    client.begin_delete_pool(pool_id)


def test_the_pools_images_are_pulled_from_a_registry_when_a_node_starts(
    client: BatchClient, container_engine: str, image: str, registry: LocalRegistry, uid: str
) -> None:
    published = registry.publish(image, f"prefetch/python:{uid}")
    assert not image_present(container_engine, published)
    pool_id = unique("prefetch")
    client.create_pool(pool_options(pool_id, virtual_machine_configuration=container_vm(published)))
    wait_for_idle_nodes(client, pool_id, 1, timeout=120)
    assert image_present(container_engine, published)
    client.begin_delete_pool(pool_id)


def test_an_image_is_pulled_from_a_registry_when_its_task_starts(
    client: BatchClient,
    container_job: str,
    container_engine: str,
    image: str,
    registry: LocalRegistry,
    uid: str,
) -> None:
    published = registry.publish(image, f"on-demand/python:{uid}")
    client.create_task(container_job, _container_task("pulled", "echo pulled-and-ran", published))
    task = wait_for_task(client, container_job, "pulled", timeout=120)
    assert task.execution_info is not None and task.execution_info.result == "success"
    assert "pulled-and-ran" in _stdout(client, container_job, "pulled")


def test_the_pools_images_are_pulled_when_a_node_starts_and_a_failure_makes_it_unusable(
    client: BatchClient, container_emulator: BatchEmulatorServer, image: str
) -> None:
    pool_id = unique("prefetch")
    client.create_pool(
        pool_options(pool_id, virtual_machine_configuration=container_vm(image, MISSING_IMAGE))
    )
    node = wait_for(
        lambda: next((n for n in client.list_nodes(pool_id) if n.state == "unusable"), None), timeout=60
    )
    assert node.errors and node.errors[0].code == "ContainerImagePullFailed"
    assert MISSING_IMAGE in (node.errors[0].message or "")
    client.begin_delete_pool(pool_id)
