"""The task API through the SDK: create, collections, validation, update, terminate, reactivate, files."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.aio import BatchClient as AsyncBatchClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import error_of, sh, unique, wait_for, wait_for_task


def _task(task_id: str, command_line: str = "true", **kwargs: object) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command_line, **kwargs)


@pytest.fixture
def parked_job(client: BatchClient) -> str:
    """A job whose pool does not exist, so its tasks stay active."""
    job_id = unique("parked")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=unique("nopool"))))
    return job_id


def test_create_fills_in_defaults(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(pool_id=shared_pool),
            constraints=m.BatchJobConstraints(max_task_retry_count=2),
        )
    )
    client.create_task(job_id, _task("t1", display_name="first"))
    task = client.get_task(job_id, "t1")
    assert task.display_name == "first"
    assert task.required_slots == 1
    assert task.constraints.max_task_retry_count == 2
    assert task.constraints.retention_time == timedelta(days=7)
    assert task.url.endswith(f"/jobs/{job_id}/tasks/t1")
    done = wait_for_task(client, job_id, "t1")
    assert (done.execution_info.exit_code, done.execution_info.result, done.execution_info.retry_count) == (
        0,
        "success",
        0,
    )
    assert done.node_info.pool_id == shared_pool
    assert done.node_info.task_root_directory == f"workitems/{job_id}/job-1/t1"
    assert done.previous_state == "running"


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        (_task("dup"), 409, "TaskExists"),
        (_task("no-command", command_line=""), 400, "MissingRequiredProperty"),
        (_task("bad id!"), 400, "InvalidPropertyValue"),
        (
            _task("deps", depends_on=m.BatchTaskDependencies(task_ids=["dup"])),
            400,
            "TaskDependenciesNotSpecifiedOnJob",
        ),
        (
            _task(
                "action",
                exit_conditions=m.ExitConditions(default=m.ExitOptions(job_action="terminate")),
            ),
            400,
            "InvalidPropertyValue",
        ),
        (_task("slots", required_slots=0), 400, "InvalidPropertyValue"),
        (
            _task("mpi", multi_instance_settings=m.MultiInstanceSettings(coordination_command_line="x")),
            400,
            "InvalidPropertyValue",
        ),
    ],
)
def test_invalid_tasks_are_rejected(
    client: BatchClient, parked_job: str, options: m.BatchTaskCreateOptions, status: int, code: str
) -> None:
    client.create_task(parked_job, _task("dup"))
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task(parked_job, options)
    assert error_of(excinfo) == (status, code)
    assert [task.id for task in client.list_tasks(parked_job)] == ["dup"]


def test_a_container_task_on_a_pool_without_container_configuration_fails_without_running_on_the_host(
    client: BatchClient, job_on_shared_pool: str, shared_pool: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-on-the-host"
    registry = m.ContainerRegistryReference(
        registry_server="myregistry.azurecr.io", username="me", password="s3cret"
    )
    settings = m.BatchTaskContainerSettings(image_name="ubuntu:24.04", registry=registry)
    client.create_task(job_on_shared_pool, _task("boxed", sh(f"touch {marker}"), container_settings=settings))
    task = wait_for_task(client, job_on_shared_pool, "boxed")
    assert task.container_settings is not None and task.container_settings.image_name == "ubuntu:24.04"
    assert task.container_settings.registry is not None
    assert task.container_settings.registry.username == "me"
    assert task.container_settings.registry.password is None  # write-only, as in the service
    assert task.execution_info is not None and task.execution_info.result == "failure"
    failure = task.execution_info.failure_info
    assert failure is not None and failure.code == "ContainerInvalidSettings"
    assert f"its pool {shared_pool} has no containerConfiguration" in (failure.message or "")
    assert not marker.exists()
    names = {file.name for file in client.list_task_files(job_on_shared_pool, "boxed")}
    assert {"stdout.txt", "stderr.txt"} <= names


def test_container_settings_need_an_image(client: BatchClient, parked_job: str) -> None:
    options = _task("boxed", container_settings=m.BatchTaskContainerSettings(image_name=""))
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task(parked_job, options)
    assert error_of(excinfo) == (400, "MissingRequiredProperty")


def test_missing_things_are_404(client: BatchClient, parked_job: str) -> None:
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_task(parked_job, "nope")
    assert error_of(excinfo) == (404, "TaskNotFound")
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.create_task("no-such-job", _task("t"))
    assert error_of(excinfo) == (404, "JobNotFound")


def test_add_task_collection_reports_per_task(client: BatchClient, parked_job: str) -> None:
    client.create_task(parked_job, _task("existing"))
    result = client.create_task_collection(
        parked_job,
        m.BatchTaskGroup(
            task_values=[_task("new-1"), _task("existing"), _task("new-2"), _task("broken", command_line="")]
        ),
    )
    by_id = {item.task_id: item for item in result.result_values}
    assert by_id["new-1"].status == "success" and by_id["new-1"].etag and by_id["new-1"].location
    assert by_id["existing"].status == "clienterror" and by_id["existing"].error.code == "TaskExists"
    assert by_id["broken"].status == "clienterror" and by_id["broken"].error.code == "MissingRequiredProperty"
    assert sorted(task.id for task in client.list_tasks(parked_job)) == ["existing", "new-1", "new-2"]


def test_add_task_collection_limits(client: BatchClient, parked_job: str) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_task_collection(
            parked_job, m.BatchTaskGroup(task_values=[_task(f"t{i}") for i in range(101)])
        )
    assert error_of(excinfo) == (413, "RequestBodyTooLarge")
    assert list(client.list_tasks(parked_job)) == []


def test_sdk_create_tasks_chunks_and_halves_large_requests(client: BatchClient, parked_job: str) -> None:
    # 150 tasks of ~12 KB: the SDK sends chunks of 100, gets 413 RequestBodyTooLarge for 1.2 MB,
    # halves the chunk and succeeds.
    padding = "x" * 12_000
    tasks = [_task(f"t{i}", command_line=f"echo {padding}") for i in range(150)]
    results = client.create_tasks(parked_job, tasks).result_values
    assert len(results) == 150 and all(result.status == "success" for result in results)
    assert len(list(client.list_tasks(parked_job))) == 150


def test_replace_changes_constraints(client: BatchClient, parked_job: str) -> None:
    client.create_task(parked_job, _task("t"))
    task = client.get_task(parked_job, "t")
    task.constraints = m.BatchTaskConstraints(
        max_task_retry_count=4, max_wall_clock_time=timedelta(minutes=5)
    )
    client.replace_task(parked_job, "t", task)
    updated = client.get_task(parked_job, "t")
    assert updated.constraints.max_task_retry_count == 4
    assert updated.constraints.max_wall_clock_time == timedelta(minutes=5)
    assert updated.etag != task.etag


def test_terminate_running_and_completed_tasks(client: BatchClient, job_on_shared_pool: str) -> None:
    job_id = job_on_shared_pool
    client.create_task(job_id, _task("long", command_line="sleep 30"))
    wait_for(lambda: client.get_task(job_id, "long").state == "running")
    client.terminate_task(job_id, "long")
    task = wait_for_task(client, job_id, "long")
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "TaskEnded"
    with pytest.raises(ResourceExistsError) as excinfo:
        client.terminate_task(job_id, "long")
    assert error_of(excinfo) == (409, "TaskCompleted")


def test_reactivate_reruns_a_failed_task(client: BatchClient, job_on_shared_pool: str) -> None:
    job_id = job_on_shared_pool
    client.create_task(
        job_id, _task("flaky", command_line=sh("test -f ../flag || { touch ../flag; exit 5; }"))
    )
    assert wait_for_task(client, job_id, "flaky").execution_info.exit_code == 5
    client.reactivate_task(job_id, "flaky")
    task = wait_for_task(client, job_id, "flaky")
    assert (task.execution_info.result, task.execution_info.exit_code) == ("success", 0)
    with pytest.raises(HttpResponseError) as excinfo:
        client.reactivate_task(job_id, "flaky")
    assert error_of(excinfo) == (409, "TaskSucceeded")


def test_delete_task(client: BatchClient, job_on_shared_pool: str) -> None:
    job_id = job_on_shared_pool
    client.create_task(job_id, _task("long", command_line="sleep 30"))
    wait_for(lambda: client.get_task(job_id, "long").state == "running")
    client.delete_task(job_id, "long")
    with pytest.raises(ResourceNotFoundError):
        client.get_task(job_id, "long")
    assert client.get_job_task_counts(job_id).task_counts.running == 0


def test_task_files(client: BatchClient, job_on_shared_pool: str) -> None:
    job_id = job_on_shared_pool
    command = (
        "mkdir -p 'out dir' && printf 'abcdefghij' > 'out dir/result.txt' && echo hello && echo oops >&2"
    )
    client.create_task(job_id, _task("files", command_line=sh(command)))
    wait_for_task(client, job_id, "files")

    top = {f.name: f for f in client.list_task_files(job_id, "files")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= set(top)
    assert top["wd"].is_directory is True
    assert top["stdout.txt"].properties.content_length == 6
    everything = {f.name for f in client.list_task_files(job_id, "files", recursive=True)}
    assert "wd/out dir/result.txt" in everything

    assert b"".join(client.download_task_file(job_id, "files", "stdout.txt")) == b"hello\n"
    assert b"".join(client.download_task_file(job_id, "files", "stderr.txt")) == b"oops\n"
    path = "wd/out dir/result.txt"
    assert b"".join(client.download_task_file(job_id, "files", path)) == b"abcdefghij"
    assert b"".join(client.download_task_file(job_id, "files", path, ocp_range="bytes=2-4")) == b"cde"

    props = client.get_task_file_properties(job_id, "files", path)
    assert props.is_directory is False
    assert props.content_length == 10
    assert props.url.endswith("/files/wd%2Fout%20dir%2Fresult.txt")
    assert props.file_mode and props.last_modified and props.creation_time

    client.delete_task_file(job_id, "files", path)
    # The SDK raises before reading a streamed error body, so only the status is visible here.
    with pytest.raises(ResourceNotFoundError) as excinfo:
        b"".join(client.download_task_file(job_id, "files", path))
    assert excinfo.value.status_code == 404
    assert "wd/out dir/result.txt" not in {
        f.name for f in client.list_task_files(job_id, "files", recursive=True)
    }


def test_files_of_a_task_that_never_ran(client: BatchClient, parked_job: str) -> None:
    client.create_task(parked_job, _task("waiting"))
    with pytest.raises(HttpResponseError) as excinfo:
        list(client.list_task_files(parked_job, "waiting"))
    assert error_of(excinfo) == (409, "TaskFilesUnavailable")


async def test_async_task_round_trip(aio_client: AsyncBatchClient, shared_pool: str) -> None:
    job_id = unique("ajob")
    await aio_client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=shared_pool))
    )
    await aio_client.create_task(job_id, _task("t", command_line="echo async"))
    deadline = time.monotonic() + 15
    while (await aio_client.get_task(job_id, "t")).state != "completed":
        assert time.monotonic() < deadline
        await __import__("asyncio").sleep(0.02)
    chunks = [chunk async for chunk in await aio_client.download_task_file(job_id, "t", "stdout.txt")]
    assert b"".join(chunks) == b"async\n"
    names = [f.name async for f in aio_client.list_task_files(job_id, "t")]
    assert "stdout.txt" in names


def test_retention_time_cleans_up_task_files(client: BatchClient, job_on_shared_pool: str) -> None:
    job_id = job_on_shared_pool
    client.create_task(
        job_id, _task("brief", constraints=m.BatchTaskConstraints(retention_time=timedelta(seconds=0.2)))
    )
    wait_for_task(client, job_id, "brief")

    def cleaned() -> bool:
        try:
            list(client.list_task_files(job_id, "brief"))
        except HttpResponseError as err:
            return err.error is not None and err.error.code == "TaskFilesCleanedup"
        return False

    wait_for(cleaned)


def test_a_running_task_without_its_directory_yet_has_no_files(
    emulator: BatchEmulatorServer, client: BatchClient, job_on_shared_pool: str
) -> None:
    """Only a completed task's files can have been cleaned up; a starting one has none yet."""
    job_id = job_on_shared_pool
    client.create_task(job_id, _task("starting", command_line="sleep 30"))
    wait_for(lambda: client.get_task(job_id, "starting").state == "running")
    task_dir = emulator.call(
        lambda account: (task := account.tasks.get(job_id, "starting")).task_dir(task.node)  # type: ignore[arg-type]
    )
    wait_for((task_dir / "stdout.txt").exists)  # the runner has made everything it makes
    shutil.rmtree(task_dir)  # as in the moment before the runner creates it
    assert list(client.list_task_files(job_id, "starting")) == []
    with pytest.raises(ResourceNotFoundError):
        client.get_task_file_properties(job_id, "starting", "stdout.txt")
    client.terminate_task(job_id, "starting")


def test_job_manager_task_runs_and_ends_the_job(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(pool_id=shared_pool),
            job_manager_task=m.BatchJobManagerTask(id="manager", command_line="echo managing"),
        )
    )
    assert wait_for_task(client, job_id, "manager").execution_info.result == "success"
    job = wait_for(lambda: j if (j := client.get_job(job_id)).state == "completed" else None)
    assert job.execution_info.termination_reason == "JMComplete"


def test_unmodelled_features_say_so(client: BatchClient) -> None:
    assert list(client.list_applications()) == []
    # Job schedules (tests/emulator/test_job_schedules.py) and VM extensions, node users, remote login
    # and service log upload (tests/emulator/test_node_features.py) are emulated now: no route is 501.


def test_terminating_a_task_takes_no_job_action(client: BatchClient) -> None:
    """Exit options answer to how a task's process ended, not to a client ending it."""
    job_id = unique("exitjob")
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(pool_id=unique("nopool")),
            task_failure_mode=m.BatchTaskFailureMode.PERFORM_EXIT_OPTIONS_JOB_ACTION,
        )
    )
    client.create_task(job_id, _task("ended"))
    client.terminate_task(job_id, "ended")
    assert client.get_task(job_id, "ended").state == "completed"
    assert client.get_job(job_id).state == "active"
    client.reactivate_task(job_id, "ended")
    assert client.get_task(job_id, "ended").state == "active"
