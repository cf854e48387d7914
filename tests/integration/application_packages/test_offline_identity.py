"""Entra ID offline: a service-principal connection gets tokens from the emulator, with no code injected.

``azbatch_arm`` carries ``authority_host`` (the emulator's HTTPS endpoint) and ``authority_ca_bundle``
(its CA): azure-identity discovers the tenant and asks the emulator's token endpoint, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_batch_provider.hooks.batch_management import BatchManagementHook
from airflow_batch_provider.testing.stack import EMULATED_TENANT_ID, LocalAzureStack
from tests.integration.application_packages.conftest import ARM_CONN_ID, arm_connection
from tests.support.example_dags import load_example

pytestmark = pytest.mark.integration


def test_the_example_publishes_and_runs_with_the_connection_only(
    stack: LocalAzureStack,
    run_dag: Callable[..., tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.undo()  # no static token: the connection's own credential
    dag = load_example(
        monkeypatch,
        "azure_batch_application_package",
        BATCH_APP_ARM_CONN_ID=ARM_CONN_ID,
        BATCH_APP_WORK_DIR=str(tmp_path),
        BATCH_APP_POLL_SECONDS="0.2",
    )
    dag_run, xcoms = run_dag(dag)
    assert str(dag_run.state) == "success", xcoms
    assert xcoms["publish_package"] == {"applicationId": "wordcount", "version": "1.0"}


def test_tokens_are_signed_by_the_emulator_for_the_requested_resource(
    stack: LocalAzureStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()
    hook = BatchManagementHook(ARM_CONN_ID)
    token = hook.get_credential().get_token(hook.credential_scope).token
    claims = stack.batch.token_issuer.verify(token, audience=stack.batch.management_endpoint)
    assert claims is not None and claims["appid"] == arm_connection(stack)["extra"]["client_id"]
    assert stack.batch.token_issuer.verify(token, audience="https://batch.core.windows.net/") is None


async def test_the_async_credential_gets_tokens_too(
    stack: LocalAzureStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()
    credential = BatchManagementHook(ARM_CONN_ID).settings.async_credential()
    try:
        token = await credential.get_token(f"{stack.batch.management_endpoint}/.default")
    finally:
        await credential.close()
    assert stack.batch.token_issuer.verify(token.token, audience=stack.batch.management_endpoint)


def test_a_request_without_a_secret_is_refused_saying_what_is_missing(stack: LocalAzureStack) -> None:
    answer = requests.post(
        f"{stack.batch.authority_host}/{EMULATED_TENANT_ID}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "app", "scope": "https://x/.default"},
        verify=str(stack.batch.ca_cert_path),
        timeout=30,
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert "client_secret" in answer.json()["error_description"]
