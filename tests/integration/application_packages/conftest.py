"""Azurite, the Batch emulator with its HTTPS management endpoint, and the connections to use them.

``azbatch_default`` signs data-plane requests with the account key; ``azbatch_arm`` is the Entra ID
connection for Resource Manager (application packages). The one stand-in is the Entra ID token: there
is no identity provider offline, so :class:`StaticTokenCredential` replaces the connection's credential
and returns a fixed bearer token, which the emulator accepts (it checks that a bearer token is present,
it cannot verify one). Everything else (TLS with the emulator's CA, Azurite uploads, the SDKs) is real.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AccessToken, AzureNamedKeyCredential

from airflow_batch_provider.hooks.batch_management import BatchManagementHook
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.testing.stack import ARM_CONN_ID, LocalAzureStack
from tests.support.task_context import task_context

__all__ = ["ARM_CONN_ID"]


class StaticTokenCredential:
    """Test double for an Entra ID credential: always the same bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("static-test-token", int(time.time()) + 3600)

    def close(self) -> None:
        pass


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
def static_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resource Manager needs an Entra ID token; offline, a static one stands in for it."""
    monkeypatch.setattr(BatchManagementHook, "get_credential", lambda self: StaticTokenCredential())


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
