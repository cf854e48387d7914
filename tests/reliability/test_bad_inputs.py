"""A catalog of bad inputs, across every operator and both connection types.

Each case must fail with a message that names the field at fault and says how to fix it. After each
case the suite compares the state of both services with the state before: a case must not create
anything (no pool, job, task, container or blob), and must not lose anything that was there (the
catalog's own pool, job, task, container and blob). Inputs that can be checked locally are checked
before the first request that changes anything, so they too leave the services untouched.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ResourceTypes,
    generate_account_sas,
)

from airflow_batch_provider.exceptions import BatchProviderError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import (
    BatchCreateJobOperator,
    BatchDeleteJobOperator,
    BatchTerminateJobOperator,
)
from airflow_batch_provider.operators.output import BatchCollectTaskOutputOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.storage import (
    BlobDownloadFilesOperator,
    BlobUploadApplicationFilesOperator,
    BlobUploadFilesOperator,
)
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

POOL = "catalog-pool"
OTHER_POOL = "catalog-other-pool"
JOB = "catalog-job"
KEPT_TASK = "keep-me"
CONTAINER = "catalog-data"
KEPT_BLOB = "existing/a.csv"
#: A made-up service principal secret: it must never show up in a log, XCom or rendered field.
FAKE_CLIENT_SECRET = "fake-sp-secret-Zq8~xW3vN0pL5tR7"
WRONG_KEY = base64.b64encode(b"this is not the account key at all").decode()


def _expired_sas(stack: LocalAzureStack) -> str:
    return generate_account_sas(
        stack.azurite.account_name,
        stack.azurite.account_key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, list=True, create=True),
        expiry=datetime.now(timezone.utc) - timedelta(hours=1),
        start=datetime.now(timezone.utc) - timedelta(hours=2),
    )


def bad_connections(stack: LocalAzureStack) -> dict[str, dict[str, Any]]:
    """Connections that are wrong in one way each (``AIRFLOW_CONN_<ID>`` JSON)."""
    batch_host = stack.batch.endpoint
    blob_url = f"http://{stack.azurite.host}:{stack.azurite.port}/{stack.azurite.account_name}"
    service_principal = {"tenant_id": "tenant-1", "client_id": "app-1", "client_secret": FAKE_CLIENT_SECRET}
    account = stack.azurite.account_name
    return {
        "blob_wrong_key": {"conn_type": "azblob", "host": blob_url, "login": account, "password": WRONG_KEY},
        "blob_expired_sas": {
            "conn_type": "azblob",
            "host": blob_url,
            "login": account,
            "extra": {"sas_token": _expired_sas(stack)},
        },
        "blob_two_modes": {
            "conn_type": "azblob",
            "extra": {"connection_string": stack.azurite.connection_string, **service_principal},
        },
        "blob_sp_over_http": {
            "conn_type": "azblob",
            "host": blob_url,
            "login": account,
            "extra": service_principal,
        },
        "blob_sp_no_tenant": {
            "conn_type": "azblob",
            "host": blob_url,
            "extra": {"client_id": "app-1", "client_secret": FAKE_CLIENT_SECRET},
        },
        "blob_unknown_auth": {"conn_type": "azblob", "host": blob_url, "extra": {"auth_type": "magic"}},
        "batch_wrong_key": {
            "conn_type": "azbatch",
            "host": batch_host,
            "login": stack.batch.account_name,
            "password": WRONG_KEY,
        },
        "batch_key_and_secret": {
            "conn_type": "azbatch",
            "host": batch_host,
            "login": stack.batch.account_name,
            "password": stack.batch.account_key,
            "extra": service_principal,
        },
        "batch_sp_over_http": {"conn_type": "azbatch", "host": batch_host, "extra": service_principal},
        "batch_sas": {"conn_type": "azbatch", "host": batch_host, "extra": {"sas_token": "sv=2025&sig=abc"}},
        "batch_no_host": {
            "conn_type": "azbatch",
            "login": stack.batch.account_name,
            "password": stack.batch.account_key,
        },
    }


@dataclass
class Env:
    stack: LocalAzureStack
    tmp: Path
    context: dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Env], Any]
    #: Phrases the error message must contain (case-insensitive): the field, and the fix.
    expect: tuple[str, ...]
    #: The error type the user catches.
    error: type[Exception] = BatchProviderError


def _execute(operator_class: type[Any], **kwargs: Any) -> Callable[[Env], Any]:
    """Build the operator when the case runs (a fresh hook for the connections of that moment)."""
    return lambda env: operator_class(**kwargs).execute(env.context)


def _pool(**kwargs: Any) -> Callable[[Env], Any]:
    args: dict[str, Any] = {
        "task_id": "create_pool",
        "pool_id": f"catalog-new-{uuid.uuid4().hex[:6]}",
        "vm_size": "standard_d2s_v3",
        "target_dedicated_nodes": 1,
        "poll_interval": 0.1,
        "timeout": 30,
    }
    args.update(kwargs)
    return _execute(BatchCreatePoolOperator, **args)


def _job(**kwargs: Any) -> Callable[[Env], Any]:
    args: dict[str, Any] = {"task_id": "create_job", "job_id": f"catalog-new-{uuid.uuid4().hex[:6]}"}
    args.update(kwargs)
    args.setdefault("pool_id", POOL)
    return _execute(BatchCreateJobOperator, **args)


def _add(tasks: Any = None, **kwargs: Any) -> Callable[[Env], Any]:
    args: dict[str, Any] = {"task_id": "add_tasks", "job_id": JOB, "tasks": tasks}
    args.update(kwargs)
    return _execute(BatchAddTasksOperator, **args)


def _upload(source: str, **kwargs: Any) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        args: dict[str, Any] = {"task_id": "upload", "container": CONTAINER, "prefix": "new/"}
        args.update(kwargs)
        return BlobUploadFilesOperator(source=source.format(tmp=env.tmp), **args).execute(env.context)

    return run


def _download(**kwargs: Any) -> Callable[[Env], Any]:
    def run(env: Env) -> Any:
        args: dict[str, Any] = {"task_id": "download", "container": CONTAINER, "prefix": "existing/"}
        args.update(kwargs)
        args.setdefault("local_dir", str(env.tmp / "downloads"))
        return BlobDownloadFilesOperator(**args).execute(env.context)

    return run


def _raw_collection(count: int, command: str = "/bin/true") -> Callable[[Env], Any]:
    """An explicit add-collection request, bypassing the operator's chunking: the service's limits."""

    def run(env: Env) -> Any:
        from azure.batch import models

        tasks = [{"id": f"raw-{index}", "commandLine": command} for index in range(count)]
        hook = BatchHook()
        try:
            return hook.client.create_task_collection(JOB, models.BatchTaskGroup({"value": tasks}))
        finally:
            hook.close()

    return run


def _task(task_id: str = "one", **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "command_line": "/bin/true", **fields}


CASES: list[Case] = [
    # -- storage operators ---------------------------------------------------------------------------
    Case(
        "container with capitals",
        _upload("{tmp}/inputs/*.csv", container="Catalog_Data"),
        ("container", "lower-case"),
    ),
    Case("container too short", _upload("{tmp}/inputs/*.csv", container="ab"), ("container", "3 to 63")),
    Case(
        "container with a double hyphen",
        _upload("{tmp}/inputs/*.csv", container="data--in"),
        ("container", "hyphen"),
    ),
    Case("glob matching nothing", _upload("{tmp}/inputs/*.parquet"), ("matches no files", "fail_on_empty")),
    Case("missing local file", _upload("{tmp}/inputs/missing.csv"), ("missing.csv", "does not exist")),
    Case("empty source", _upload(""), ("source", "local file, directory or glob")),
    Case("prefix escaping the container", _upload("{tmp}/inputs/*.csv", prefix="../up"), ("prefix", "..")),
    Case(
        "application file mode not octal",
        lambda env: BlobUploadApplicationFilesOperator(
            task_id="app", source=str(env.tmp / "inputs" / "a.csv"), container=CONTAINER, file_mode="rwx"
        ).execute(env.context),
        ("file_mode", "0755"),
    ),
    Case(
        "upload concurrency zero",
        _upload("{tmp}/inputs/*.csv", max_concurrency=0),
        ("max_concurrency", "positive integer"),
    ),
    Case("download without a local directory", _download(local_dir=""), ("local_dir", "directory")),
    Case("download from an invalid container", _download(container="UPPER"), ("container", "lower-case")),
    Case(
        "download from a missing container",
        _download(container="no-such-container"),
        ("no-such-container", "does not exist"),
    ),
    # -- blob connections ----------------------------------------------------------------------------
    Case(
        "blob: wrong account key",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="blob_wrong_key"),
        ("blob_wrong_key", "key"),
    ),
    Case(
        "blob: expired SAS token",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="blob_expired_sas"),
        ("blob_expired_sas", "sas_token", "expired"),
    ),
    Case(
        "blob: connection string and client secret",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="blob_two_modes"),
        ("connection_string", "client_secret", "auth_type"),
    ),
    Case(
        "blob: service principal over http",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="blob_sp_over_http"),
        ("blob_sp_over_http", "https"),
    ),
    Case(
        "blob: client secret without tenant",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="blob_sp_no_tenant"),
        ("tenant_id",),
    ),
    Case(
        "blob: unknown auth_type",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="blob_unknown_auth"),
        ("auth_type", "magic", "use one of"),
    ),
    Case(
        "blob: missing connection",
        _upload("{tmp}/inputs/*.csv", azblob_conn_id="no_such_conn"),
        ("no_such_conn",),
        AirflowNotFoundException,
    ),
    # -- pools ---------------------------------------------------------------------------------------
    Case("pool: empty id", _pool(pool_id=" "), ("empty", "non-empty")),
    Case("pool: no VM size", _pool(vm_size=""), ("vm_size", "standard_d2s_v3")),
    Case(
        "pool: unknown VM size",
        _pool(vm_size="standard_imaginary_v9"),
        ("vmSize", "standard_imaginary_v9", "Fix vmSize"),
    ),
    Case("pool: unknown image alias", _pool(image="windows-95"), ("image", "windows-95")),
    Case("pool: image given as a JSON string", _pool(image='{"publisher": "canonical"}'), ("image", "dict")),
    Case(
        "pool: node counts and autoscale",
        _pool(auto_scale_formula="$TargetDedicatedNodes=1"),
        ("auto_scale_formula", "target_dedicated_nodes"),
    ),
    Case("pool: no size at all", _pool(target_dedicated_nodes=None), ("target_dedicated_nodes",)),
    Case(
        "pool: node count not a number",
        _pool(target_dedicated_nodes="two"),
        ("target_dedicated_nodes", "whole number"),
    ),
    Case("pool: unknown if_exists", _pool(if_exists="maybe"), ("if_exists", "reuse")),
    Case(
        "pool: negative start task reboots",
        _pool(max_start_task_reboots=-1),
        ("max_start_task_reboots", "at least 0"),
    ),
    Case(
        "pool: existing pool with another configuration",
        _pool(pool_id=POOL, task_slots_per_node=8),
        ("taskSlotsPerNode", "recreate"),
    ),
    Case(
        "pool: start task files without a command",
        _pool(start_task_resource_files=[{"container": CONTAINER, "blob_prefix": "existing/"}]),
        ("start_task_resource_files", "commandLine"),
    ),
    # -- jobs ----------------------------------------------------------------------------------------
    Case("job: pool does not exist", _job(pool_id="no-such-pool"), ("no-such-pool", "pool_id")),
    Case("job: unknown if_exists", _job(if_exists="always"), ("if_exists", "reuse")),
    Case(
        "job: existing job on another pool",
        _job(job_id=JOB, pool_id=OTHER_POOL),
        ("catalog-job", "pool"),
    ),
    Case("job: priority out of range", _job(priority=5000), ("priority", "-1000", "1000")),
    Case(
        "job: max wall clock overflows",
        _job(max_wall_clock_time="P99999999999999999999D"),
        ("max_wall_clock_time", "too long"),
    ),
    Case(
        "job: max wall clock not a duration",
        _job(max_wall_clock_time="soon"),
        ("max_wall_clock_time", "soon"),
    ),
    # -- tasks ---------------------------------------------------------------------------------------
    Case(
        "tasks: job does not exist",
        _add([_task()], job_id="no-such-job"),
        ("no-such-job", "BatchCreateJobOperator"),
    ),
    Case("tasks: duplicate ids", _add([_task("same"), _task("same")]), ("same", "more than once", "own id")),
    Case("tasks: ids differing only in case", _add([_task("Part"), _task("part")]), ("part", "case")),
    Case(
        "tasks: more slots than a node has",
        _add([_task(required_slots=4)]),
        ("requiredSlots", "taskSlotsPerNode=2"),
    ),
    Case("tasks: empty command line", _add([{"id": "blank", "command_line": "  "}]), ("command", "blank")),
    Case("tasks: invalid task id", _add([_task("bad id!")], prefix_task_ids=False), ("bad id!", "hyphens")),
    Case(
        "tasks: oversized task",
        _add([_task(environment_settings=[{"name": "BIG", "value": "x" * 1_100_000}])]),
        ("one", "1 MB", "resource files"),
    ),
    Case(
        "tasks: a dict instead of a list", _add({"id": "t", "command_line": "/bin/true"}), ("tasks", "list")
    ),
    Case("tasks: nothing to add", _add(None), ("tasks=", "task_factory")),
    Case(
        "tasks: dependencies on a job without them",
        _add([_task("a"), _task("b", depends_on={"task_ids": ["a"]})]),
        ("dependsOn", "uses_task_dependencies"),
    ),
    Case(
        "tasks: output patterns without a container",
        _add([_task()], output_patterns=["out/*"]),
        ("output_patterns", "output_container"),
    ),
    Case(
        "tasks: SAS shorter than the job may run",
        _add([_task()], output_container=CONTAINER, sas_ttl=60),
        ("sas_ttl", "max_wall_clock_time"),
    ),
    Case(
        "tasks: two output patterns to one blob",
        _add([_task()], output_container=CONTAINER, output_patterns=["a/result.json", "b/result.json"]),
        ("a/result.json", "b/result.json", "overwrite", "wildcard"),
    ),
    Case(
        "tasks: task id ending in a newline",
        _add([_task("one\n")], prefix_task_ids=False),
        ("'one\\n'", "hyphens"),
    ),
    Case(
        "tasks: queue margin not a number",
        _add([_task()], output_container=CONTAINER, queue_margin=float("nan")),
        ("queue_margin", "finite"),
    ),
    Case(
        "tasks: invalid output container",
        _add([_task()], output_container="Out_Put"),
        ("output_container", "lower-case"),
    ),
    Case("tasks: 101 tasks in one explicit collection", _raw_collection(101), ("100",), HttpResponseError),
    # -- monitoring, output and cleanup --------------------------------------------------------------
    Case(
        "sensor: job does not exist",
        _execute(BatchJobSensor, task_id="wait", job_id="no-such-job", poke_interval=0.1, timeout=5),
        ("no-such-job", "job id"),
    ),
    Case(
        "collect: unknown which",
        _execute(BatchCollectTaskOutputOperator, task_id="collect", job_id=JOB, which="some"),
        ("which", "failed", "all"),
    ),
    Case(
        "terminate: empty job id",
        _execute(BatchTerminateJobOperator, task_id="terminate", job_id=""),
        ("empty", "non-empty"),
    ),
    Case(
        "delete job: empty job id",
        _execute(BatchDeleteJobOperator, task_id="delete", job_id=""),
        ("empty", "non-empty"),
    ),
    Case(
        "delete pool: empty pool id",
        _execute(BatchDeletePoolOperator, task_id="delete", pool_id=""),
        ("empty", "non-empty"),
    ),
    # -- batch connections ---------------------------------------------------------------------------
    Case("batch: wrong account key", _pool(azbatch_conn_id="batch_wrong_key"), ("batch_wrong_key", "key")),
    Case(
        "batch: account key and client secret",
        _job(azbatch_conn_id="batch_key_and_secret"),
        ("password", "client_secret", "auth_type"),
    ),
    Case(
        "batch: service principal over http",
        _job(azbatch_conn_id="batch_sp_over_http"),
        ("batch_sp_over_http", "https"),
    ),
    Case(
        "batch: SAS token",
        _add([_task()], azbatch_conn_id="batch_sas"),
        ("sas_token", "batch", "account key"),
    ),
    Case("batch: no account URL", _job(azbatch_conn_id="batch_no_host"), ("batch_no_host", "host")),
]


def snapshot(stack: LocalAzureStack) -> dict[str, Any]:
    """Everything both services hold (Storage read directly from Azurite, not through the proxy)."""

    def batch_state(account: Any) -> dict[str, Any]:
        return {
            "pools": sorted(
                (pool.id, pool.to_dict()["vmSize"], pool.to_dict().get("taskSlotsPerNode"))
                for pool in account.pools.all()
            ),
            "jobs": sorted((job.id, job.pool_id) for job in account.jobs.all()),
            "tasks": sorted(
                (job.id, task.id) for job in account.jobs.all() for task in account.tasks.all(job.id)
            ),
        }

    state = stack.batch.call(batch_state)
    with BlobServiceClient.from_connection_string(stack.azurite.connection_string) as service:
        state["blobs"] = sorted(
            (container.name, blob.name)
            for container in service.list_containers()
            for blob in service.get_container_client(container.name).list_blobs()
        )
        state["containers"] = sorted(container.name for container in service.list_containers())
    return state


@contextmanager
def catalog_env(stack: LocalAzureStack, tmp: Path) -> Iterator[Env]:
    """Create the pre-existing resources every case must leave alone, and the bad connections."""
    (tmp / "inputs").mkdir(parents=True, exist_ok=True)
    (tmp / "inputs" / "a.csv").write_text("value\n1\n")
    context = task_context("manual__catalog")
    for pool_id in (POOL, OTHER_POOL):
        BatchCreatePoolOperator(
            task_id="pool",
            pool_id=pool_id,
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=1,
            task_slots_per_node=2,
            poll_interval=0.1,
        ).execute(context)
    BatchCreateJobOperator(task_id="job", job_id=JOB, pool_id=POOL).execute(context)
    BatchAddTasksOperator(
        task_id="add",
        job_id=JOB,
        tasks=[{"id": KEPT_TASK, "command_line": "/bin/true"}],
        prefix_task_ids=False,
    ).execute(context)
    with BlobServiceClient.from_connection_string(stack.azurite.connection_string) as service:
        container = service.get_container_client(CONTAINER)
        if not container.exists():
            container.create_container()
        container.upload_blob(KEPT_BLOB, b"value\n1\n", overwrite=True)
    patch = pytest.MonkeyPatch()
    for conn_id, connection in bad_connections(stack).items():
        patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    try:
        yield Env(stack, tmp, context)
    finally:
        patch.undo()
        hook = BatchHook()
        hook.delete_job(JOB, wait=True, poll_interval=0.05)
        for pool_id in (POOL, OTHER_POOL):
            hook.delete_pool(pool_id, wait=True, poll_interval=0.05)
        hook.close()


@pytest.fixture(scope="module")
def catalog(faulty_stack: LocalAzureStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with catalog_env(faulty_stack, tmp_path_factory.mktemp("catalog")) as env:
        yield env


def test_the_catalog_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_named_with_its_fix_and_changes_nothing(catalog: Env, case: Case) -> None:
    before = snapshot(catalog.stack)
    assert (POOL, "standard_d2s_v3", 2) in before["pools"] and (JOB, KEPT_TASK) in before["tasks"]
    assert (CONTAINER, KEPT_BLOB) in before["blobs"]
    with pytest.raises(case.error) as info:
        case.run(catalog)
    message = str(info.value)
    missing = [phrase for phrase in case.expect if phrase.lower() not in message.lower()]
    assert not missing, f"{type(info.value).__name__}: {message!r} does not mention {missing}"
    assert snapshot(catalog.stack) == before
