"""What the service fills in when a client leaves it out, read back through the SDK."""

from __future__ import annotations

from azure.batch import BatchClient
from azure.batch import models as m

from tests.emulator.conftest import POLL, UBUNTU, pool_options, unique, wait_for


def test_a_pool_with_neither_target_count_defaults_both_to_zero(client: BatchClient) -> None:
    pool_id = unique("nocount")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=None))
    pool = client.get_pool(pool_id)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (0, 0)
    assert pool.allocation_state == "steady"
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_an_auto_pool_with_neither_target_count_is_created_empty(client: BatchClient) -> None:
    job_id = unique("autojob")
    spec = m.BatchPoolSpecification(vm_size="standard_d2_v2", virtual_machine_configuration=UBUNTU)
    auto = m.BatchAutoPoolSpecification(pool_lifetime_option="job", pool=spec)
    pool_info = m.BatchPoolInfo(auto_pool_specification=auto)
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=pool_info))
    job = wait_for(lambda: j if (j := client.get_job(job_id)).execution_info.pool_id else None)
    pool = client.get_pool(job.execution_info.pool_id)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (0, 0)
    client.begin_delete_job(job_id, polling_interval=POLL).result()


def test_node_fill_type_reads_back_capitalised(client: BatchClient) -> None:
    pool_id = unique("fill")
    policy = m.BatchTaskSchedulingPolicy(node_fill_type="pack")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=0, task_scheduling_policy=policy))
    assert client.get_pool(pool_id).task_scheduling_policy.node_fill_type == "Pack"
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()
