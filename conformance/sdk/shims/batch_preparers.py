"""Stand-ins for azure-batch's ``tests/batch_preparers.py``: the account, pool and job the tests get.

The account is the session's emulated account (Shared Key over HTTP). The pool is the one the
original creates through Resource Manager, created here through the Batch data plane with the same
settings. The job is created as the original creates it.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import azure.batch
import azure.batch.models
import azure.core.exceptions
import emulated_account
from azure.batch import models
from devtools_testutils import AzureMgmtPreparer, AzureTestError, FakeResource
from devtools_testutils.fake_credentials import BATCH_TEST_PASSWORD
from devtools_testutils.resource_testcase import RESOURCE_GROUP_PARAM

BATCH_ACCOUNT_PARAM = "batch_account"
STORAGE_ACCOUNT_PARAM = "storage_account"
#: How long a prepared pool may take to reach a steady allocation with its nodes idle.
POOL_READY_TIMEOUT = 120.0


class FakeAccount(NamedTuple):
    name: str
    account_endpoint: str


class AccountPreparer(AzureMgmtPreparer):
    """The emulated Batch account and its Shared Key credential; emptied after the test."""

    def __init__(
        self,
        name_prefix: str = "batch",
        location: str = "westus",
        parameter_name: str = BATCH_ACCOUNT_PARAM,
        resource_group_parameter_name: str = RESOURCE_GROUP_PARAM,
        disable_recording: bool = True,
        playback_fake_resource: Any = None,
        batch_environment: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        existing_account_name: str | None = None,
        existing_resource_group: str | None = None,
    ) -> None:
        super().__init__(name_prefix, 24)
        self.location = location
        self.parameter_name = parameter_name
        self.creds_parameter = "credential"

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        account = emulated_account.current()
        return {
            self.parameter_name: FakeAccount(name=account.name, account_endpoint=account.endpoint),
            self.creds_parameter: account.credential,
        }

    def remove_resource(self, name: str, **kwargs: Any) -> None:
        emulated_account.empty_account()


class PoolPreparer(AzureMgmtPreparer):
    """The pool the original creates through Resource Manager, created through the data plane.

    Same settings: display name, ``standard_d2_v2``, the admin user ``task-user``, the Ubuntu 22.04 or
    Windows Server 2016 image, an inbound NAT pool, ``size`` dedicated nodes. Waits until the pool is
    steady and its nodes are idle.
    """

    def __init__(
        self,
        name_prefix: str = "",
        size: int = 0,
        os: str = "Linux",
        config: str = "iaas",
        parameter_name: str = "batch_pool",
        location: str | None = None,
        resource_group_parameter_name: str = RESOURCE_GROUP_PARAM,
        batch_account_parameter_name: str = BATCH_ACCOUNT_PARAM,
        disable_recording: bool = True,
        playback_fake_resource: Any = None,
        client_kwargs: dict[str, Any] | None = None,
        pool_name: str | None = None,
    ) -> None:
        super().__init__(name_prefix, 24)
        self.size = size
        self.os = os
        self.parameter_name = parameter_name
        self.pool_name = pool_name

    def _options(self, name: str) -> models.BatchPoolCreateOptions:
        if self.os == "Windows":
            image = models.BatchVmImageReference(
                publisher="MicrosoftWindowsServer", offer="WindowsServer", sku="2016-Datacenter-smalldisk"
            )
            agent = "batch.node.windows amd64"
        else:
            image = models.BatchVmImageReference(
                publisher="Canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"
            )
            agent = "batch.node.ubuntu 22.04"
        return models.BatchPoolCreateOptions(
            id=name,
            display_name="test_pool",
            vm_size="standard_d2_v2",
            user_accounts=[
                models.UserAccount(
                    name="task-user",
                    password=BATCH_TEST_PASSWORD,
                    elevation_level=models.ElevationLevel.ADMIN,
                )
            ],
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=image, node_agent_sku_id=agent
            ),
            target_dedicated_nodes=self.size,
            network_configuration=models.NetworkConfiguration(
                endpoint_configuration=models.BatchPoolEndpointConfiguration(
                    inbound_nat_pools=[
                        models.BatchInboundNatPool(
                            name="ruleName",
                            protocol=models.InboundEndpointProtocol.TCP,
                            backend_port=3389,
                            frontend_port_range_start=15000,
                            frontend_port_range_end=15100,
                        )
                    ]
                )
            ),
        )

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        name = self.pool_name or name
        with emulated_account.current().client() as client:
            try:
                client.create_pool(self._options(name))
            except azure.core.exceptions.HttpResponseError as err:
                raise AzureTestError(f"creating pool {name} failed: {err.message}") from err
            deadline = time.monotonic() + POOL_READY_TIMEOUT
            while True:
                pool = client.get_pool(name)
                nodes = list(client.list_nodes(name))
                steady = pool.allocation_state == models.AllocationState.STEADY
                if steady and len(nodes) >= self.size and all(n.state == "idle" for n in nodes):
                    break
                if time.monotonic() > deadline:
                    raise AzureTestError(f"pool {name} was not ready within {POOL_READY_TIMEOUT:.0f}s")
                time.sleep(0.1)
        return {self.parameter_name: FakeResource(name=name, id=name)}

    def remove_resource(self, name: str, **kwargs: Any) -> None:
        return None  # the account preparer empties the account after the test


class JobPreparer(AzureMgmtPreparer):
    """A job on the prepared pool, or on an auto pool when the test has none (as the original)."""

    def __init__(
        self,
        name_prefix: str = "batch",
        parameter_name: str = "batch_job",
        batch_account_parameter_name: str = BATCH_ACCOUNT_PARAM,
        batch_credentials_parameter_name: str = "credential",
        batch_pool_parameter_name: str = "batch_pool",
        disable_recording: bool = True,
        playback_fake_resource: Any = None,
        client_kwargs: dict[str, Any] | None = None,
        **extra_args: Any,
    ) -> None:
        super().__init__(name_prefix, 24)
        self.parameter_name = parameter_name
        self.batch_pool_parameter_name = batch_pool_parameter_name
        self.extra_args = extra_args

    def _pool_info(self, **kwargs: Any) -> azure.batch.models.BatchPoolInfo:
        pool = kwargs.get(self.batch_pool_parameter_name)
        if pool is not None:
            return azure.batch.models.BatchPoolInfo(pool_id=pool.name)
        auto_pool = azure.batch.models.BatchAutoPoolSpecification(
            pool_lifetime_option=azure.batch.models.BatchPoolLifetimeOption.JOB,
            pool=azure.batch.models.BatchPoolSpecification(
                vm_size="standard_d2_v2",
                virtual_machine_configuration=azure.batch.models.VirtualMachineConfiguration(
                    image_reference=azure.batch.models.BatchVmImageReference(
                        publisher="Canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 22.04",
                ),
            ),
        )
        return azure.batch.models.BatchPoolInfo(auto_pool_specification=auto_pool)

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        job = azure.batch.models.BatchJobCreateOptions(
            id=name, pool_info=self._pool_info(**kwargs), **self.extra_args
        )
        with emulated_account.current().client() as client:
            try:
                client.create_job(job)
            except azure.core.exceptions.HttpResponseError as err:
                message = f"{err.error.code if err.error else ''}:{err.message}"
                raise AzureTestError(message) from err
        return {self.parameter_name: FakeResource(name=name, id=name)}

    def remove_resource(self, name: str, **kwargs: Any) -> None:
        return None  # the account preparer empties the account after the test
