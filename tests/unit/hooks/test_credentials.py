"""The shared credential module: mode inference, precedence, validation messages, masking, credentials.

Nothing is mocked. Entra ID credentials are only constructed, never asked for a token, so no identity
endpoint is contacted; that is as far as these modes can be checked offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.log import redact
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

from airflow_batch_provider.exceptions import ConnectionConfigError
from airflow_batch_provider.hooks.connection_fields import credential_conn_fields
from airflow_batch_provider.hooks.credentials import AuthMode, AzureConnectionSettings

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LWZvci10ZXN0cy1vbmx5LTAxMjM0NTY3ODk="
SAS_TOKEN = "sv=2024-11-04&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJlLXZhbHVl%2B0%3D"
CLIENT_SECRET = "entra-client-secret-value-42"
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
    + ACCOUNT_KEY
    + ";EndpointSuffix=core.windows.net"
)
ENV_VARS = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")


@pytest.fixture(autouse=True)
def _no_identity_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workload identity reads these variables; a developer's shell must not change the outcome."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def blob(**fields: Any) -> AzureConnectionSettings:
    extra = fields.pop("extra", {})
    return AzureConnectionSettings.from_fields(conn_id="c1", service="blob", extra=extra, **fields)


def batch(**fields: Any) -> AzureConnectionSettings:
    extra = fields.pop("extra", {})
    return AzureConnectionSettings.from_fields(conn_id="b1", service="batch", extra=extra, **fields)


SP = {"tenant_id": "tenant", "client_id": "client", "client_secret": CLIENT_SECRET}


# -- inference ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({"extra": {"connection_string": CONNECTION_STRING}}, AuthMode.CONNECTION_STRING),
        ({"login": "acct", "extra": {"sas_token": SAS_TOKEN}}, AuthMode.SAS_TOKEN),
        ({"login": "acct", "password": ACCOUNT_KEY}, AuthMode.SHARED_KEY),
        ({"login": "acct", "extra": {"account_key": ACCOUNT_KEY}}, AuthMode.SHARED_KEY),
        ({"login": "acct", "extra": SP}, AuthMode.SERVICE_PRINCIPAL),
        (
            {"login": "acct", "extra": {"workload_identity": True, "tenant_id": "t", "client_id": "c"}},
            AuthMode.WORKLOAD_IDENTITY,
        ),
        ({"login": "acct", "extra": {"managed_identity": "true"}}, AuthMode.MANAGED_IDENTITY),
        ({"login": "acct", "extra": {"managed_identity_client_id": "mi-client"}}, AuthMode.MANAGED_IDENTITY),
        ({"login": "acct"}, AuthMode.DEFAULT),
        ({"host": "https://acct.blob.core.windows.net"}, AuthMode.DEFAULT),
    ],
    ids=[
        "connection-string",
        "sas",
        "key-in-password",
        "key-in-extra",
        "service-principal",
        "workload",
        "managed-flag",
        "managed-client-id",
        "default-login",
        "default-host",
    ],
)
def test_mode_is_inferred_from_the_fields_that_are_set(fields: dict[str, Any], mode: AuthMode) -> None:
    if mode is AuthMode.WORKLOAD_IDENTITY:
        fields["extra"]["federated_token_file"] = "/var/run/secrets/token"
    assert blob(**fields).resolve_mode() is mode


def test_workload_identity_beats_managed_identity() -> None:
    settings = blob(
        login="acct",
        extra={
            "managed_identity": True,
            "workload_identity": True,
            "tenant_id": "t",
            "client_id": "c",
            "federated_token_file": "/token",
        },
    )
    assert settings.resolve_mode() is AuthMode.WORKLOAD_IDENTITY


def test_federated_token_file_alone_means_workload_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    assert (
        blob(login="acct", extra={"federated_token_file": "/t"}).resolve_mode() is AuthMode.WORKLOAD_IDENTITY
    )


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        # A secret beats the identity flags further down the order.
        (
            {"login": "acct", "password": ACCOUNT_KEY, "extra": {"managed_identity": True}},
            AuthMode.SHARED_KEY,
        ),
        (
            {"login": "acct", "extra": {**SP, "managed_identity": True, "workload_identity": True}},
            AuthMode.SERVICE_PRINCIPAL,
        ),
        ({"extra": {"connection_string": CONNECTION_STRING, "tenant_id": "t"}}, AuthMode.CONNECTION_STRING),
    ],
    ids=["key-over-managed", "sp-over-identities", "connection-string-with-tenant"],
)
def test_precedence_order(fields: dict[str, Any], mode: AuthMode) -> None:
    assert blob(**fields).resolve_mode() is mode


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        (
            {"password": ACCOUNT_KEY, "extra": {"connection_string": CONNECTION_STRING}},
            ["connection_string", "password (account key)"],
        ),
        (
            {"login": "acct", "password": ACCOUNT_KEY, "extra": {"sas_token": SAS_TOKEN}},
            ["sas_token", "password"],
        ),
        (
            {"login": "acct", "password": ACCOUNT_KEY, "extra": SP},
            ["password (account key)", "client_secret"],
        ),
        ({"login": "acct", "extra": {**SP, "sas_token": SAS_TOKEN}}, ["sas_token", "client_secret"]),
    ],
    ids=["string-and-key", "sas-and-key", "key-and-secret", "sas-and-secret"],
)
def test_two_secrets_are_a_contradiction(fields: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(ConnectionConfigError) as error:
        blob(**fields).resolve_mode()
    message = str(error.value)
    assert "'c1'" in message
    assert all(name in message for name in names)
    assert "auth_type" in message
    assert ACCOUNT_KEY not in message and CLIENT_SECRET not in message


def test_auth_type_settles_a_contradiction() -> None:
    settings = blob(
        login="acct", password=ACCOUNT_KEY, extra={"sas_token": SAS_TOKEN, "auth_type": "sas_token"}
    )
    assert settings.resolve_mode() is AuthMode.SAS_TOKEN
    settings = blob(login="acct", password=ACCOUNT_KEY, extra={**SP, "auth_type": "SHARED_KEY "})
    assert settings.resolve_mode() is AuthMode.SHARED_KEY


def test_unknown_auth_type_lists_the_choices() -> None:
    with pytest.raises(ConnectionConfigError, match="auth_type 'password' is not known") as error:
        blob(login="acct", extra={"auth_type": "password"})
    assert all(mode.value in str(error.value) for mode in AuthMode)


# -- missing fields -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"extra": {"auth_type": "connection_string"}}, "set the extra connection_string"),
        ({"login": "acct", "extra": {"auth_type": "sas_token"}}, "set the extra sas_token"),
        (
            {"login": "acct", "extra": {"auth_type": "shared_key"}},
            "put the account key in the password field",
        ),
        (
            {"extra": {"sas_token": SAS_TOKEN}},
            "set the storage account name (login) or the account URL (host)",
        ),
        ({"password": ACCOUNT_KEY}, "set the storage account name (login) or the account URL (host)"),
        (
            {"host": "https://files.example.com", "password": ACCOUNT_KEY},
            "the account name is needed to sign requests",
        ),
        (
            {"login": "acct", "extra": {"auth_type": "service_principal", "tenant_id": "t"}},
            "missing: client_id, client_secret",
        ),
        (
            {"login": "acct", "extra": {"client_secret": CLIENT_SECRET, "client_id": "c"}},
            "missing: tenant_id",
        ),
        (
            {"login": "acct", "extra": {"workload_identity": True, "client_id": "c"}},
            "workload identity needs tenant_id, federated_token_file",
        ),
    ],
    ids=[
        "no-connection-string",
        "no-sas",
        "no-key",
        "sas-without-account",
        "key-without-account",
        "key-custom-domain",
        "sp-two-missing",
        "sp-no-tenant",
        "workload-missing",
    ],
)
def test_missing_fields_are_named(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConnectionConfigError) as error:
        blob(**fields).resolve_mode()
    assert expected in str(error.value)
    assert "Connection 'c1'" in str(error.value)


def test_workload_identity_fields_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = blob(login="acct", extra={"workload_identity": True})
    with pytest.raises(ConnectionConfigError, match="AZURE_TENANT_ID"):
        settings.resolve_mode()
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/token")
    assert settings.resolve_mode() is AuthMode.WORKLOAD_IDENTITY


@pytest.mark.parametrize("mode", ["connection_string", "sas_token"])
def test_batch_refuses_blob_only_modes(mode: str) -> None:
    settings = batch(
        host="https://acct.westeurope.batch.azure.com",
        extra={"auth_type": mode, "connection_string": CONNECTION_STRING, "sas_token": SAS_TOKEN},
    )
    with pytest.raises(ConnectionConfigError, match="Azure Batch does not accept"):
        settings.resolve_mode()


def test_batch_needs_its_account_url() -> None:
    with pytest.raises(ConnectionConfigError, match="the Batch account URL is missing"):
        batch(login="acct", password=ACCOUNT_KEY).resolve_mode()
    settings = batch(host="acct.westeurope.batch.azure.com", password=ACCOUNT_KEY)
    assert settings.resolve_mode() is AuthMode.SHARED_KEY
    assert settings.resolved_account_name == "acct"
    assert settings.batch_endpoint == "https://acct.westeurope.batch.azure.com"


# -- parsing --------------------------------------------------------------------------------------------


def test_extra_as_json_string_and_ui_prefixed_names() -> None:
    settings = blob(
        login="acct",
        extra=json.dumps({"extra__azblob__sas_token": SAS_TOKEN, "extra__azblob__tenant_id": "", "x": None}),
    )
    assert settings.sas_token == SAS_TOKEN
    assert settings.tenant_id is None
    assert settings.resolve_mode() is AuthMode.SAS_TOKEN


def test_invalid_extra_json_is_reported() -> None:
    with pytest.raises(ConnectionConfigError, match="the extra field is not valid JSON"):
        blob(extra="{not json")


@pytest.mark.parametrize(
    ("fields", "name", "url"),
    [
        ({"login": "acct"}, "acct", "https://acct.blob.core.windows.net"),
        ({"host": "acct2.blob.core.windows.net/"}, "acct2", "https://acct2.blob.core.windows.net"),
        (
            {"host": "http://127.0.0.1:10000/devstoreaccount1"},
            "devstoreaccount1",
            "http://127.0.0.1:10000/devstoreaccount1",
        ),
        ({"extra": {"connection_string": CONNECTION_STRING}}, "acct", "https://acct.blob.core.windows.net"),
        (
            {
                "extra": {
                    "connection_string": "AccountName=dev;AccountKey=k;BlobEndpoint=http://127.0.0.1:1/dev/;"
                }
            },
            "dev",
            "http://127.0.0.1:1/dev",
        ),
        (
            {"login": "named", "host": "https://other.blob.core.windows.net"},
            "named",
            "https://other.blob.core.windows.net",
        ),
    ],
    ids=["login", "azure-host", "emulator-path", "connection-string", "emulator-string", "login-wins"],
)
def test_account_name_and_url(fields: dict[str, Any], name: str, url: str) -> None:
    settings = blob(**fields)
    assert settings.resolved_account_name == name
    assert settings.blob_account_url == url


# -- masking --------------------------------------------------------------------------------------------


def test_every_secret_is_registered_with_the_masker() -> None:
    blob(login="acct", password=ACCOUNT_KEY)
    blob(login="acct", extra={"sas_token": "?" + SAS_TOKEN})
    blob(login="acct", extra=SP)
    other_key = ACCOUNT_KEY.replace("c2", "ZZ")
    blob(extra={"connection_string": CONNECTION_STRING.replace(ACCOUNT_KEY, other_key)})

    for secret in (ACCOUNT_KEY, SAS_TOKEN, CLIENT_SECRET, other_key, "c2lnbmF0dXJlLXZhbHVl%2B0%3D"):
        assert secret not in str(redact(f"log line with {secret} inside"))
    # The signature alone is masked too: it is the part of a SAS that grants access.
    assert "c2lnbmF0dXJlLXZhbHVl%2B0%3D" not in str(redact("sig=c2lnbmF0dXJlLXZhbHVl%2B0%3D"))


def test_repr_shows_no_secret() -> None:
    settings = blob(login="acct", password=ACCOUNT_KEY, extra={**SP, "auth_type": "shared_key"})
    text = repr(settings)
    assert ACCOUNT_KEY not in text and CLIENT_SECRET not in text
    assert "acct" in text


# -- credential objects (constructed only: no token is requested) ---------------------------------------


def test_key_sas_and_connection_string_credentials() -> None:
    credential = blob(login="acct", password=ACCOUNT_KEY).credential()
    assert isinstance(credential, AzureNamedKeyCredential)
    assert credential.named_key.name == "acct" and credential.named_key.key == ACCOUNT_KEY

    sas = blob(login="acct", extra={"sas_token": "?" + SAS_TOKEN}).credential()
    assert isinstance(sas, AzureSasCredential) and sas.signature == SAS_TOKEN

    assert blob(extra={"connection_string": CONNECTION_STRING}).credential() is None
    assert blob(extra={"connection_string": CONNECTION_STRING}).async_credential() is None


def test_service_principal_credentials() -> None:
    import azure.identity
    import azure.identity.aio

    settings = blob(login="acct", extra={**SP, "authority_host": "login.microsoftonline.us"})
    assert isinstance(settings.credential(), azure.identity.ClientSecretCredential)
    assert isinstance(settings.async_credential(), azure.identity.aio.ClientSecretCredential)


def test_managed_identity_keeps_the_user_assigned_client_id(caplog: pytest.LogCaptureFixture) -> None:
    import azure.identity

    with caplog.at_level("INFO", logger="azure.identity"):
        credential = blob(login="acct", extra={"managed_identity_client_id": "mi-client"}).credential()
    assert isinstance(credential, azure.identity.ManagedIdentityCredential)
    # The user-assigned client id must reach the credential (another provider drops it); azure-identity
    # logs the identity it will use when it is constructed.
    assert "mi-client" in caplog.text


def test_workload_identity_credential(tmp_path: Path) -> None:
    import azure.identity

    token_file = tmp_path / "token"
    token_file.write_text("federated-token")
    settings = blob(
        login="acct",
        extra={
            "workload_identity": True,
            "tenant_id": "t",
            "client_id": "c",
            "federated_token_file": str(token_file),
        },
    )
    assert isinstance(settings.credential(), azure.identity.WorkloadIdentityCredential)


def test_default_credential_gets_the_identity_hints() -> None:
    import azure.identity

    credential = blob(
        login="acct", extra={"managed_identity_client_id": "mi", "auth_type": "default_azure_credential"}
    )
    assert isinstance(credential.credential(), azure.identity.DefaultAzureCredential)


async def test_async_credentials_close_cleanly() -> None:
    import azure.identity.aio

    credential = blob(login="acct", extra={"managed_identity": True}).async_credential()
    assert isinstance(credential, azure.identity.aio.ManagedIdentityCredential)
    await credential.close()
    credential = blob(login="acct").async_credential()
    assert isinstance(credential, azure.identity.aio.DefaultAzureCredential)
    await credential.close()


def test_conn_fields_mark_secrets_as_passwords() -> None:
    fields = credential_conn_fields()
    assert fields["client_secret"]["schema"]["format"] == "password"
    # No None choice: Airflow's UI shows it as the literal "null"; an unset field still means "inferred".
    assert fields["auth_type"]["schema"]["enum"] == [mode.value for mode in AuthMode]


@pytest.mark.parametrize(
    "module", ["airflow_batch_provider.exceptions", "airflow_batch_provider.hooks.credentials"]
)
def test_importing_before_airflow_is_not_circular(module: str, tmp_path: Path) -> None:
    """Airflow's provider discovery imports this module; importing ours first must still work."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
