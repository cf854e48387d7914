"""What the service fills in when a client leaves it out, read back through the SDK."""

from __future__ import annotations

from azure.batch import BatchClient
from azure.batch import models as m

from tests.emulator.conftest import POLL, UBUNTU, pool_options, unique, wait_for, wait_for_task


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


def test_a_task_reads_back_its_default_user_and_constraints(
    client: BatchClient, job_on_shared_pool: str
) -> None:
    client.create_task(job_on_shared_pool, m.BatchTaskCreateOptions(id="plain", command_line="true"))
    task = client.get_task(job_on_shared_pool, "plain")
    assert task.user_identity is not None and task.user_identity.auto_user is not None
    assert task.user_identity.auto_user.scope == "pool"
    assert task.user_identity.auto_user.elevation_level == "nonadmin"
    assert task.constraints is not None
    assert task.constraints.retention_time.days == 7
    assert task.constraints.max_task_retry_count == 0


def test_a_task_keeps_what_it_was_given_for_its_user(client: BatchClient, job_on_shared_pool: str) -> None:
    admin = m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin"))
    client.create_task(
        job_on_shared_pool, m.BatchTaskCreateOptions(id="admin", command_line="true", user_identity=admin)
    )
    auto_user = client.get_task(job_on_shared_pool, "admin").user_identity.auto_user
    assert (auto_user.scope, auto_user.elevation_level) == ("pool", "admin")


def test_a_task_s_etag_does_not_change_when_it_runs_to_completion(
    client: BatchClient, job_on_shared_pool: str
) -> None:
    client.create_task(job_on_shared_pool, m.BatchTaskCreateOptions(id="etag", command_line="true"))
    created = client.get_task(job_on_shared_pool, "etag")
    done = wait_for_task(client, job_on_shared_pool, "etag")
    assert done.execution_info.result == "success"
    assert (done.etag, done.last_modified) == (created.etag, created.last_modified)
    constraints = m.BatchTaskConstraints(max_task_retry_count=1)
    client.create_task(job_on_shared_pool, m.BatchTaskCreateOptions(id="etag2", command_line="sleep 5"))
    before = client.get_task(job_on_shared_pool, "etag2")
    client.replace_task(job_on_shared_pool, "etag2", m.BatchTask(constraints=constraints))
    assert client.get_task(job_on_shared_pool, "etag2").etag != before.etag  # a client update does change it
    client.terminate_task(job_on_shared_pool, "etag2")


def test_job_preparation_and_release_tasks_read_back_their_defaults(
    client: BatchClient, shared_pool: str
) -> None:
    job_id = unique("prep")
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(pool_id=shared_pool),
            job_preparation_task=m.BatchJobPreparationTask(command_line="true"),
            job_release_task=m.BatchJobReleaseTask(command_line="true"),
        )
    )
    job = client.get_job(job_id)
    preparation, release = job.job_preparation_task, job.job_release_task
    assert preparation.id == "jobpreparation" and release.id == "jobrelease"
    for identity in (preparation.user_identity, release.user_identity):
        assert (identity.auto_user.scope, identity.auto_user.elevation_level) == ("pool", "nonadmin")
    assert preparation.wait_for_success is True and preparation.rerun_on_node_reboot_after_success is True
    assert release.max_wall_clock_time.total_seconds() == 15 * 60
    client.begin_delete_job(job_id, polling_interval=POLL).result()


def test_images_without_a_version_read_back_latest(client: BatchClient) -> None:
    pool_id = unique("latest")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=1))
    pool = client.get_pool(pool_id)
    assert pool.virtual_machine_configuration.image_reference.version == "latest"
    node = wait_for(lambda: next(iter(client.list_nodes(pool_id)), None))
    assert node.virtual_machine_info.image_reference.version == "latest"
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()


def test_an_auto_pool_specification_reads_back_the_pool_defaults(client: BatchClient) -> None:
    job_id = unique("autospec")
    spec = m.BatchPoolSpecification(vm_size="standard_d2_v2", virtual_machine_configuration=UBUNTU)
    auto = m.BatchAutoPoolSpecification(pool_lifetime_option="job", pool=spec)
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(auto_pool_specification=auto))
    )
    read = client.get_job(job_id).pool_info.auto_pool_specification
    assert read.keep_alive is False
    pool = read.pool
    assert (pool.task_slots_per_node, pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (
        1,
        0,
        0,
    )
    assert pool.task_scheduling_policy.node_fill_type == "Spread"
    assert pool.resize_timeout.total_seconds() == 15 * 60
    assert (pool.enable_auto_scale, pool.enable_inter_node_communication) == (False, False)
    assert pool.virtual_machine_configuration.image_reference.version == "latest"
    client.begin_delete_job(job_id, polling_interval=POLL).result()


def test_start_and_job_manager_tasks_read_back_their_defaults(client: BatchClient) -> None:
    pool_id, job_id = unique("startdef"), unique("jmdef")
    client.create_pool(
        pool_options(pool_id, target_dedicated_nodes=0, start_task=m.BatchStartTask(command_line="true"))
    )
    start = client.get_pool(pool_id).start_task
    assert (start.user_identity.auto_user.scope, start.user_identity.auto_user.elevation_level) == (
        "pool",
        "nonadmin",
    )
    assert (start.wait_for_success, start.max_task_retry_count) == (True, 0)
    manager = m.BatchJobManagerTask(id="manager", command_line="true")
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), job_manager_task=manager
        )
    )
    read = client.get_job(job_id).job_manager_task
    assert (read.kill_job_on_completion, read.run_exclusive, read.allow_low_priority_node) == (
        True,
        True,
        True,
    )
    assert read.required_slots == 1
    assert read.user_identity.auto_user.elevation_level == "nonadmin"
    assert read.constraints.retention_time.days == 7
    client.begin_delete_job(job_id, polling_interval=POLL).result()
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()
