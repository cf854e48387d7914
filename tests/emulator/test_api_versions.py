"""Every api-version the service serves is accepted, and responses read as that version names them.

Resources are created with the SDK (2025-06-01) and read back with raw signed requests naming each
version, so the JSON on the wire is what is checked.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.batch import BatchClient
from azure.batch import models as m

from airflow_batch_provider.emulator.api_versions import LATEST, SUPPORTED_VERSIONS, shape
from airflow_batch_provider.emulator.auth import authorization_header
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import UBUNTU, pool_options, sh, unique, wait_for_task

OLDEST = SUPPORTED_VERSIONS[0]


def signed_request(
    emulator: BatchEmulatorServer,
    method: str,
    path: str,
    version: str,
    body: dict[str, Any] | None = None,
    extra_query: str = "",
) -> requests.Response:
    """One request signed with the account's Shared Key, naming ``version``."""
    query = f"api-version={version}{extra_query}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"ocp-date": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")}
    if body is not None:
        headers["content-type"] = "application/json; odata=minimalmetadata"
        headers["content-length"] = str(len(data))
    headers["authorization"] = authorization_header(
        method, path, query, headers, emulator.account_name, emulator.account_key
    )
    url = f"{emulator.endpoint}{path}?{query}"
    return requests.request(method, url, data=data or None, headers=headers, timeout=10)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_each_served_version_is_accepted(emulator: BatchEmulatorServer, version: str) -> None:
    pool_id = unique("versioned")
    body = {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
        "targetDedicatedNodes": 0,
    }
    created = signed_request(emulator, "POST", "/pools", version, body)
    assert created.status_code == 201, created.text

    fetched = signed_request(emulator, "GET", f"/pools/{pool_id}", version)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["id"] == pool_id
    assert signed_request(emulator, "GET", "/supportedimages", version).status_code == 200


@pytest.mark.parametrize("version", ["2022-10-01.16.0", "2025-06-01.21.0", "2099-01-01"])
def test_unknown_versions_are_refused(emulator: BatchEmulatorServer, version: str) -> None:
    response = signed_request(emulator, "GET", "/pools", version)
    assert response.status_code == 400
    assert response.json()["code"] == "UnsupportedRequestVersion"


@pytest.fixture(scope="module")
def modern_pool(client: BatchClient) -> str:
    """A pool using properties that older versions do not have (upgrade policy, OS disk caching)."""
    pool_id = unique("modern")
    configuration = m.VirtualMachineConfiguration(
        image_reference=UBUNTU.image_reference,
        node_agent_sku_id=UBUNTU.node_agent_sku_id,
        os_disk=m.BatchOsDisk(caching="readwrite", disk_size_gb=64),
        data_disks=[
            m.DataDisk(
                logical_unit_number=0,
                disk_size_gb=32,
                managed_disk=m.ManagedDisk(storage_account_type="premium_lrs"),
            )
        ],
    )
    client.create_pool(
        pool_options(
            pool_id,
            target_dedicated_nodes=0,
            virtual_machine_configuration=configuration,
            upgrade_policy=m.UpgradePolicy(mode="manual"),
        )
    )
    return pool_id


def _pool_at(emulator: BatchEmulatorServer, pool_id: str, version: str) -> dict[str, Any]:
    response = signed_request(emulator, "GET", f"/pools/{pool_id}", version)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def test_the_latest_version_returns_every_property(emulator: BatchEmulatorServer, modern_pool: str) -> None:
    pool = _pool_at(emulator, modern_pool, LATEST)
    configuration = pool["virtualMachineConfiguration"]
    assert pool["upgradePolicy"] == {"mode": "manual"}
    assert configuration["osDisk"]["caching"] == "readwrite"
    assert configuration["dataDisks"][0]["managedDisk"] == {"storageAccountType": "premium_lrs"}
    assert "storageAccountType" not in configuration["dataDisks"][0]


def test_older_versions_do_not_see_newer_properties(emulator: BatchEmulatorServer, modern_pool: str) -> None:
    oldest = _pool_at(emulator, modern_pool, OLDEST)
    assert "upgradePolicy" not in oldest  # 2024-02-01.19.0
    assert "osDisk" not in oldest["virtualMachineConfiguration"] or not {
        "caching",
        "diskSizeGB",
    } & set(oldest["virtualMachineConfiguration"]["osDisk"])  # 2023-11-01.18.0

    upgrade_era = _pool_at(emulator, modern_pool, "2024-02-01.19.0")
    assert upgrade_era["upgradePolicy"] == {"mode": "manual"}
    assert upgrade_era["virtualMachineConfiguration"]["osDisk"]["caching"] == "readwrite"


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS[:-1])
def test_data_disk_storage_type_is_where_older_versions_had_it(
    emulator: BatchEmulatorServer, modern_pool: str, version: str
) -> None:
    disk = _pool_at(emulator, modern_pool, version)["virtualMachineConfiguration"]["dataDisks"][0]
    assert disk["storageAccountType"] == "premium_lrs"
    assert "managedDisk" not in disk
    assert disk["lun"] == 0 and disk["diskSizeGB"] == 32


def test_file_lengths_are_numbers_before_2025(
    client: BatchClient, emulator: BatchEmulatorServer, job_on_shared_pool: str
) -> None:
    client.create_task(
        job_on_shared_pool, m.BatchTaskCreateOptions(id="hello", command_line=sh("echo hello"))
    )
    wait_for_task(client, job_on_shared_pool, "hello")
    path = f"/jobs/{job_on_shared_pool}/tasks/hello/files"

    def stdout_length(version: str) -> Any:
        response = signed_request(emulator, "GET", path, version)
        assert response.status_code == 200, response.text
        entry = next(item for item in response.json()["value"] if item["name"] == "stdout.txt")
        return entry["properties"]["contentLength"]

    assert stdout_length(LATEST) == "6"
    assert stdout_length("2024-07-01.20.0") == 6


def test_next_links_keep_the_requested_version(client: BatchClient, emulator: BatchEmulatorServer) -> None:
    for _ in range(2):
        client.create_pool(pool_options(unique("paged"), target_dedicated_nodes=0))
    response = signed_request(emulator, "GET", "/pools", OLDEST, extra_query="&maxresults=1")
    assert response.status_code == 200, response.text
    next_link = response.json()["odata.nextLink"]
    assert parse_qs(urlsplit(next_link).query)["api-version"] == [OLDEST]


def test_shaping_leaves_the_stored_document_alone() -> None:
    document = {"upgradePolicy": {"mode": "manual"}, "id": "p"}
    assert shape(document, OLDEST) == {"id": "p"}
    assert document == {"upgradePolicy": {"mode": "manual"}, "id": "p"}


def test_properties_the_newest_version_dropped_are_only_returned_to_older_versions(
    emulator: BatchEmulatorServer,
) -> None:
    pool_id = unique("tagged")
    body = {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
        "targetDedicatedNodes": 0,
        "resourceTags": {"team": "data"},
        "targetNodeCommunicationMode": "simplified",
    }
    created = signed_request(emulator, "POST", "/pools", "2024-07-01.20.0", body)
    assert created.status_code == 201, created.text

    then = _pool_at(emulator, pool_id, "2024-07-01.20.0")
    assert then["resourceTags"] == {"team": "data"}
    assert then["targetNodeCommunicationMode"] == "simplified"
    now = _pool_at(emulator, pool_id, LATEST)
    assert "resourceTags" not in now and "targetNodeCommunicationMode" not in now
    assert "resourceTags" not in _pool_at(emulator, pool_id, OLDEST)  # tags arrived in 2023-11-01.18.0


def test_a_data_disk_sent_in_an_older_shape_reads_back_in_each_versions_shape(
    emulator: BatchEmulatorServer,
) -> None:
    pool_id = unique("old-disks")
    body = {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
            "dataDisks": [{"lun": 1, "diskSizeGB": 16, "storageAccountType": "standard_lrs"}],
        },
        "targetDedicatedNodes": 0,
    }
    created = signed_request(emulator, "POST", "/pools", OLDEST, body)
    assert created.status_code == 201, created.text

    old_disk = _pool_at(emulator, pool_id, OLDEST)["virtualMachineConfiguration"]["dataDisks"][0]
    assert old_disk == {"lun": 1, "diskSizeGB": 16, "storageAccountType": "standard_lrs"}
    new_disk = _pool_at(emulator, pool_id, LATEST)["virtualMachineConfiguration"]["dataDisks"][0]
    assert new_disk == {"lun": 1, "diskSizeGB": 16, "managedDisk": {"storageAccountType": "standard_lrs"}}
