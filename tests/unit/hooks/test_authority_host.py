"""A custom ``authority_host`` (private cloud, the local emulator) works without login.microsoftonline.com."""

from __future__ import annotations

import pytest

from airflow_batch_provider.hooks.credentials import AzureConnectionSettings


def service_principal(**extra: str) -> AzureConnectionSettings:
    return AzureConnectionSettings.from_fields(
        conn_id="arm",
        service="batch",
        host="https://acct.westeurope.batch.azure.com",
        login="acct",
        password=None,
        extra={"tenant_id": "t", "client_id": "c", "client_secret": "s", **extra},
    )


@pytest.mark.parametrize(
    ("authority_host", "asks_microsoft"),
    [
        ("https://127.0.0.1:10301", False),
        ("https://adfs.contoso.local", False),
        ("https://login.microsoftonline.com", True),
        ("login.chinacloudapi.cn", True),
    ],
)
def test_instance_discovery_is_off_for_authorities_microsoft_does_not_know(
    authority_host: str, asks_microsoft: bool
) -> None:
    credential = service_principal(authority_host=authority_host).credential()
    assert credential._instance_discovery is (None if asks_microsoft else False)


def test_the_authority_ca_bundle_is_trusted_by_the_credential() -> None:
    credential = service_principal(
        authority_host="https://127.0.0.1:1", authority_ca_bundle="/ca.pem"
    ).credential()
    transport = credential._client._pipeline._transport
    assert transport.connection_config.verify == "/ca.pem"
