"""Integers sent as JSON strings (``"targetDedicatedNodes": "1"``, as the Azure CLI sends them) count.

The service reads numeric strings as numbers; anything else in an integer property is still 400.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import unique, wait_for_idle_nodes
from tests.emulator.test_api_versions import signed_request

CLI_VERSION = "2024-02-01.19.0"


def _pool_body(pool_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
            "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        },
        **values,
    }


def test_a_pool_created_with_string_counts_gets_those_nodes(
    client: BatchClient, emulator: BatchEmulatorServer
) -> None:
    pool_id = unique("strings")
    body = _pool_body(pool_id, targetDedicatedNodes="1", taskSlotsPerNode="2")
    response = signed_request(emulator, "POST", "/pools", CLI_VERSION, body)
    assert response.status_code == 201, response.text

    pool = client.get_pool(pool_id)
    assert pool.target_dedicated_nodes == 1 and pool.task_slots_per_node == 2
    wait_for_idle_nodes(client, pool_id, 1)


def test_a_resize_with_a_string_count_resizes(client: BatchClient, emulator: BatchEmulatorServer) -> None:
    pool_id = unique("resize-strings")
    signed_request(emulator, "POST", "/pools", CLI_VERSION, _pool_body(pool_id, targetDedicatedNodes=0))
    response = signed_request(
        emulator, "POST", f"/pools/{pool_id}/resize", CLI_VERSION, {"targetDedicatedNodes": "2"}
    )
    assert response.status_code == 202, response.text
    wait_for_idle_nodes(client, pool_id, 2)


@pytest.mark.parametrize("value", ["one", "1.5", "", True])
def test_non_integers_are_still_refused(emulator: BatchEmulatorServer, value: Any) -> None:
    body = _pool_body(unique("bad-count"), targetDedicatedNodes=0, taskSlotsPerNode=value)
    response = signed_request(emulator, "POST", "/pools", CLI_VERSION, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidPropertyValue"
