"""Entra ID on the Batch data plane, offline: a service principal talks to the emulator over HTTPS.

azure-identity's ``ClientSecretCredential`` (unchanged) gets its token from the emulator's token endpoint
(``authority_host``); the real azure-batch SDK sends it over TLS to the data plane's HTTPS port. Tokens
the emulator did not sign, expired ones, and ones for another audience get the service's 401, on the
data plane and on the management plane alike.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential

from airflow_batch_provider.emulator.identity import BATCH_AUDIENCE, TokenIssuer
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.testing.stack import BATCH_ENTRA_CONN_ID, EMULATED_TENANT_ID, LocalAzureStack

pytestmark = pytest.mark.integration

API = {"api-version": "2025-06-01"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalAzureStack]:
    batch = BatchEmulatorServer(https=True, management=True, step_delay=0.005)
    with pytest.MonkeyPatch.context() as patch, LocalAzureStack(batch=batch) as local:
        for name, value in local.environ().items():
            patch.setenv(name, value)
        yield local


@pytest.fixture(scope="module")
def server(stack: LocalAzureStack) -> BatchEmulatorServer:
    return stack.batch


def _credential(server: BatchEmulatorServer) -> ClientSecretCredential:
    return ClientSecretCredential(
        EMULATED_TENANT_ID,
        "pipeline-app",
        "any-secret",
        authority=server.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(server.ca_cert_path),
    )


def _token(server: BatchEmulatorServer, *, issuer: TokenIssuer | None = None, **overrides: Any) -> str:
    """A token as the emulator's endpoint issues it for Batch, with ``overrides`` of its fields."""
    fields: dict[str, Any] = {
        "issuer": f"{server.authority_host}/{EMULATED_TENANT_ID}/v2.0",
        "tenant": EMULATED_TENANT_ID,
        "client_id": "pipeline-app",
        "audience": BATCH_AUDIENCE,
        **overrides,
    }
    return (issuer or server.token_issuer).issue(**fields)


def _get_pools(server: BatchEmulatorServer, token: str) -> requests.Response:
    return requests.get(
        f"{server.https_endpoint}/pools",
        params=API,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(server.ca_cert_path),
        timeout=30,
    )


def _refusal_detail(answer: requests.Response) -> str:
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    body = answer.json()
    assert body["code"] == "AuthenticationFailed"
    values = {value["key"]: value["value"] for value in body["values"]}
    return values["AuthenticationErrorDetail"]


def test_the_sdk_with_a_service_principal_creates_a_pool_and_a_job_over_https(
    server: BatchEmulatorServer,
) -> None:
    pool_id, job_id = f"entra-{uuid.uuid4().hex[:6]}", f"entra-job-{uuid.uuid4().hex[:6]}"
    with BatchClient(
        server.https_endpoint, _credential(server), connection_verify=str(server.ca_cert_path)
    ) as client:
        client.create_pool(
            batch_models.BatchPoolCreateOptions(
                id=pool_id,
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
                    image_reference=batch_models.BatchVmImageReference(
                        publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 24.04",
                ),
                target_dedicated_nodes=0,
            )
        )
        client.create_job(
            batch_models.BatchJobCreateOptions(
                id=job_id, pool_info=batch_models.BatchPoolInfo(pool_id=pool_id)
            )
        )
        assert client.get_job(job_id).pool_info.pool_id == pool_id
        assert pool_id in {pool.id for pool in client.list_pools()}


def test_a_batch_connection_with_a_service_principal_works_over_https(server: BatchEmulatorServer) -> None:
    hook = BatchHook(BATCH_ENTRA_CONN_ID)
    try:
        assert hook.test_connection() == (True, "Connection to the Batch account works.")
    finally:
        hook.close()


def test_shared_key_still_works_on_the_https_port(server: BatchEmulatorServer) -> None:
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential(server.account_name, server.account_key)
    with BatchClient(server.https_endpoint, credential, connection_verify=str(server.ca_cert_path)) as client:
        assert isinstance(list(client.list_pools()), list)


def test_a_token_the_emulator_did_not_sign_is_refused(server: BatchEmulatorServer) -> None:
    forged = _token(server, issuer=TokenIssuer())
    assert "not issued by this emulator" in _refusal_detail(_get_pools(server, forged))
    assert "not issued by this emulator" in _refusal_detail(_get_pools(server, "not-a-jwt"))


def test_an_expired_token_is_refused(server: BatchEmulatorServer) -> None:
    expired = _token(server, lifetime_seconds=-5)
    assert "expired" in _refusal_detail(_get_pools(server, expired))


def test_a_token_for_another_audience_is_refused(server: BatchEmulatorServer) -> None:
    for audience in ("https://management.azure.com/", "https://batch.core.windows.net"):
        detail = _refusal_detail(_get_pools(server, _token(server, audience=audience)))
        assert f"wrong audience or resource '{audience}'" in detail
        assert "'https://batch.core.windows.net/'" in detail


def test_a_token_from_another_issuer_is_refused(server: BatchEmulatorServer) -> None:
    now = int(time.time())
    claims = {"aud": BATCH_AUDIENCE, "iss": "https://login.example.test/t/v2.0", "iat": now, "exp": now + 60}
    foreign = jwt.encode(claims, server.token_issuer.key, algorithm="HS256")
    assert "wrong issuer" in _refusal_detail(_get_pools(server, foreign))


def test_a_valid_token_is_accepted(server: BatchEmulatorServer) -> None:
    assert _get_pools(server, _token(server)).status_code == 200


def test_the_sdk_reports_a_refused_token_as_an_authentication_error(server: BatchEmulatorServer) -> None:
    class ExpiredCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            from azure.core.credentials import AccessToken

            # azure-core would refresh a token it knows is expired: claim a future expiry.
            return AccessToken(_token(server, lifetime_seconds=-5), int(time.time()) + 3600)

    with (
        BatchClient(
            server.https_endpoint,
            ExpiredCredential(),  # type: ignore[arg-type]
            connection_verify=str(server.ca_cert_path),
            retry_total=0,
        ) as client,
        pytest.raises((ClientAuthenticationError, HttpResponseError)) as excinfo,
    ):
        list(client.list_pools())
    assert excinfo.value.status_code == 401


def _list_applications(server: BatchEmulatorServer, token: str) -> requests.Response:
    url = (
        f"{server.management_endpoint}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
        f"/providers/Microsoft.Batch/batchAccounts/{server.account_name}/applications"
    )
    return requests.get(
        url,
        params=API,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(server.ca_cert_path),
        timeout=30,
    )


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (
            lambda s: _token(s, issuer=TokenIssuer(), audience=s.management_endpoint),
            "InvalidAuthenticationToken",
        ),
        (lambda s: "static-test-token", "InvalidAuthenticationToken"),
        (
            lambda s: _token(s, audience=s.management_endpoint, lifetime_seconds=-5),
            "ExpiredAuthenticationToken",
        ),
        (lambda s: _token(s), "InvalidAuthenticationTokenAudience"),
    ],
    ids=["forged", "not-a-jwt", "expired", "batch-audience"],
)
def test_the_management_plane_refuses_tokens_it_did_not_issue_for_itself(
    server: BatchEmulatorServer, make_token: Any, code: str
) -> None:
    answer = _list_applications(server, make_token(server))
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == code


def test_the_management_plane_accepts_its_own_tokens(server: BatchEmulatorServer) -> None:
    for audience in (server.management_endpoint, "https://management.azure.com/"):
        assert _list_applications(server, _token(server, audience=audience)).status_code == 200


def test_the_command_line_serves_the_data_plane_over_https_with_its_token_endpoint(tmp_path: Path) -> None:
    import subprocess
    import sys

    from airflow_batch_provider.testing.lifecycle import free_port

    port, https_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_batch_provider.emulator",
            "--port",
            str(port),
            "--https-port",
            str(https_port),
            "--state-dir",
            str(tmp_path),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ca = tmp_path / "management" / "tls" / "management-ca.pem"
        endpoint = f"https://127.0.0.1:{https_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(endpoint, verify=str(ca), timeout=2)
                break
            except (requests.ConnectionError, OSError):
                assert process.poll() is None and time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        credential = ClientSecretCredential(
            EMULATED_TENANT_ID,
            "cli-app",
            "any-secret",
            authority=endpoint,
            disable_instance_discovery=True,
            connection_verify=str(ca),
        )
        with BatchClient(endpoint, credential, connection_verify=str(ca)) as client:
            assert list(client.list_pools()) == []
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"HTTPS:        https://127.0.0.1:{https_port}" in output
