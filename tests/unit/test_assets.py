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


class _Instance:
    def __init__(self, map_index: int) -> None:
        self.map_index = map_index


@pytest.mark.parametrize(("map_index", "recorded"), [(-1, True), (0, False), (3, False)])
def test_mapped_instances_record_no_asset_event(map_index: int, recorded: bool) -> None:
    # Airflow's API server creates a new Asset with a check-then-insert: mapped instances emitting the
    # same one at once fail with a unique-constraint error, so only unmapped tasks record it.
    from airflow.sdk import AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_batch_provider.assets import emit_asset

    events = OutletEventAccessors()
    alias = AssetAlias("azblob:dag.add_tasks")
    uri = "azblob://devstoreaccount1/results/run-1/points"
    context = {"outlet_events": events, "ti": _Instance(map_index)}
    assert emit_asset(context, alias, uri, {"job_id": "run-1"}) is recorded
    emitted = [event.dest_asset_key.uri for event in events[alias].asset_alias_events]
    assert emitted == ([uri] if recorded else [])
