"""Container pools and tasks through the operators, against the emulator (no engine needed)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from tests.support.task_context import task_context

pytestmark = pytest.mark.integration

SECRET = "registry-pa55word-never-logged"


def _pool(pool_id: str, **kwargs: Any) -> dict[str, Any]:
    operator = BatchCreatePoolOperator(
        task_id="pool",
        pool_id=pool_id,
        vm_size="standard_d2s_v3",
        image="ubuntu-22.04",
        target_dedicated_nodes=1,
        poll_interval=0.2,
        **kwargs,
    )
    return dict(operator.execute(task_context(f"run-{pool_id}", "pool")))


def test_a_container_task_is_refused_before_submit_on_a_pool_without_containers(
    local_azure_stack: Any, hook: BatchHook
) -> None:
    pool_id, job_id = f"plain-{uuid.uuid4().hex[:6]}", f"boxed-{uuid.uuid4().hex[:6]}"
    _pool(pool_id)
    BatchCreateJobOperator(task_id="job", job_id=job_id, pool_id=pool_id).execute(task_context(job_id, "job"))
    add = BatchAddTasksOperator(
        task_id="add",
        job_id=job_id,
        tasks=[{"id": "boxed", "command_line": "echo hi"}],
        container_settings={"image_name": "python:3.12-slim"},
    )
    with pytest.raises(InvalidInputError, match=rf"runs in a container .* pool '{pool_id}' has no container"):
        add.execute(task_context(job_id, "add"))
    assert hook.list_tasks(job_id, select=["id"]) == []
    hook.delete_job(job_id)
    hook.delete_pool(pool_id)


def test_a_container_pool_takes_registry_credentials_from_a_connection_without_leaking_them(
    local_azure_stack: Any,
    hook: BatchHook,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LOCAL_REGISTRY",
        json.dumps({"conn_type": "generic", "login": "robot", "password": SECRET}),
    )
    pool_id = f"boxes-{uuid.uuid4().hex[:6]}"
    configuration = {
        "type": "dockerCompatible",
        "container_registries": [{"registry_server": "myacr.azurecr.io", "conn_id": "local_registry"}],
    }
    operator_result = _pool(pool_id, container_configuration=configuration)
    pool = hook.get_pool(pool_id)
    assert pool is not None
    sent = pool["virtualMachineConfiguration"]["containerConfiguration"]
    assert sent["type"] == "dockerCompatible"
    assert sent["containerRegistries"][0]["username"] == "robot"
    assert "password" not in sent["containerRegistries"][0]  # write-only, as on the service
    # Never in the XCom, the templated field or the task log.
    assert SECRET not in json.dumps(operator_result)
    assert SECRET not in json.dumps(configuration)
    assert SECRET not in "".join(capfd.readouterr())
    hook.delete_pool(pool_id)
