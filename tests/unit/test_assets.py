"""Blob Asset URIs: what Airflow accepts, normalises and refuses for ``azblob://``."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset

from airflow_batch_provider.assets import blob_asset_uri, container_asset_uri, storage_account_of


def test_airflow_normalises_blob_asset_uris_with_the_provider_handler() -> None:
    assert (
        Asset("azblob://DevStoreAccount1/outputs//job-1/part/").uri
        == "azblob://devstoreaccount1/outputs/job-1/part"
    )
    assert Asset("azblob://acct/outputs").uri == "azblob://acct/outputs"


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("azblob://acct/outputs/x?sv=2024&sig=SECRETSIG", "query string"),
        ("azblob://acct", "container is missing"),
        ("azblob://acct/Bad_Container/x", "container"),
        ("azblob://a/outputs/x", "storage account"),
        ("azblob://acct/outputs/../x", ".."),
    ],
)
def test_invalid_blob_asset_uris_are_refused_with_the_reason(uri: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="azblob://<account>/<container>/<prefix>") as raised:
        Asset(uri)
    assert complaint in str(raised.value)
    assert "SECRETSIG" not in str(raised.value)


def test_asset_uris_of_container_urls_name_the_account_for_azure_and_azurite() -> None:
    assert storage_account_of("https://acct.blob.core.windows.net/outputs?sig=S") == "acct"
    assert storage_account_of("http://127.0.0.1:10000/devstoreaccount1/outputs") == "devstoreaccount1"
    assert container_asset_uri("https://acct.blob.core.windows.net/outputs?sig=S", "job/") == (
        "azblob://acct/outputs/job"
    )
    assert blob_asset_uri("acct", "outputs") == "azblob://acct/outputs"
