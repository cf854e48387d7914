"""Blob hook transfers reach Airflow's hook lineage collector (as the OpenLineage provider reads it)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from airflow.sdk import lineage

from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.testing.azurite import AzuriteServer
from tests.integration.test_blob_hook import connection

pytestmark = pytest.mark.integration


def test_hook_transfers_are_collected_as_one_asset_per_prefix(
    azurite: AzuriteServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The collector Airflow uses once a lineage reader (such as the OpenLineage provider) is enabled.
    collector = lineage.HookLineageCollector()
    monkeypatch.setattr(lineage, "get_hook_lineage_collector", lambda: collector)
    monkeypatch.setenv("AIRFLOW_CONN_AZBLOB_LINEAGE", json.dumps(connection(azurite, "sas_token")))
    hook = BlobStorageHook("azblob_lineage")
    container = f"hl-{uuid.uuid4().hex[:10]}"
    for index in range(4):
        (tmp_path / "in" / f"f{index}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "in" / f"f{index}.txt").write_text("data")
    hook.upload(container, str(tmp_path / "in"), "drop/")
    hook.download_prefix(container, "drop/", tmp_path / "out")
    hook.close()

    collected = collector.collected_assets
    blob = f"azblob://{azurite.account_name}/{container}/drop"
    outputs = {info.asset.uri: info for info in collected.outputs if info.context is hook}
    inputs = {info.asset.uri: info for info in collected.inputs if info.context is hook}
    assert set(outputs) == {blob, (tmp_path / "out").resolve().as_uri()}
    assert set(inputs) == {(tmp_path / "in").resolve().as_uri(), blob}
    assert outputs[blob].asset.extra == {"count": 4, "bytes": 16}
    assert all(info.count == 1 for info in [*inputs.values(), *outputs.values()])  # reported once each
    assert all("sig=" not in uri for uri in [*inputs, *outputs])


async def test_async_hook_transfers_are_collected_too(
    azurite: AzuriteServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = lineage.HookLineageCollector()
    monkeypatch.setattr(lineage, "get_hook_lineage_collector", lambda: collector)
    monkeypatch.setenv("AIRFLOW_CONN_AZBLOB_LINEAGE", json.dumps(connection(azurite, "sas_token")))
    hook = BlobStorageHook("azblob_lineage")
    container = f"hl-{uuid.uuid4().hex[:10]}"
    (tmp_path / "in").mkdir()
    for index in range(3):
        (tmp_path / "in" / f"f{index}.csv").write_text("12345")
    await hook.aupload(container, str(tmp_path / "in" / "*.csv"), "async/")
    await hook.adownload_prefix(container, "async/", tmp_path / "out")
    await hook.aclose()

    collected = collector.collected_assets
    blob = f"azblob://{azurite.account_name}/{container}/async"
    outputs = {info.asset.uri: info for info in collected.outputs if info.context is hook}
    inputs = {info.asset.uri: info for info in collected.inputs if info.context is hook}
    assert set(outputs) == {blob, (tmp_path / "out").resolve().as_uri()}
    assert set(inputs) == {(tmp_path / "in").resolve().as_uri(), blob}
    assert outputs[blob].asset.extra == inputs[blob].asset.extra == {"count": 3, "bytes": 15}
    assert all(info.count == 1 for info in [*inputs.values(), *outputs.values()])
