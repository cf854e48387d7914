"""Azurite, the Batch emulator with its HTTPS management endpoint, and the connections to use them.

``azbatch_default`` signs data-plane requests with the account key; ``azbatch_arm`` is the Entra ID
connection for Resource Manager (application packages). The one stand-in is the Entra ID credential:
:class:`~tests.support.tokens.IssuedTokenCredential` signs tokens with the emulator's issuer directly,
skipping the token endpoint's round trip (``test_offline_identity`` drives that one). Everything else
(TLS with the emulator's CA, token validation, Azurite uploads, the SDKs) is real.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from airflow_batch_provider.hooks.batch_management import BatchManagementHook
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.testing.stack import ARM_CONN_ID, LocalAzureStack
from tests.support.task_context import task_context
from tests.support.tokens import IssuedTokenCredential

__all__ = ["ARM_CONN_ID"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalAzureStack]:
    with (
        pytest.MonkeyPatch.context() as patch,
        LocalAzureStack(batch=BatchEmulatorServer(management=True, step_delay=0.005)) as local,
    ):
        for name, value in local.environ().items():
            patch.setenv(name, value)
        yield local


@pytest.fixture(autouse=True)
def static_token(monkeypatch: pytest.MonkeyPatch, stack: LocalAzureStack) -> None:
    """Resource Manager needs an Entra ID token: one the emulator signed, skipping the round trip."""
    issuer = stack.batch.token_issuer
    monkeypatch.setattr(BatchManagementHook, "get_credential", lambda self: IssuedTokenCredential(issuer))


@pytest.fixture
def arm_hook(stack: LocalAzureStack) -> Iterator[BatchManagementHook]:
    hook = BatchManagementHook(ARM_CONN_ID)
    yield hook
    hook.close()


@pytest.fixture
def batch(stack: LocalAzureStack) -> BatchClient:
    return BatchClient(
        stack.batch.endpoint, AzureNamedKeyCredential(stack.batch.account_name, stack.batch.account_key)
    )


@pytest.fixture
def app_id() -> str:
    return f"tool-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def context() -> dict[str, Any]:
    return task_context("manual__itest", "publish")


def arm_connection(stack: LocalAzureStack) -> dict[str, Any]:
    return json.loads(stack.environ()[f"AIRFLOW_CONN_{ARM_CONN_ID.upper()}"])
