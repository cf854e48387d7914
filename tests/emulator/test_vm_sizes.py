"""VM sizes are accepted the way the service accepts them: any real Azure size name, cores by family."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from airflow_batch_provider.emulator.models.vm_sizes import parse_vm_size
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import POLL, error_of, pool_options, unique, wait_for


@pytest.mark.parametrize(
    "vm_size",
    [
        "standard_d2_v2",
        "Standard_D2s_v3",
        "Standard_NC24ads_A100_v4",
        "Standard_E64-16ds_v4",
        "Standard_A1",
        "Basic_A0",
        "Standard_D2plds_v5",
        "Standard_ND96isr_H100_v5",
        "Standard_HB120rs_v3",
        "Standard_DC4as_cc_v5",
    ],
)
def test_real_size_names_are_accepted_and_read_back(client: BatchClient, vm_size: str) -> None:
    pool_id = unique("size")
    client.create_pool(pool_options(pool_id, vm_size=vm_size, target_dedicated_nodes=0))
    assert client.get_pool(pool_id).vm_size == vm_size.lower()
    client.begin_delete_pool(pool_id, polling_interval=POLL).result()


@pytest.mark.parametrize(
    "vm_size",
    ["standard_imaginary_v9", "x", "Standard_D2foo_v3", "Standard_Q4_v3", "Premium_D2_v3", "Standard_D_v3"],
)
def test_names_that_are_not_vm_sizes_are_rejected(client: BatchClient, vm_size: str) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_pool(pool_options(unique("size"), vm_size=vm_size))
    assert error_of(excinfo) == (400, "InvalidPropertyValue")
    assert excinfo.value.error is not None
    details = {detail.code: detail.message for detail in excinfo.value.error.details}
    assert (details["PropertyName"], details["PropertyValue"]) == ("vmSize", vm_size)
    assert "Not an Azure VM size name" in details["Reason"]


@pytest.mark.parametrize(
    ("vm_size", "cores"),
    [
        ("Standard_D2s_v3", 2),
        ("standard_d2_v2", 2),
        ("Standard_D11_v2", 2),  # first-generation model number, not vCPUs
        ("Standard_D14_v2", 16),
        ("Standard_A7", 8),
        ("Basic_A0", 1),  # a shared core counts as one
        ("Standard_G5", 32),
        ("Standard_E64-16ds_v4", 64),  # constrained sizes count their full vCPUs
        ("Standard_NC24ads_A100_v4", 24),
    ],
)
def test_cores_for_quota_come_from_the_name(vm_size: str, cores: int) -> None:
    size = parse_vm_size(vm_size)
    assert size is not None and size.cores == cores


@pytest.fixture(scope="module")
def small_quota() -> Iterator[BatchClient]:
    with BatchEmulatorServer(step_delay=0.005, dedicated_core_quota=20) as server:
        yield BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key))


def test_a_size_s_cores_count_against_the_quota(small_quota: BatchClient) -> None:
    pool_id = unique("quota")
    # 20 cores of quota; Standard_D14_v2 has 16, so only one of two nodes fits.
    small_quota.create_pool(pool_options(pool_id, vm_size="Standard_D14_v2", target_dedicated_nodes=2))
    pool = wait_for(lambda: p if (p := small_quota.get_pool(pool_id)).allocation_state == "steady" else None)
    assert pool.current_dedicated_nodes == 1
    assert [error.code for error in pool.resize_errors or []] == ["AccountCoreQuotaReached"]
