"""Batch operators with a scripted hook: idempotency, validation before any write, small XComs."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.batch.task_factories import BlobPrefixTasks, ParametricSweep, TasksFromUpload
from airflow_batch_provider.exceptions import (
    BatchJobEndedError,
    BatchProviderError,
    BatchTaskFailureError,
    InvalidInputError,
)
from airflow_batch_provider.hooks.batch import AddTasksResult
from airflow_batch_provider.links.portal import BatchJobLink, portal_url
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.sensors.pool import BatchPoolSensor
from airflow_batch_provider.triggers.job import BatchJobTrigger
from airflow_batch_provider.triggers.pool import BatchPoolTrigger

SUPPORTED = [
    {
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    }
]


class FakeSettings:
    extras = {"subscription_id": "sub", "resource_group": "rg"}
    resolved_account_name = "acct"


class FakeHook:
    def __init__(self) -> None:
        self.settings = FakeSettings()
        self.pools: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.added: list[dict[str, Any]] = []
        self.calls: list[str] = []

    def list_supported_images(self, filter: str | None = None) -> list[dict[str, Any]]:
        self.calls.append("list_supported_images")
        return SUPPORTED

    def get_pool(self, pool_id: str, select: Any = None) -> dict[str, Any] | None:
        return self.pools.get(pool_id)

    def create_pool(self, spec: dict[str, Any]) -> bool:
        self.calls.append("create_pool")
        if spec["id"] in self.pools:
            return False
        self.pools[spec["id"]] = {**spec, "state": "active", "allocationState": "steady"}
        return True

    def delete_pool(self, pool_id: str, **kwargs: Any) -> str:
        self.calls.append("delete_pool")
        return "deleted" if self.pools.pop(pool_id, None) else "not_found"

    def list_nodes(self, pool_id: str, select: Any = None) -> list[dict[str, Any]]:
        pool = self.pools[pool_id]
        return [{"id": f"n{i}", "state": "idle"} for i in range(int(pool.get("targetDedicatedNodes") or 0))]

    def get_job(self, job_id: str, select: Any = None) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def create_job(self, spec: dict[str, Any]) -> bool:
        self.calls.append("create_job")
        if spec["id"] in self.jobs:
            return False
        self.jobs[spec["id"]] = {**spec, "state": "active"}
        return True

    def add_tasks(
        self, job_id: str, tasks: list[dict[str, Any]], max_concurrency: Any = None
    ) -> AddTasksResult:
        self.calls.append("add_tasks")
        known = {t["id"] for t in self.added}
        new = [t for t in tasks if t["id"] not in known]
        self.added.extend(new)
        return AddTasksResult(added=len(new), already_existed=len(tasks) - len(new), requests=1)


class FakeTI:
    def __init__(self, task_id: str = "add", map_index: int = -1) -> None:
        self.task_id = task_id
        self.dag_id = "etl"
        self.map_index = map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _context(ti: FakeTI | None = None) -> dict[str, Any]:
    return {"ti": ti or FakeTI(), "run_id": "manual__2026-01-01T00:00:00+00:00"}


def _with(op: Any, hook: FakeHook) -> Any:
    op.__dict__["hook"] = hook
    return op


# -- pools -------------------------------------------------------------------------------------------


def _pool_op(**kw: Any) -> BatchCreatePoolOperator:
    args: dict[str, Any] = dict(
        task_id="pool",
        pool_id="p1",
        vm_size="standard_d2s_v3",
        image="ubuntu-24.04",
        target_dedicated_nodes=2,
    )
    args.update(kw)
    return BatchCreatePoolOperator(**args)


def test_create_pool_resolves_alias_waits_and_returns_small_json() -> None:
    hook = FakeHook()
    ti = FakeTI("pool")
    result = _with(_pool_op(poll_interval=0), hook).execute(_context(ti))
    assert result == {
        "pool_id": "p1",
        "created": True,
        "recreated": False,
        "vm_size": "standard_d2s_v3",
        "task_slots_per_node": 1,
        "usable_nodes": 2,
    }
    assert hook.pools["p1"]["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 24.04"
    assert ti.xcoms["_link_BatchPoolLink"].endswith("/batchAccounts/acct/pools/p1")


def test_compatible_pool_is_reused() -> None:
    hook = FakeHook()
    _with(_pool_op(wait_for_completion=False), hook).execute(_context())
    result = _with(_pool_op(wait_for_completion=False, target_dedicated_nodes=5), hook).execute(_context())
    assert result["created"] is False and hook.calls.count("create_pool") == 1


def test_incompatible_pool_fails_listing_differences() -> None:
    hook = FakeHook()
    _with(_pool_op(wait_for_completion=False), hook).execute(_context())
    op = _with(_pool_op(wait_for_completion=False, vm_size="standard_d4s_v3", task_slots_per_node=4), hook)
    with pytest.raises(BatchProviderError) as info:
        op.execute(_context())
    assert "vmSize: existing 'standard_d2s_v3', requested 'standard_d4s_v3'" in str(info.value)
    assert "taskSlotsPerNode: existing 1, requested 4" in str(info.value)
    assert "if_exists='recreate'" in str(info.value)


def test_incompatible_pool_is_recreated_on_request() -> None:
    hook = FakeHook()
    _with(_pool_op(wait_for_completion=False), hook).execute(_context())
    op = _with(_pool_op(wait_for_completion=False, vm_size="standard_d4s_v3", if_exists="recreate"), hook)
    result = op.execute(_context())
    assert result["recreated"] is True and hook.pools["p1"]["vmSize"] == "standard_d4s_v3"


def test_if_exists_fail_refuses_an_existing_pool() -> None:
    hook = FakeHook()
    _with(_pool_op(wait_for_completion=False), hook).execute(_context())
    with pytest.raises(BatchProviderError, match="already exists and if_exists='fail'"):
        _with(_pool_op(wait_for_completion=False, if_exists="fail"), hook).execute(_context())


def test_pool_wait_failure_stops_with_a_clear_message() -> None:
    hook = FakeHook()
    hook.list_nodes = lambda pool_id, select=None: [{"id": "n0", "state": "unusable"}]  # type: ignore[method-assign]
    with pytest.raises(BatchProviderError, match="unusable"):
        _with(_pool_op(target_dedicated_nodes=1, poll_interval=0), hook).execute(_context())


@pytest.mark.parametrize("bad", [-1, 2.5, "1"])
def test_pool_wait_refuses_a_bad_reboot_budget_before_any_call(bad: Any) -> None:
    with pytest.raises(
        InvalidInputError, match="max_start_task_reboots must be a whole number of at least 0"
    ):
        _pool_op(max_start_task_reboots=bad)
    with pytest.raises(InvalidInputError, match="max_start_task_reboots"):
        BatchPoolSensor(task_id="wait", pool_id="p1", max_start_task_reboots=bad)


def test_pool_sensor_cannot_count_reboots_in_reschedule_mode() -> None:
    with pytest.raises(
        InvalidInputError, match="max_start_task_reboots needs mode='poke' or deferrable=True"
    ):
        BatchPoolSensor(task_id="wait", pool_id="p1", max_start_task_reboots=1, mode="reschedule")
    BatchPoolSensor(
        task_id="wait", pool_id="p1", max_start_task_reboots=1, mode="reschedule", deferrable=True
    )
    BatchPoolSensor(task_id="wait", pool_id="p1", mode="reschedule")  # no reboots: nothing to count


def test_deferred_pool_wait_hands_the_reboot_budget_to_the_trigger() -> None:
    hook = FakeHook()
    hook.list_nodes = lambda pool_id, select=None: [{"id": "n0", "state": "creating"}]  # type: ignore[method-assign]
    op = _with(_pool_op(target_dedicated_nodes=1, deferrable=True, max_start_task_reboots=3), hook)
    with pytest.raises(TaskDeferred) as info:
        op.execute(_context())
    _classpath, kwargs = info.value.trigger.serialize()
    assert kwargs["max_start_task_reboots"] == 3
    assert kwargs["start_task_reboots"] == {"counts": {}, "rebooted_for": {}}


@pytest.mark.parametrize("waiter", ["operator", "sensor"])
def test_a_reboot_checkpoint_defers_again_with_the_count_and_saves_it(waiter: str) -> None:
    from tests.support.state_store import MemoryTaskStateStore

    trigger = BatchPoolTrigger(
        pool_id="p1", max_start_task_reboots=2, checkpoint_each_reboot=True, timeout_at=time.time() + 600
    )
    trigger.reboots.record({"id": "n0", "startTaskInfo": {"exitCode": 1}})
    event = trigger.checkpoint_event()
    store = MemoryTaskStateStore()
    op = _pool_op(deferrable=True) if waiter == "operator" else BatchPoolSensor(task_id="w", pool_id="p1")
    with pytest.raises(TaskDeferred) as info:
        op.execute_complete({**_context(), "task_state_store": store}, event)
    again = info.value.trigger
    assert isinstance(again, BatchPoolTrigger) and again.reboots.counts == {"n0": 1}
    assert info.value.method_name == "execute_complete"
    assert info.value.timeout is not None and 600 < info.value.timeout.total_seconds() <= 660
    assert store.get(trigger.state_key) == {"start_task_reboots": trigger.reboots.to_json()}


def test_pool_spec_templates_render_nested_values() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        op = _pool_op(
            pool_id="{{ params.env }}-pool",
            metadata={"owner": "{{ params.env }}"},
            start_task={"command_line": "setup.sh {{ params.env }}"},
            pool_spec={"network_configuration": {"subnet_id": "{{ params.env }}-subnet"}},
        )
    op.render_template_fields({"params": {"env": "prod"}})
    assert op.pool_id == "prod-pool"
    assert op.metadata == {"owner": "prod"}
    assert op.start_task == {"command_line": "setup.sh prod"}
    assert op.pool_spec == {"network_configuration": {"subnet_id": "prod-subnet"}}


# -- jobs --------------------------------------------------------------------------------------------


def test_job_id_template_becomes_a_valid_id_and_retry_reuses_the_job() -> None:
    hook = FakeHook()
    hook.pools["p1"] = {"id": "p1"}
    op = BatchCreateJobOperator(
        task_id="job", job_id="etl-manual__2026-01-01T00:00:00+00:00", pool_id="p1", max_wall_clock_time=3600
    )
    first = _with(op, hook).execute(_context())
    assert first["created"] is True and ":" not in first["job_id"]
    assert hook.jobs[first["job_id"]]["constraints"] == {"maxWallClockTime": "PT1H"}
    again = _with(op, hook).execute(_context())
    assert again == {**first, "created": False}


def test_job_on_another_pool_is_not_reused() -> None:
    hook = FakeHook()
    hook.pools.update({"p1": {"id": "p1"}, "p2": {"id": "p2"}})
    _with(BatchCreateJobOperator(task_id="job", job_id="j", pool_id="p1"), hook).execute(_context())
    with pytest.raises(BatchProviderError, match=r"poolInfo\.poolId: existing 'p1', requested 'p2'"):
        _with(BatchCreateJobOperator(task_id="job", job_id="j", pool_id="p2"), hook).execute(_context())


# -- tasks -------------------------------------------------------------------------------------------


def _job_hook(slots: int = 1, wall_clock: str | None = None, deps: bool = False) -> FakeHook:
    hook = FakeHook()
    hook.pools["p1"] = {"id": "p1", "taskSlotsPerNode": slots}
    job: dict[str, Any] = {
        "id": "j",
        "state": "active",
        "poolInfo": {"poolId": "p1"},
        "usesTaskDependencies": deps,
    }
    if wall_clock:
        job["constraints"] = {"maxWallClockTime": wall_clock}
    hook.jobs["j"] = job
    return hook


def test_add_tasks_prefixes_ids_and_is_idempotent_on_retry() -> None:
    hook = _job_hook()
    op = BatchAddTasksOperator(
        task_id="add",
        job_id="j",
        tasks=[{"command_line": "echo 1"}, {"id": "named", "command_line": "echo 2"}],
        environment={"MODE": "test"},
    )
    result = _with(op, hook).execute(_context())
    prefix = result["task_id_prefix"]
    assert result == {
        "job_id": "j",
        "task_count": 2,
        "task_id_prefix": prefix,
        "added": 2,
        "already_existed": 0,
    }
    assert prefix.endswith("-") and len(json.dumps(result)) < 300
    assert [t["id"] for t in hook.added] == [f"{prefix}00000", f"{prefix}named"]
    assert hook.added[0]["environmentSettings"] == [{"name": "MODE", "value": "test"}]
    retry = _with(op, hook).execute(_context())
    assert (retry["added"], retry["already_existed"], retry["task_id_prefix"]) == (0, 2, prefix)


def test_mapped_instances_get_distinct_prefixes() -> None:
    hook = _job_hook()
    op = BatchAddTasksOperator(task_id="add", job_id="j", tasks=[{"command_line": "x"}])
    first = _with(op, hook).execute(_context(FakeTI(map_index=0)))
    second = _with(op, hook).execute(_context(FakeTI(map_index=1)))
    assert first["task_id_prefix"] != second["task_id_prefix"] and len(hook.added) == 2


def test_missing_job_fails_before_anything_is_added() -> None:
    hook = FakeHook()
    op = _with(BatchAddTasksOperator(task_id="add", job_id="nope", tasks=[{"command_line": "x"}]), hook)
    with pytest.raises(BatchProviderError, match="Job 'nope' does not exist"):
        op.execute(_context())


@pytest.mark.parametrize(
    ("kwargs", "hook_args", "message"),
    [
        ({"tasks": [{"command_line": "x", "required_slots": 4}]}, {"slots": 2}, "require more slots"),
        ({"tasks": [{"command_line": "x"}], "required_slots": 3}, {"slots": 2}, "require more slots"),
        ({"tasks": [{"command_line": ""}]}, {}, "empty command line"),
        (
            {"tasks": [{"id": "a", "command_line": "x"}, {"id": "A", "command_line": "y"}]},
            {},
            "more than once",
        ),
        (
            {"tasks": [{"id": "bad id", "command_line": "x"}], "prefix_task_ids": False},
            {},
            "characters Batch rejects",
        ),
        ({"tasks": [{"command_line": "x", "depends_on": {"task_ids": ["a"]}}]}, {}, "uses_task_dependencies"),
        ({"tasks": []}, {}, "no tasks to add"),
        (
            {"tasks": [{"command_line": "x"}], "sas_ttl": timedelta(hours=1)},
            {"wall_clock": "PT6H"},
            "sas_ttl",
        ),
        ({"tasks": [{"command_line": "x"}], "output_patterns": ["out/*"]}, {}, "needs output_container"),
    ],
)
def test_add_tasks_validation_happens_before_any_call(kwargs: dict, hook_args: dict, message: str) -> None:
    hook = _job_hook(**hook_args)
    op = _with(BatchAddTasksOperator(task_id="add", job_id="j", **kwargs), hook)
    with pytest.raises(InvalidInputError, match=message):
        op.execute(_context())
    assert "add_tasks" not in hook.calls


def test_user_sas_expiring_before_the_job_wall_clock_is_refused() -> None:
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = f"https://a.blob.core.windows.net/c/in.csv?se={soon}&sp=r&sig=SECRETSIG"
    hook = _job_hook(wall_clock="PT12H")
    op = _with(
        BatchAddTasksOperator(
            task_id="add",
            job_id="j",
            tasks=[{"command_line": "x", "resource_files": [{"http_url": url, "file_path": "in.csv"}]}],
        ),
        hook,
    )
    with pytest.raises(InvalidInputError, match=r"expires at .* before the tasks may still need it") as info:
        op.execute(_context())
    assert "SECRETSIG" not in str(info.value) and "add_tasks" not in hook.calls


class FakeBlobHook:
    def __init__(self) -> None:
        self.sas_calls: list[tuple[str, str, Any]] = []
        self.created: list[str] = []

    def create_container(self, container: str) -> bool:
        self.created.append(container)
        return True

    def list_blobs(self, container: str, prefix: str = "") -> list[Any]:
        names = ["in/a.csv", "in/b.csv", "in/skip.txt", "_airflow_manifests/x.json"]
        return [type("B", (), {"name": n})() for n in names if n.startswith(prefix)]

    def blob_url(self, container: str, blob: str) -> str:
        return f"https://acct.blob.core.windows.net/{container}/{blob}"

    def container_url(self, container: str) -> str:
        return f"https://acct.blob.core.windows.net/{container}"

    def get_container_sas_url(self, container: str, access: str = "read", *, expiry: Any = None) -> str:
        self.sas_calls.append((container, access, expiry))
        se = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.container_url(container)}?se={se}&sp={'rl' if access == 'read' else 'cw'}&sig=SIG"

    def resource_files(self, container: str, blob_prefix: str = "", **kwargs: Any) -> list[dict[str, str]]:
        return [
            {"storageContainerUrl": self.get_container_sas_url(container, "read", expiry=kwargs["expiry"])}
        ]


def test_blob_prefix_factory_makes_one_task_per_blob_with_sas_lasting_the_wall_clock() -> None:
    hook = _job_hook(wall_clock="PT6H")
    blob = FakeBlobHook()
    op = BatchAddTasksOperator(
        task_id="add",
        job_id="j",
        task_factory=BlobPrefixTasks("data", "python run.py {file_path}", prefix="in/", suffix=".csv"),
        common_resource_files=[{"container": "apps", "blob_prefix": "apps/", "file_path": "app"}],
        output_container="results",
        output_patterns=["out/*.parquet"],
    )
    op._blob_hooks["azblob_default"] = blob
    result = _with(op, hook).execute(_context())
    assert result["task_count"] == 2
    first = hook.added[0]
    assert first["commandLine"] == "python run.py a.csv"
    assert first["resourceFiles"][0]["storageContainerUrl"].startswith(
        "https://acct.blob.core.windows.net/apps?"
    )
    assert first["resourceFiles"][0]["filePath"] == "app"
    assert first["resourceFiles"][1]["httpUrl"].startswith(
        "https://acct.blob.core.windows.net/data/in/a.csv?se="
    )
    patterns = [(o["filePattern"], o["uploadOptions"]["uploadCondition"]) for o in first["outputFiles"]]
    assert patterns == [("out/*.parquet", "tasksuccess"), ("../std*.txt", "taskcompletion")]
    expiries = {expiry for _, _, expiry in blob.sas_calls}
    assert all(e >= datetime.now(timezone.utc) + timedelta(hours=8) for e in expiries)  # 6 h + 2 h margin
    assert "SIG" not in json.dumps(result)
    assert blob.created == ["results"]  # the output container exists before any task can upload


def test_tasks_from_upload_xcom() -> None:
    hook = _job_hook()
    blob = FakeBlobHook()
    upload = {
        "container": "data",
        "prefix": "in/",
        "container_url": "https://acct.blob.core.windows.net/data",
        "blobs": ["https://acct.blob.core.windows.net/data/in/x%20y.csv"],
    }
    op = BatchAddTasksOperator(
        task_id="add", job_id="j", task_factory=TasksFromUpload(upload, "cat {blob_name}")
    )
    op._blob_hooks["azblob_default"] = blob
    _with(op, hook).execute(_context())
    assert hook.added[0]["commandLine"] == "cat in/x y.csv"


def test_parametric_sweep_and_its_errors() -> None:
    sweep = ParametricSweep("sim --a {a} --b {b}", {"a": [1, 2], "b": ["x", "y", "z"]})
    tasks = sweep.build()
    assert len(tasks) == 6 and tasks[5]["commandLine"] == "sim --a 2 --b z" and tasks[5]["id"] == "00005"
    with pytest.raises(InvalidInputError, match="not parameters"):
        ParametricSweep("sim {c}", {"a": [1]}).build()
    with pytest.raises(InvalidInputError, match="non-empty list"):
        ParametricSweep("sim {a}", {"a": []}).build()


def test_factory_fields_are_templated() -> None:
    with DAG("d2", schedule=None, start_date=datetime(2026, 1, 1)):
        op = BatchAddTasksOperator(
            task_id="add",
            job_id="{{ params.job }}",
            task_factory=ParametricSweep("run {{ params.mode }} {a}", {"a": [1]}),
            tasks=[{"command_line": "echo {{ params.mode }}"}],
        )
    op.render_template_fields({"params": {"job": "j", "mode": "fast"}})
    assert op.job_id == "j"
    assert op.task_factory.command_line == "run fast {a}"
    assert op.tasks == [{"command_line": "echo fast"}]


def test_add_tasks_can_be_mapped() -> None:
    with DAG("d3", schedule=None, start_date=datetime(2026, 1, 1)):
        mapped = BatchAddTasksOperator.partial(task_id="add", job_id="j").expand(
            tasks=[[{"command_line": "a"}], [{"command_line": "b"}]]
        )
    assert mapped.task_id == "add"


# -- sensor ------------------------------------------------------------------------------------------


def test_sensor_defers_with_json_trigger_and_persists_link_first(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = BatchJobSensor(task_id="wait", job_id="j", task_id_prefix="p-", deferrable=True, timeout=600)
    hook = FakeHook()
    sensor.__dict__["hook"] = hook

    class Running:
        status = "running"
        changed = True
        counts = TaskCounts(active=1)
        message = "0/1 completed"

        def to_event(self) -> dict[str, Any]:
            return {"status": "running"}

    monkeypatch.setattr(BatchJobSensor, "_check", lambda self: Running())
    ti = FakeTI("wait")
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(_context(ti))
    trigger = info.value.trigger
    assert isinstance(trigger, BatchJobTrigger) and trigger.task_id_prefix == "p-"
    assert ti.xcoms["_link_BatchJobLink"].endswith("/jobs/j")


def test_sensor_event_handling() -> None:
    sensor = BatchJobSensor(task_id="wait", job_id="j")
    ok = sensor.execute_complete(
        {}, {"status": "success", "job_id": "j", "counts": {"completed": 1}, "message": ""}
    )
    assert ok["job_id"] == "j" and ok["failed_count"] == 0
    failed = {
        "status": "failed",
        "job_id": "j",
        "message": "1 task(s) failed in job j:\n  - t1: exit code 3",
        "failed_tasks": [{"id": "t1", "exit_code": 3}],
        "failed_count": 1,
    }
    with pytest.raises(BatchTaskFailureError, match="t1: exit code 3"):
        sensor.execute_complete({}, failed)
    lenient = BatchJobSensor(task_id="wait2", job_id="j", fail_on_task_failure=False)
    assert lenient.execute_complete({}, failed)["failed_task_ids"] == ["t1"]
    ended = {"status": "failed", "reason": "job_ended", "message": "Job 'j' ended (completed, reason X)"}
    with pytest.raises(BatchJobEndedError, match="reason X"):
        sensor.execute_complete({}, ended)
    with pytest.raises(AirflowSensorTimeout, match="Last status"):
        sensor.execute_complete({}, {"status": "timeout", "message": "Timed out. Last status: 0/3"})


def test_portal_url_needs_subscription_and_group() -> None:
    settings = FakeSettings()
    assert portal_url(settings, "jobs", "j") == (  # type: ignore[arg-type]
        "https://portal.azure.com/#resource/subscriptions/sub/resourceGroups/rg/providers/"
        "Microsoft.Batch/batchAccounts/acct/jobs/j"
    )
    settings.extras = {}
    assert portal_url(settings, "jobs", "j") is None  # type: ignore[arg-type]
    assert BatchJobLink().xcom_key == "_link_BatchJobLink"


def test_identity_reference_replaces_sas() -> None:
    hook = _job_hook()
    blob = FakeBlobHook()
    identity = {"resource_id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/x/id"}
    op = BatchAddTasksOperator(
        task_id="add",
        job_id="j",
        task_factory=BlobPrefixTasks("data", "run {file_path}", prefix="in/", suffix=".csv"),
        common_resource_files=[{"container": "apps", "blob_prefix": "apps/"}],
        output_container="results",
        identity_reference=identity,
    )
    op._blob_hooks["azblob_default"] = blob
    _with(op, hook).execute(_context())
    assert blob.sas_calls == []  # nothing minted
    task = hook.added[0]
    assert task["resourceFiles"][0] == {
        "storageContainerUrl": "https://acct.blob.core.windows.net/apps",
        "identityReference": {"resourceId": identity["resource_id"]},
        "blobPrefix": "apps/",
    }
    assert task["resourceFiles"][1]["identityReference"] == {"resourceId": identity["resource_id"]}
    destination = task["outputFiles"][0]["destination"]["container"]
    assert destination["containerUrl"] == "https://acct.blob.core.windows.net/results"
    assert destination["identityReference"] == {"resourceId": identity["resource_id"]}


# -- hardening: collisions, durations and ids (issue 14) --------------------------------------------


def test_two_output_patterns_landing_on_one_blob_fail_before_anything_is_created() -> None:
    # Regression: "a/result.json" and "b/result.json" both went to <task>/result.json.
    hook = _job_hook()
    blob = FakeBlobHook()
    op = BatchAddTasksOperator(
        task_id="add",
        job_id="j",
        tasks=[{"command_line": "x"}],
        output_container="results",
        output_patterns=["a/result.json", "b/result.json"],
    )
    op._blob_hooks["azblob_default"] = blob
    with pytest.raises(InvalidInputError, match=r"'a/result\.json' and 'b/result\.json'.*overwrite"):
        _with(op, hook).execute(_context())
    assert "add_tasks" not in hook.calls and blob.created == []


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (
            lambda: BatchCreateJobOperator(
                task_id="j", job_id="j", pool_id="p1", max_wall_clock_time=float("nan")
            ),
            "max_wall",
        ),
        (
            lambda: BatchCreateJobOperator(task_id="j", job_id="j", pool_id="p1", max_wall_clock_time=1e300),
            "max_wall",
        ),
        (
            lambda: BatchCreateJobOperator(
                task_id="j", job_id="j", pool_id="p1", max_wall_clock_time="P99999999999999999999D"
            ),
            "max_wall_clock_time",
        ),
        (lambda: _pool_op(wait_for_completion=True, wait_timeout=float("inf")), "wait_timeout"),
        (lambda: _pool_op(wait_for_completion=True, poll_interval=float("nan")), "poll_interval"),
        (
            lambda: BatchAddTasksOperator(
                task_id="add", job_id="j", tasks=[{"command_line": "x"}], sas_ttl=float("inf")
            ),
            "sas_ttl",
        ),
        (
            lambda: BatchAddTasksOperator(
                task_id="add", job_id="j", tasks=[{"command_line": "x"}], queue_margin=timedelta(days=10**8)
            ),
            "queue_margin",
        ),
        (
            lambda: BatchAddTasksOperator(
                task_id="add",
                job_id="j",
                tasks=[{"command_line": "x", "constraints": {}}],
                constraints={"max_wall_clock_time": float("nan")},
            ),
            "maxWallClockTime",
        ),
    ],
)
def test_durations_that_overflow_or_are_not_numbers_name_the_field(make: Any, field: str) -> None:
    # Regression: these raised a raw OverflowError or ValueError from timedelta.
    hook = _job_hook()
    hook.pools["p1"] = {"id": "p1", "taskSlotsPerNode": 1}
    with pytest.raises(InvalidInputError, match=field):
        _with(make(), hook).execute(_context())
    assert not {"create_pool", "create_job", "add_tasks"} & set(hook.calls)


def test_a_task_id_ending_in_a_newline_is_refused_before_any_call() -> None:
    hook = _job_hook()
    op = BatchAddTasksOperator(
        task_id="add", job_id="j", tasks=[{"id": "x\n", "command_line": "x"}], prefix_task_ids=False
    )
    with pytest.raises(InvalidInputError, match="characters Batch rejects"):
        _with(op, hook).execute(_context())
    assert "add_tasks" not in hook.calls


def test_an_id_ending_in_a_newline_becomes_a_distinct_valid_id() -> None:
    hook = FakeHook()
    hook.pools["p1"] = {"id": "p1"}
    first = _with(BatchCreateJobOperator(task_id="j", job_id="x", pool_id="p1"), hook).execute(_context())
    second = _with(BatchCreateJobOperator(task_id="j", job_id="x\n", pool_id="p1"), hook).execute(_context())
    assert first["job_id"] == "x" and second["job_id"] != "x" and "\n" not in second["job_id"]
