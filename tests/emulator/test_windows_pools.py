"""Windows pools are accepted; a command line whose program the host lacks fails as the service fails it."""

from __future__ import annotations

from azure.batch import BatchClient
from azure.batch import models as m

from tests.emulator.conftest import POLL, pool_options, unique, wait_for_idle_nodes, wait_for_task

WINDOWS = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(
        publisher="MicrosoftWindowsServer", offer="WindowsServer", sku="2016-Datacenter-smalldisk"
    ),
    node_agent_sku_id="batch.node.windows amd64",
    windows_configuration=m.WindowsConfiguration(enable_automatic_updates=True),
)


def test_a_missing_program_fails_the_task_with_its_output_files_in_place(client: BatchClient) -> None:
    pool_id, job_id = unique("win"), unique("winjob")
    client.create_pool(pool_options(pool_id, virtual_machine_configuration=WINDOWS, target_dedicated_nodes=1))
    wait_for_idle_nodes(client, pool_id, 1)
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="hello", command_line='cmd /c "echo hello world"'))
    task = wait_for_task(client, job_id, "hello")
    assert task.execution_info is not None and task.execution_info.result == "failure"
    assert task.execution_info.failure_info is not None
    assert task.execution_info.failure_info.code == "CommandProgramNotFound"
    names = {file.name for file in client.list_task_files(job_id, "hello") if not file.is_directory}
    assert {"stdout.txt", "stderr.txt"} <= names
    client.begin_delete_job(job_id, polling_interval=POLL).result()
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()
