"""Jobs and tasks against the Batch emulator and Azurite, through the real SDK."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred
from azure.core.pipeline.policies import SansIOHTTPPolicy

from airflow_batch_provider.batch.task_factories import ParametricSweep, TasksFromUpload
from airflow_batch_provider.exceptions import (
    BatchJobEndedError,
    BatchProviderError,
    BatchTaskFailureError,
    InvalidInputError,
)
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.operators.job import (
    BatchCreateJobOperator,
    BatchDeleteJobOperator,
    BatchTerminateJobOperator,
)
from airflow_batch_provider.operators.output import BatchCollectTaskOutputOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.operators.storage import BlobUploadFilesOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.triggers.job import BatchJobTrigger
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pool_id(local_azure_stack: Any) -> Iterator[str]:
    pool = f"itest-shared-{uuid.uuid4().hex[:6]}"
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id=pool,
        vm_size="standard_d2s_v3",
        image="ubuntu-22.04",
        target_dedicated_nodes=4,
        task_slots_per_node=4,
        poll_interval=0.2,
    ).execute(task_context("setup", "pool"))
    yield pool
    BatchHook().delete_pool(pool)


def blob_account() -> str:
    """The storage account of the ``azblob_default`` connection (Azurite's)."""
    return BlobStorageHook().settings.resolved_account_name


def _ctx(task_id: str, run_id: str, map_index: int = -1) -> dict[str, Any]:
    return task_context(run_id, task_id, map_index=map_index)


def _job(pool_id: str, uid: str, **kw: Any) -> str:
    result = BatchCreateJobOperator(task_id="job", job_id=f"itest-{uid}", pool_id=pool_id, **kw).execute(
        _ctx("job", uid)
    )
    return str(result["job_id"])


def _wait(job_id: str, prefix: str | None = None, **kw: Any) -> dict[str, Any]:
    """Run the sensor's deferrable path: the real trigger against the emulator, then execute_complete."""
    sensor = BatchJobSensor(
        task_id="wait",
        job_id=job_id,
        task_id_prefix=prefix,
        deferrable=True,
        poke_interval=0.2,
        timeout=120,
        **kw,
    )
    context = _ctx("wait", "r")
    try:
        return sensor.execute(context)
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        assert classpath == "airflow_batch_provider.triggers.job.BatchJobTrigger"
        trigger = BatchJobTrigger(**json.loads(json.dumps(kwargs)))

        async def run() -> list[dict[str, Any]]:
            return [event.payload async for event in trigger.run()]

        (event,) = asyncio.run(run())
        return sensor.execute_complete(context, event)


def test_job_ids_from_templates_creation_reuse_and_teardown(pool_id: str, hook: BatchHook, uid: str) -> None:
    raw_id = f"etl-manual__2026-01-01T00:00:00+00:00-{uid}"
    create = BatchCreateJobOperator(
        task_id="job",
        job_id=raw_id,
        pool_id=pool_id,
        priority=10,
        max_parallel_tasks=8,
        max_wall_clock_time=3600,
        common_environment_settings={"STAGE": "itest"},
        on_all_tasks_complete="noaction",
        metadata={"dag": "etl"},
    )
    first = create.execute(_ctx("job", uid))
    job_id = first["job_id"]
    assert first["created"] is True and ":" not in job_id and "+" not in job_id
    job = hook.get_job(job_id)
    assert job is not None
    assert job["constraints"]["maxWallClockTime"] == "PT1H"
    assert job["maxParallelTasks"] == 8 and job["priority"] == 10
    assert create.execute(_ctx("job", uid))["created"] is False  # an Airflow retry re-attaches

    with pytest.raises(BatchProviderError, match=r"poolInfo\.poolId"):
        BatchCreateJobOperator(task_id="job2", job_id=raw_id, pool_id="another-pool").execute(
            _ctx("job2", uid)
        )

    terminate = BatchTerminateJobOperator(
        task_id="t", job_id=raw_id, wait_for_completion=True, poll_interval=0.2
    )
    assert terminate.execute(_ctx("t", uid))["outcome"] == "terminated"
    assert terminate.execute(_ctx("t", uid))["outcome"] == "already_completed"
    with pytest.raises(BatchProviderError, match="accepts no new tasks"):
        create.execute(_ctx("job", uid))
    delete = BatchDeleteJobOperator(task_id="d", job_id=raw_id, wait_for_completion=True, poll_interval=0.2)
    assert delete.execute(_ctx("d", uid))["outcome"] == "deleted"
    assert delete.execute(_ctx("d", uid))["outcome"] == "not_found"
    assert (
        BatchTerminateJobOperator(task_id="t2", job_id=raw_id).execute(_ctx("t2", uid))["outcome"]
        == "not_found"
    )


def test_thousand_tasks_from_uploaded_blobs(pool_id: str, hook: BatchHook, uid: str, tmp_path: Path) -> None:
    data = tmp_path / "inputs"
    data.mkdir()
    for index in range(1000):
        (data / f"part-{index:04d}.txt").write_text(f"payload {index}\n")
    upload = BlobUploadFilesOperator(
        task_id="upload", source=str(data), container="itest-inputs", prefix=f"run-{uid}/"
    ).execute(_ctx("upload", uid))
    assert upload["count"] == 1000

    job_id = _job(pool_id, uid, max_wall_clock_time=7200)
    requests: list[int] = []

    class CountAddCollections(SansIOHTTPPolicy):  # type: ignore[type-arg]
        """Tasks per add-collection request, as they leave the client."""

        def on_request(self, request: Any) -> None:
            if request.http_request.url.split("?")[0].endswith("/addtaskcollection"):
                requests.append(len(json.loads(request.http_request.content)["value"]))

    counted = BatchHook(http_policies=[CountAddCollections()])
    add = BatchAddTasksOperator(
        task_id="add",
        job_id=job_id,
        task_factory=TasksFromUpload(upload, "/bin/sh -c 'cat {file_path}'", file_path="input.txt"),
    )
    add.__dict__["hook"] = counted
    started = time.monotonic()
    result = add.execute(_ctx("add", uid))
    elapsed = time.monotonic() - started
    assert result["task_count"] == 1000 and result["added"] == 1000 and result["already_existed"] == 0
    assert len(requests) == 10 and set(requests) == {100}
    assert len(json.dumps(result)) < 300 and "sig=" not in json.dumps(result)
    assert elapsed < 60

    retry = add.execute(_ctx("add", uid))  # the same Airflow task, retried
    assert (retry["added"], retry["already_existed"]) == (0, 1000)
    counted.close()
    assert hook.get_task_counts(job_id).total == 1000

    summary = _wait(job_id, result["task_id_prefix"])
    assert summary["counts"]["succeeded"] == 1000 and summary["failed_count"] == 0
    sample = hook.list_tasks(
        job_id, filter=f"startswith(id,'{result['task_id_prefix']}')", select=["id"], limit=3
    )
    for task in sample:
        stdout = hook.read_task_file_tail(job_id, task["id"], "stdout.txt")
        assert stdout is not None and stdout.startswith("payload ")
    hook.delete_job(job_id)


def test_failures_are_reported_precisely_per_prefix(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid)
    ok = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"command_line": "/bin/sh -c 'echo fine'"} for _ in range(3)]
    ).execute(_ctx("add", "run-a"))
    bad = BatchAddTasksOperator(
        task_id="add",
        job_id=job_id,
        tasks=[
            {"id": "ok", "command_line": "/bin/sh -c 'echo fine'"},
            {"id": "bad-1", "command_line": "/bin/sh -c 'echo step1; echo KeyError: user_id >&2; exit 3'"},
            {"id": "bad-2", "command_line": "/bin/sh -c 'echo disk full >&2; exit 7'"},
        ],
    ).execute(_ctx("add", "run-b"))
    assert ok["task_id_prefix"] != bad["task_id_prefix"]

    assert _wait(job_id, ok["task_id_prefix"])["counts"]["succeeded"] == 3  # run A is not blamed for run B

    with pytest.raises(BatchTaskFailureError) as info:
        _wait(job_id, bad["task_id_prefix"], max_failure_logs=1)
    message = str(info.value)
    prefix = bad["task_id_prefix"]
    assert f"2 task(s) failed in tasks {prefix}* of job {job_id}" in message
    assert f"{prefix}bad-1: exit code 3; FailureExitCode" in message
    assert f"{prefix}bad-2: exit code 7; FailureExitCode" in message
    assert "KeyError: user_id" in message  # stderr of the first failure
    assert "disk full" not in message  # only max_failure_logs=1 stderr tails
    assert f"{prefix}ok" not in message

    with pytest.raises(BatchTaskFailureError, match=r"2 task\(s\) failed in job"):
        _wait(job_id)  # the whole job, via task counts

    lenient = _wait(job_id, bad["task_id_prefix"], fail_on_task_failure=False)
    assert lenient["failed_task_ids"] == [f"{prefix}bad-1", f"{prefix}bad-2"]

    collect = BatchCollectTaskOutputOperator(
        task_id="collect",
        job_id=job_id,
        task_id_prefix=prefix,
        destination_container="itest-logs",
        destination_prefix=f"{uid}/logs",
    )
    collected = collect.execute(_ctx("collect", uid))
    assert collected["task_count"] == 2
    # OpenLineage: the log prefix it wrote, one dataset with the count of files uploaded.
    [written] = collect.get_openlineage_facets_on_complete(None).outputs
    assert (written.namespace, written.name) == (
        f"wasbs://itest-logs@{blob_account()}.dfs.core.windows.net",
        f"{uid}/logs",
    )
    assert written.outputFacets["outputStatistics"].fileCount == 4
    url = collected["logs"][f"{prefix}bad-2"]["stderr.txt"]
    assert url.endswith(f"/itest-logs/{uid}/logs/{prefix}bad-2/stderr.txt") and "sig=" not in url
    blob = BlobStorageHook()
    assert any(b.name.endswith("bad-2/stderr.txt") for b in blob.list_blobs("itest-logs", f"{uid}/logs/"))
    hook.delete_job(job_id)


def test_outputs_and_std_logs_are_uploaded_and_listed(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid, max_wall_clock_time=3600)
    blob = BlobStorageHook()
    blob.create_container("itest-results")
    add = BatchAddTasksOperator(
        task_id="sweep",
        job_id=job_id,
        task_factory=ParametricSweep(
            "/bin/sh -c 'mkdir -p out && echo {a}-{b} > out/result-{index}.txt && echo done {a}'",
            {"a": [1, 2], "b": ["x"]},
        ),
        output_container="itest-results",
        output_patterns=["out/*.txt"],
    )
    result = add.execute(_ctx("sweep", uid))
    assert result["task_count"] == 2
    assert _wait(job_id, result["task_id_prefix"])["counts"]["succeeded"] == 2

    collect = BatchCollectTaskOutputOperator(
        task_id="collect", job_id=job_id, task_id_prefix=result["task_id_prefix"], only_failed=False
    )
    collected = collect.execute(_ctx("collect", uid))
    urls = collected["output_urls"]
    # OpenLineage: one input dataset, the output prefix add-tasks reported, counting every listed blob.
    lineage = collect.get_openlineage_facets_on_complete(None)
    [read] = lineage.inputs
    [written_by_tasks] = add.get_openlineage_facets_on_complete(None).outputs
    assert read.namespace == f"wasbs://itest-results@{blob_account()}.dfs.core.windows.net"
    assert (read.namespace, read.name) == (written_by_tasks.namespace, written_by_tasks.name)
    assert read.name.startswith(f"{job_id}/") and not lineage.outputs
    statistics = read.inputFacets["inputStatistics"]
    assert statistics.fileCount == collected["output_url_count"] == 6 and statistics.size > 0
    assert collected["logs"] and all(
        v == {"stdout.txt": "logged", "stderr.txt": "logged"} for v in collected["logs"].values()
    )
    assert any(u.endswith("/out/result-0.txt") or u.endswith("result-0.txt") for u in urls), urls
    assert any(u.endswith("stdout.txt") for u in urls), urls
    assert all("sig=" not in u and "?" not in u for u in urls)
    hook.delete_job(job_id)


def test_plain_file_outputs_seconds_constraints_readable_ids_and_a_new_output_container(
    pool_id: str, hook: BatchHook, uid: str
) -> None:
    from airflow_batch_provider.batch.task_factories import BlobPrefixTasks

    blob = BlobStorageHook()
    blob.create_container("itest-data")
    prefix = f"{uid}/a-long/per-run/input-prefix/"
    for name, lines in (("a.csv", 2), ("b.csv", 4)):
        blob.upload_bytes("itest-data", f"{prefix}{name}", b"x\n" * lines)
    output_container = f"itest-new-{uid}"  # does not exist yet

    job_id = _job(pool_id, uid)
    result = BatchAddTasksOperator(
        task_id="add",
        job_id=job_id,
        task_factory=BlobPrefixTasks(
            "itest-data", "/bin/sh -c 'wc -l < {file_path} > result.json'", prefix=prefix, suffix=".csv"
        ),
        output_container=output_container,
        output_patterns=["result.json"],
        constraints={"max_wall_clock_time": 600},
    ).execute(_ctx("add", uid))
    assert _wait(job_id, result["task_id_prefix"])["counts"]["succeeded"] == 2

    tasks = hook.list_tasks(job_id, select=["id", "constraints"])
    assert {t["constraints"]["maxWallClockTime"] for t in tasks} == {"PT10M"}
    # Ids name the input below the prefix, not the long per-run prefix.
    local_ids = sorted(t["id"][len(result["task_id_prefix"]) :] for t in tasks)
    assert [local.lstrip("-")[:5] for local in local_ids] == ["a-csv", "b-csv"], local_ids
    assert all(uid not in local for local in local_ids)

    results = sorted(info.name for info in blob.list_blobs(output_container) if info.name.endswith(".json"))
    assert len(results) == 2 and all(name.endswith("/result.json") for name in results), results
    counts = sorted(
        blob.get_conn().get_blob_client(output_container, n).download_blob().readall() for n in results
    )
    assert counts == [b"2\n", b"4\n"]
    hook.delete_job(job_id)


def test_validation_refuses_before_adding(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid)
    with pytest.raises(
        InvalidInputError, match=r"require more slots than a node of pool .* \(taskSlotsPerNode=4\)"
    ):
        BatchAddTasksOperator(
            task_id="add", job_id=job_id, tasks=[{"command_line": "echo", "required_slots": 8}]
        ).execute(_ctx("add", uid))
    assert hook.get_task_counts(job_id).total == 0
    assert hook.list_tasks(job_id, select=["id"]) == []
    hook.delete_job(job_id)


def test_job_kill_switch_ends_the_wait(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid, max_wall_clock_time=2)
    BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"command_line": "/bin/sh -c 'sleep 60'"}]
    ).execute(_ctx("add", uid))
    with pytest.raises((BatchJobEndedError, BatchTaskFailureError)) as info:
        _wait(job_id)
    assert "was terminated (MaxWallClockTimeExpiry)" in str(info.value)
    hook.delete_job(job_id)


def test_timeout_terminates_the_tasks_under_the_prefix(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid)
    result = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"command_line": "/bin/sh -c 'sleep 60'"}]
    ).execute(_ctx("add", uid))
    sensor = BatchJobSensor(
        task_id="wait",
        job_id=job_id,
        task_id_prefix=result["task_id_prefix"],
        poke_interval=0.2,
        timeout=1,
        terminate_on_timeout=True,
    )
    with pytest.raises(AirflowSensorTimeout, match="Last status"):
        sensor.execute(_ctx("wait", uid))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        (task,) = hook.list_tasks(job_id, select=["id", "state"])
        if task["state"] == "completed":
            break
        time.sleep(0.2)
    assert task["state"] == "completed"
    hook.delete_job(job_id)


def test_application_files_and_one_task_per_blob(
    pool_id: str, hook: BatchHook, uid: str, tmp_path: Path
) -> None:
    from airflow_batch_provider.batch.task_factories import BlobPrefixTasks
    from airflow_batch_provider.operators.storage import BlobUploadApplicationFilesOperator

    app = tmp_path / "app"
    app.mkdir()
    (app / "count.sh").write_text('#!/bin/sh\nprintf "%s lines in %s\\n" "$(wc -l < "$1")" "$1"\n')
    uploaded_app = BlobUploadApplicationFilesOperator(
        task_id="upload_app", source=str(app), container="itest-apps", prefix=f"app-{uid}/", node_path="bin"
    ).execute(_ctx("upload_app", uid))
    blob = BlobStorageHook()
    blob.create_container("itest-data")
    for name, lines in (("a.csv", 3), ("b.csv", 5), ("notes.txt", 1)):
        blob.upload_bytes("itest-data", f"{uid}/{name}", b"x\n" * lines)

    job_id = _job(pool_id, uid, max_wall_clock_time=3600)
    result = BatchAddTasksOperator(
        task_id="add",
        job_id=job_id,
        task_factory=BlobPrefixTasks(
            "itest-data", f"/bin/sh bin/app-{uid}/count.sh {{file_path}}", prefix=f"{uid}/", suffix=".csv"
        ),
        common_resource_files=uploaded_app["resource_files"],
    ).execute(_ctx("add", uid))
    assert result["task_count"] == 2
    # Batch keeps the blob path below filePath: the app lands in bin/<upload prefix>/.
    assert _wait(job_id, result["task_id_prefix"])["counts"]["succeeded"] == 2
    outputs = sorted(
        (hook.read_task_file_tail(job_id, t["id"], "stdout.txt") or "").strip()
        for t in hook.list_tasks(job_id, select=["id"])
    )
    assert outputs == ["3 lines in a.csv", "5 lines in b.csv"]
    hook.delete_job(job_id)


def test_reschedule_style_pokes_keep_no_state(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid)
    result = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"command_line": "/bin/sh -c 'sleep 1'"}]
    ).execute(_ctx("add", uid))
    pokes = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # A fresh sensor object per poke, as in mode="reschedule".
        sensor = BatchJobSensor(
            task_id="wait", job_id=job_id, task_id_prefix=result["task_id_prefix"], mode="reschedule"
        )
        outcome = sensor.poke(_ctx("wait", uid))
        pokes.append(bool(outcome))
        if outcome:
            assert outcome.xcom_value["counts"]["succeeded"] == 1  # type: ignore[union-attr]
            break
        time.sleep(0.2)
    assert pokes[0] is False and pokes[-1] is True
    hook.delete_job(job_id)


def test_reschedule_pokes_read_the_job_only_when_the_clock_says(
    pool_id: str, hook: BatchHook, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.batch import models as m

    import airflow_batch_provider.sensors.job as sensor_module

    job_id = _job(pool_id, uid)
    hook.client.begin_disable_job(
        job_id, m.BatchJobDisableOptions(disable_tasks="requeue"), polling_interval=0.1
    ).result()
    BatchAddTasksOperator(task_id="add", job_id=job_id, tasks=[{"command_line": "true"}]).execute(
        _ctx("add", uid)
    )  # a disabled job runs nothing: the task stays active
    hook.terminate_job(job_id, wait=True, poll_interval=0.1)
    requests: list[str] = []

    class Recorder(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            requests.append(request.http_request.url.split("?")[0].rsplit("/", 1)[-1])

    def poke(due: bool) -> Any:
        monkeypatch.setattr(sensor_module, "job_check_due_by_clock", lambda now, interval: due)
        sensor = BatchJobSensor(task_id="wait", job_id=job_id, mode="reschedule")
        sensor.__dict__["hook"] = BatchHook(http_policies=[Recorder()])
        requests.clear()
        try:
            return sensor.poke(_ctx("wait", uid))
        finally:
            sensor.hook.close()

    assert poke(due=False) is False and requests == ["taskcounts"]  # one request: the counts
    with pytest.raises(BatchJobEndedError, match="1 task\\(s\\) never completed"):
        poke(due=True)
    assert requests[0] == job_id  # the job's state was read first
    hook.delete_job(job_id)


def test_file_tails_read_only_the_end_of_big_logs(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid)
    script = "i=0; while [ $i -lt 3000 ]; do echo line-$i >&2; i=$((i+1)); done; exit 1"
    result = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"id": "noisy", "command_line": f"/bin/sh -c '{script}'"}]
    ).execute(_ctx("add", uid))
    with pytest.raises(BatchTaskFailureError) as info:
        _wait(job_id, result["task_id_prefix"])
    message = str(info.value)
    assert "line-2999" in message and "line-0\n" not in message
    tail = hook.read_task_file_tail(job_id, f"{result['task_id_prefix']}noisy", "stderr.txt", max_bytes=100)
    assert tail is not None and len(tail.encode()) <= 100
    assert tail.endswith("line-2999\n") and tail.startswith("line-")  # starts on a whole line
    assert hook.read_task_file_tail(job_id, f"{result['task_id_prefix']}noisy", "missing.txt") is None
    hook.delete_job(job_id)


def test_oversized_chunks_are_halved_by_the_hook(pool_id: str, hook: BatchHook, uid: str) -> None:
    job_id = _job(pool_id, uid)
    padding = "x" * 15_000  # 100 such tasks make a body over the service's 1 MB limit
    tasks = [{"id": f"big-{i:03d}", "commandLine": f"/bin/sh -c 'true {padding}'"} for i in range(100)]
    result = hook.add_tasks(job_id, tasks)
    assert (result.added, result.failures) == (100, [])
    assert result.requests > 1  # the 413 RequestBodyTooLarge chunk was split
    assert hook.get_task_counts(job_id).total == 100
    BatchTerminateJobOperator(task_id="t", job_id=job_id).execute(_ctx("t", uid))
    hook.delete_job(job_id)


def test_active_job_quota_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch, uid: str) -> None:
    from airflow_batch_provider.testing.emulator import BatchEmulatorServer

    with BatchEmulatorServer(active_job_quota=1) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AZBATCH_QUOTA",
            json.dumps(
                {
                    "conn_type": "azbatch",
                    "host": server.endpoint,
                    "login": server.account_name,
                    "password": server.account_key,
                }
            ),
        )
        ctx = _ctx("job", uid)
        BatchCreatePoolOperator(  # jobs are only created on pools that exist
            task_id="p",
            pool_id="p",
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=1,
            wait_for_completion=False,
            azbatch_conn_id="azbatch_quota",
        ).execute(ctx)
        BatchCreateJobOperator(
            task_id="j1", job_id="first", pool_id="p", azbatch_conn_id="azbatch_quota"
        ).execute(ctx)
        with pytest.raises(BatchProviderError, match="active job quota is used up") as info:
            BatchCreateJobOperator(
                task_id="j2", job_id="second", pool_id="p", azbatch_conn_id="azbatch_quota"
            ).execute(ctx)
        assert "BatchTerminateJobOperator" in str(info.value)
        BatchTerminateJobOperator(task_id="t", job_id="first", azbatch_conn_id="azbatch_quota").execute(ctx)


def test_spot_preemption_requeues_are_visible(local_azure_stack: Any, hook: BatchHook, uid: str) -> None:
    spot_pool = f"itest-spot-{uid}"
    BatchCreatePoolOperator(
        task_id="pool",
        pool_id=spot_pool,
        vm_size="standard_d2s_v3",
        image="ubuntu-24.04",
        target_spot_nodes=1,
        poll_interval=0.2,
    ).execute(_ctx("pool", uid))
    job_id = _job(spot_pool, uid)
    result = BatchAddTasksOperator(
        task_id="add", job_id=job_id, tasks=[{"id": "long", "command_line": "/bin/sh -c 'sleep 4'"}]
    ).execute(_ctx("add", uid))
    task_id = f"{result['task_id_prefix']}long"
    deadline = time.monotonic() + 20
    while hook.list_tasks(job_id, select=["id", "state"])[0]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (node,) = hook.list_nodes(spot_pool, select=["id"])
    local_azure_stack.batch.preempt_node(spot_pool, node["id"])

    sensor = BatchJobSensor(task_id="wait", job_id=job_id, task_id_prefix=result["task_id_prefix"])
    messages = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the eviction shows up within a poll or two
        check = sensor._check()
        messages.append(check.message)
        if "requeue" in check.message or check.status != "running":
            break
        time.sleep(0.1)
    assert "1 requeue(s) so far" in messages[-1], messages
    assert _wait(job_id, result["task_id_prefix"])["counts"]["succeeded"] == 1  # it ran again and finished
    (task,) = hook.list_tasks(job_id, select=["id", "executionInfo"])
    assert task["id"] == task_id and task["executionInfo"]["requeueCount"] == 1
    hook.delete_job(job_id)
    hook.delete_pool(spot_pool)
