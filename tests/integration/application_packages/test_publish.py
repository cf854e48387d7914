"""Publishing application packages through the emulated Resource Manager, and using them on nodes."""

from __future__ import annotations

import json
import shlex
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.storage.blob import BlobClient

from airflow_batch_provider.exceptions import ApplicationPackageConflictError, ConnectionConfigError
from airflow_batch_provider.hooks.batch_management import CONTENT_HASH_TAG, BatchManagementHook
from airflow_batch_provider.operators.application import BatchPublishApplicationPackageOperator
from airflow_batch_provider.testing.stack import LocalAzureStack
from tests.integration.application_packages.conftest import ARM_CONN_ID

pytestmark = pytest.mark.integration
T = TypeVar("T")

UBUNTU = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04",
)


def _wait(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.05)


def _completed(batch: BatchClient, job_id: str, task_id: str) -> m.BatchTask | None:
    task = batch.get_task(job_id, task_id)
    return task if task.state == "completed" else None


def _app_dir(root: Path, text: str) -> Path:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "bin" / "hello.txt").write_text(text)
    (root / "bin" / "run.sh").write_text('#!/bin/sh\ncat "$(dirname "$0")/hello.txt"\n')
    (root / "bin" / "run.sh").chmod(0o755)
    return root


def _publish(app_id: str, source: Path, version: str = "1.0", **kwargs: Any) -> dict[str, str]:
    operator = BatchPublishApplicationPackageOperator(
        task_id="publish",
        application_id=app_id,
        version=version,
        source=str(source),
        azbatch_conn_id=ARM_CONN_ID,
        **kwargs,
    )
    return operator.execute({})


def _package_writes(stack: LocalAzureStack, app_id: str) -> list[tuple[str, str]]:
    """Requests that create or activate a version of ``app_id`` (what an upload needs)."""
    return [
        (method, path)
        for method, path in stack.batch.management_request_log
        if f"/applications/{app_id}/versions/" in path and method in ("PUT", "POST")
    ]


def test_publish_then_republish_uploads_nothing(
    stack: LocalAzureStack, arm_hook: BatchManagementHook, batch: BatchClient, app_id: str, tmp_path: Path
) -> None:
    source = _app_dir(tmp_path / "app", "hello from the package")
    reference = _publish(app_id, source, display_name="Hello tool")
    assert reference == {"applicationId": app_id, "version": "1.0"}

    package = arm_hook.get_package(app_id, "1.0")
    assert package is not None
    assert package["properties"]["state"] == "Active"
    storage_url = package["properties"]["storageUrl"]
    blob = BlobClient.from_blob_url(storage_url).get_blob_properties()
    assert blob.metadata["content_sha256"] == package["tags"][CONTENT_HASH_TAG]
    # The data plane sees the activated version and the display name.
    application = batch.get_application(app_id)
    assert (application.display_name, application.versions) == ("Hello tool", ["1.0"])
    assert app_id in [app.id for app in batch.list_applications()]
    writes = _package_writes(stack, app_id)
    assert [method for method, _ in writes] == ["PUT", "POST"]

    # Same files, copied elsewhere with new timestamps: same zip bytes, so nothing happens.
    copy = shutil.copytree(source, tmp_path / "copy")
    assert _publish(app_id, copy, display_name="Hello tool") == reference
    assert _package_writes(stack, app_id) == writes
    assert BlobClient.from_blob_url(storage_url).get_blob_properties().etag == blob.etag


def test_different_content_is_a_conflict_unless_overwritten(
    stack: LocalAzureStack, arm_hook: BatchManagementHook, app_id: str, tmp_path: Path
) -> None:
    _publish(app_id, _app_dir(tmp_path / "v1", "first"))
    changed = _app_dir(tmp_path / "v2", "second")
    with pytest.raises(ApplicationPackageConflictError, match="already holds content with SHA-256") as info:
        _publish(app_id, changed)
    assert "overwrite=True" in str(info.value)

    before = arm_hook.get_package(app_id, "1.0")
    assert before is not None
    _publish(app_id, changed, overwrite=True)
    after = arm_hook.get_package(app_id, "1.0")
    assert after is not None
    assert after["tags"][CONTENT_HASH_TAG] != before["tags"][CONTENT_HASH_TAG]
    resolved = stack.batch.call(
        lambda account: account.applications.source.resolve({"applicationId": app_id, "version": "1.0"})
    )
    with zipfile.ZipFile(resolved.zip_path) as archive:
        assert archive.read("bin/hello.txt") == b"second"

    # An application that does not allow updates cannot be overwritten.
    arm_hook.update_application(app_id, allow_updates=False)
    with pytest.raises(ApplicationPackageConflictError, match="does not allow updates"):
        _publish(app_id, _app_dir(tmp_path / "v3", "third"), overwrite=True)


def test_an_existing_zip_and_the_default_version(
    arm_hook: BatchManagementHook, app_id: str, tmp_path: Path
) -> None:
    archive = tmp_path / "given.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("hello.txt", "zipped")
    _publish(app_id, archive, version="1.0", set_default=True)
    assert arm_hook.get_application(app_id)["properties"]["defaultVersion"] == "1.0"  # type: ignore[index]
    _publish(app_id, _app_dir(tmp_path / "v2", "two"), version="2.0")
    assert arm_hook.get_application(app_id)["properties"]["defaultVersion"] == "1.0"  # type: ignore[index]
    _publish(app_id, _app_dir(tmp_path / "v2", "two"), version="2.0", set_default=True)
    assert arm_hook.get_application(app_id)["properties"]["defaultVersion"] == "2.0"  # type: ignore[index]


def test_tasks_use_packages_by_version_and_default(batch: BatchClient, app_id: str, tmp_path: Path) -> None:
    _publish(app_id, _app_dir(tmp_path / "v1", "version one"), version="1.0")
    _publish(app_id, _app_dir(tmp_path / "v2", "version two"), version="2.0", set_default=True)
    pool_id, job_id = f"pool-{app_id}", f"job-{app_id}"
    batch.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=UBUNTU,
            target_dedicated_nodes=1,
        )
    )
    _wait(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "idle"])
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    variable = app_id.replace("-", "_")
    versioned = f"AZ_BATCH_APP_PACKAGE_{variable}_1_0"
    default = f"AZ_BATCH_APP_PACKAGE_{variable}"
    tasks = {
        # Command lines are not run by a shell on Batch: /bin/sh -c expands the variable.
        "by-version": (f"/bin/sh -c {shlex.quote('$' + versioned + '/bin/run.sh')}", "1.0"),
        "by-default": (f"/bin/sh -c {shlex.quote('$' + default + '/bin/run.sh')}", None),
    }
    for task_id, (command, version) in tasks.items():
        batch.create_task(
            job_id,
            m.BatchTaskCreateOptions(
                id=task_id,
                command_line=command,
                application_package_references=[
                    m.BatchApplicationPackageReference(application_id=app_id, version=version)
                ],
            ),
        )
    outputs = {}
    for task_id in tasks:
        task = _wait(lambda t=task_id: _completed(batch, job_id, t))
        assert task.execution_info is not None and task.execution_info.result == "success", (
            task.execution_info
        )
        outputs[task_id] = b"".join(batch.download_task_file(job_id, task_id, "stdout.txt")).decode()
    assert outputs == {"by-version": "version one", "by-default": "version two"}


def test_a_connection_with_an_account_key_is_refused(
    stack: LocalAzureStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real credential logic, not the static token
    with pytest.raises(ConnectionConfigError, match="managed through ARM, which needs Entra ID"):
        BatchManagementHook("azbatch_default").get_credential()


def test_requests_ca_bundle_is_honoured(
    stack: LocalAzureStack, monkeypatch: pytest.MonkeyPatch, app_id: str
) -> None:
    """azure-core's requests transport trusts REQUESTS_CA_BUNDLE when the connection names no CA."""
    connection = json.loads(stack.environ()[f"AIRFLOW_CONN_{ARM_CONN_ID.upper()}"])
    connection["extra"].pop("management_ca_bundle")
    monkeypatch.setenv("AIRFLOW_CONN_ARM_NO_CA", json.dumps(connection))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stack.batch.ca_cert_path))
    hook = BatchManagementHook("arm_no_ca")
    assert hook.get_application(app_id) is None
    hook.close()


def _pool_and_job(batch: BatchClient, name: str, create_pool: bool = True) -> tuple[str, str]:
    pool_id, job_id = f"pool-{name}", f"job-{name}"
    if create_pool:
        _create_pool(batch, pool_id)
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    return pool_id, job_id


def _create_pool(batch: BatchClient, pool_id: str) -> None:
    batch.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=UBUNTU,
            target_dedicated_nodes=1,
        )
    )
    _wait(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "idle"])


def _run_task(batch: BatchClient, job_id: str, task_id: str, app_id: str, version: str | None) -> m.BatchTask:
    variable = (
        "AZ_BATCH_APP_PACKAGE_"
        + app_id.replace("-", "_")
        + (f"_{version.replace('.', '_')}" if version else "")
    )
    batch.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id=task_id,
            command_line="/bin/sh -c " + shlex.quote(f"${variable}/bin/run.sh"),
            application_package_references=[
                m.BatchApplicationPackageReference(application_id=app_id, version=version)
            ],
        ),
    )
    return _wait(lambda: _completed(batch, job_id, task_id))


def test_an_overwritten_version_reaches_the_next_task(
    batch: BatchClient, app_id: str, tmp_path: Path
) -> None:
    _publish(app_id, _app_dir(tmp_path / "a", "first content"))
    _, job_id = _pool_and_job(batch, app_id)
    first = _run_task(batch, job_id, "first", app_id, "1.0")
    assert b"".join(batch.download_task_file(job_id, "first", "stdout.txt")) == b"first content", first
    _publish(app_id, _app_dir(tmp_path / "b", "second content"), overwrite=True)
    second = _run_task(batch, job_id, "second", app_id, "1.0")
    assert b"".join(batch.download_task_file(job_id, "second", "stdout.txt")) == b"second content", second


def test_missing_packages_fail_like_the_service(
    batch: BatchClient, arm_hook: BatchManagementHook, app_id: str, tmp_path: Path
) -> None:
    from azure.core.exceptions import HttpResponseError

    pool_id, job_id = _pool_and_job(batch, app_id, create_pool=False)
    # An application that does not exist: the service refuses the reference.
    with pytest.raises(HttpResponseError) as info:
        batch.create_task(
            job_id,
            m.BatchTaskCreateOptions(
                id="unknown",
                command_line="true",
                application_package_references=[
                    m.BatchApplicationPackageReference(application_id="nothing-here")
                ],
            ),
        )
    assert info.value.status_code == 409
    assert info.value.error is not None and info.value.error.code == "InvalidApplicationPackageReferences"
    with pytest.raises(HttpResponseError) as info:
        _create_pool_with_reference(batch, f"{pool_id}-bad", "nothing-here")
    assert info.value.error is not None and info.value.error.code == "InvalidApplicationPackageReferences"

    # A package deleted after the task was added: the task fails when the node cannot deploy it.
    _publish(app_id, _app_dir(tmp_path / "a", "soon gone"))
    batch.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="orphan",
            command_line="/bin/sh -c 'echo should not run'",
            application_package_references=[
                m.BatchApplicationPackageReference(application_id=app_id, version="1.0")
            ],
        ),
    )
    arm_hook.delete_package(app_id, "1.0")
    _create_pool(batch, pool_id)  # the job's pool appears only now, so the task runs after the delete
    task = _wait(lambda: _completed(batch, job_id, "orphan"))
    info_ = task.execution_info
    assert info_ is not None and info_.result == "failure"
    assert info_.exit_code is None
    assert info_.failure_info is not None
    assert (info_.failure_info.category, info_.failure_info.code) == ("usererror", "ApplicationPackageError")


def _create_pool_with_reference(batch: BatchClient, pool_id: str, application_id: str) -> None:
    batch.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=UBUNTU,
            target_dedicated_nodes=1,
            application_package_references=[
                m.BatchApplicationPackageReference(application_id=application_id)
            ],
        )
    )


def test_pool_packages_reach_the_start_task_and_every_task(
    batch: BatchClient, arm_hook: BatchManagementHook, app_id: str, tmp_path: Path
) -> None:
    _publish(app_id, _app_dir(tmp_path / "a", "from the pool"))
    application = arm_hook.get_application(app_id)
    assert application is not None
    variable = "AZ_BATCH_APP_PACKAGE_" + app_id.replace("-", "_") + "_1_0"
    pool_id, job_id = f"pool-{app_id}", f"job-{app_id}"
    batch.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=UBUNTU,
            target_dedicated_nodes=1,
            # Pools name the application by its full Resource Manager id.
            application_package_references=[
                m.BatchApplicationPackageReference(application_id=application["id"], version="1.0")
            ],
            start_task=m.BatchStartTask(
                command_line="/bin/sh -c " + shlex.quote(f"test -x ${variable}/bin/run.sh"),
                wait_for_success=True,
            ),
        )
    )
    _wait(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "idle"])
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="plain", command_line="/bin/sh -c " + shlex.quote(f"${variable}/bin/run.sh")
        ),
    )
    task = _wait(lambda: _completed(batch, job_id, "plain"))
    assert task.execution_info is not None and task.execution_info.result == "success", task.execution_info
    assert b"".join(batch.download_task_file(job_id, "plain", "stdout.txt")) == b"from the pool"


def test_an_interrupted_publish_is_completed(
    stack: LocalAzureStack, arm_hook: BatchManagementHook, app_id: str, tmp_path: Path
) -> None:
    """A version left ``Pending`` (created, never activated) is finished by the next publish."""
    arm_hook.create_application(app_id)
    arm_hook.create_package(app_id, "1.0")
    assert arm_hook.get_package(app_id, "1.0")["properties"]["state"] == "Pending"  # type: ignore[index]
    _publish(app_id, _app_dir(tmp_path / "a", "finished"))
    assert arm_hook.get_package(app_id, "1.0")["properties"]["state"] == "Active"  # type: ignore[index]
