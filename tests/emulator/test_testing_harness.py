"""The harness other projects use: the pytest fixtures, LocalAzureStack with Azurite, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient

from airflow_batch_provider.emulator.cli import is_loopback
from airflow_batch_provider.emulator.models.account import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.testing.lifecycle import free_port, wait_for_port
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.emulator.compute.runner.test_process import wait_gone
from tests.emulator.conftest import pool_options, sh, unique, wait_for, wait_for_idle_nodes, wait_for_task


def test_batch_emulator_fixture(batch_emulator: BatchEmulatorServer) -> None:
    assert batch_emulator.endpoint.startswith("http://127.0.0.1:")
    assert (batch_emulator.account_name, batch_emulator.account_key) == (DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)
    client = BatchClient(
        batch_emulator.endpoint,
        AzureNamedKeyCredential(batch_emulator.account_name, batch_emulator.account_key),
    )
    assert {image.node_agent_sku_id for image in client.list_supported_images()}


def test_server_stops_and_frees_its_port() -> None:
    with BatchEmulatorServer() as server:
        port = server.port
    # Nothing listens any more: a new server can take the same port.
    with BatchEmulatorServer(port=port) as again:
        assert again.endpoint.endswith(f":{port}")


def test_stopping_the_server_stops_running_tasks_and_its_threads(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    with BatchEmulatorServer(state_dir=tmp_path, step_delay=0.005) as server:
        client = BatchClient(
            server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key)
        )
        pool_id = unique("stop")
        client.create_pool(pool_options(pool_id, task_slots_per_node=2))
        wait_for_idle_nodes(client, pool_id, 1)
        job_id = unique("job")
        client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
        client.create_tasks(
            job_id,
            [
                m.BatchTaskCreateOptions(
                    id=f"t{index}", command_line=sh("sleep 100 & echo $! > bg.pid; sleep 100")
                )
                for index in range(2)
            ],
        )

        def background_pid_files() -> list[Path] | None:
            found = [path for path in tmp_path.glob("**/wd/bg.pid") if path.read_text().strip()]
            return found if len(found) == 2 else None

        pid_files = wait_for(background_pid_files)
    background = [int(path.read_text()) for path in pid_files]
    assert all(wait_gone(pid) for pid in background)
    leaked = [thread.name for thread in set(threading.enumerate()) - threads_before if thread.is_alive()]
    assert not leaked


@pytest.mark.integration
def test_local_azure_stack_wires_auto_storage(local_azure_stack: LocalAzureStack) -> None:
    connections = local_azure_stack.airflow_connections()
    assert connections["azbatch_default"] == {
        "conn_type": "azbatch",
        "host": local_azure_stack.batch.endpoint,
        "login": DEV_ACCOUNT_NAME,
        "password": DEV_ACCOUNT_KEY,
    }
    assert connections["azblob_default"]["extra"] == {
        "connection_string": local_azure_stack.azurite.connection_string
    }
    assert json.loads(os.environ["AIRFLOW_CONN_AZBATCH_DEFAULT"])["host"] == local_azure_stack.batch.endpoint
    assert "AIRFLOW_CONN_AZBLOB_DEFAULT" in os.environ

    blobs = BlobServiceClient.from_connection_string(local_azure_stack.azurite.connection_string)
    container = unique("inputs")
    blobs.create_container(container)
    blobs.get_blob_client(container, "data/input.txt").upload_blob(b"from azurite")

    batch = local_azure_stack.batch
    client = BatchClient(batch.endpoint, AzureNamedKeyCredential(batch.account_name, batch.account_key))
    pool_id, job_id = unique("pool"), unique("job")
    client.create_pool(pool_options(pool_id))
    wait_for_idle_nodes(client, pool_id, 1)
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="reads",
            command_line=sh("cat data/input.txt"),
            resource_files=[m.ResourceFile(auto_storage_container_name=container)],
        ),
    )
    task = wait_for_task(client, job_id, "reads")
    assert task.execution_info.result == "success", task.execution_info
    assert b"".join(client.download_task_file(job_id, "reads", "stdout.txt")) == b"from azurite"


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.10")


def test_cli_prints_the_dev_credentials_and_serves(tmp_path: object) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_batch_provider.emulator",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port, 20, None)
        client = BatchClient(
            f"http://127.0.0.1:{port}", AzureNamedKeyCredential(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)
        )
        assert list(client.list_pools()) == []
    finally:
        process.terminate()
        out, err = process.communicate(timeout=20)
    assert f"Account name: {DEV_ACCOUNT_NAME}" in out
    assert f"Account key:  {DEV_ACCOUNT_KEY}" in out
    assert f"http://127.0.0.1:{port}" in out
    assert "WARNING" not in err


@pytest.mark.integration
def test_output_files_land_in_azurite(local_azure_stack: LocalAzureStack) -> None:
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    azurite = local_azure_stack.azurite
    container = unique("outputs")
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)
    sas = generate_container_sas(
        azurite.account_name,
        container,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    container_url = f"{azurite.blob_endpoint}/{container}?{sas}"

    batch = local_azure_stack.batch
    client = BatchClient(batch.endpoint, AzureNamedKeyCredential(batch.account_name, batch.account_key))
    pool_id, job_id = unique("pool"), unique("job")
    client.create_pool(pool_options(pool_id))
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    destination = m.OutputFileDestination(
        container=m.OutputFileBlobContainerDestination(container_url=container_url)
    )
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="writes",
            command_line=sh("echo result > result.txt"),
            output_files=[
                m.OutputFile(
                    file_pattern="result.txt",
                    destination=m.OutputFileDestination(
                        container=m.OutputFileBlobContainerDestination(
                            container_url=container_url, path="out/result.txt"
                        )
                    ),
                    upload_options=m.OutputFileUploadConfiguration(upload_condition="tasksuccess"),
                ),
                m.OutputFile(
                    file_pattern="../std*.txt",
                    destination=destination,
                    upload_options=m.OutputFileUploadConfiguration(upload_condition="taskcompletion"),
                ),
            ],
        ),
    )
    task = wait_for_task(client, job_id, "writes")
    assert task.execution_info.result == "success", task.execution_info
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        container
    )
    names = sorted(blob.name for blob in blobs.list_blobs())
    assert "out/result.txt" in names and "stdout.txt" in names
    assert blobs.download_blob("out/result.txt").readall() == b"result\n"
