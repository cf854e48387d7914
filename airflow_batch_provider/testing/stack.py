"""Azurite plus the Batch emulator, wired together, with the Airflow connections that point at them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_batch_provider.testing.azurite import AzuriteServer
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.testing.lifecycle import StartStop

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.faults import FaultPlan
    from airflow_batch_provider.testing.fault_proxy import StorageFaultProxy

BATCH_CONN_ID = "azbatch_default"
BLOB_CONN_ID = "azblob_default"
#: The Entra ID connection for Resource Manager (application packages), when ``batch.management``.
ARM_CONN_ID = "azbatch_arm"
#: The Batch data plane over HTTPS with a service principal, when ``batch.https``.
BATCH_ENTRA_CONN_ID = "azbatch_entra"
#: Subscription and resource group the emulated Resource Manager accepts (any value works).
EMULATED_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
EMULATED_RESOURCE_GROUP = "local-batch-rg"
#: The service principal of ``azbatch_arm``: the emulator's token endpoint accepts any id and secret.
EMULATED_TENANT_ID = "00000000-0000-0000-0000-000000000001"
OFFLINE_CLIENT_ID = "airflow-offline"
OFFLINE_CLIENT_SECRET = "offline-not-a-secret"


@dataclass
class LocalAzureStack(StartStop):
    """A whole offline Azure for DAG tests: Azurite (Blob) and the Batch emulator using it as auto-storage.

    ``airflow_connections()`` and ``environ()`` give Airflow what it needs to reach both, as the
    default ``azbatch`` and ``azblob`` connections. With ``BatchEmulatorServer(management=True)`` there
    is also ``azbatch_arm``: a service-principal connection to the emulator's HTTPS management
    endpoint, trusting its CA, for publishing application packages; its tokens come from the
    emulator's Entra ID endpoint (``authority_host``), so it works offline as a connection only. With
    ``BatchEmulatorServer(https=True)``, ``azbatch_entra`` is the same service principal on the
    data plane's HTTPS endpoint (``ca_bundle`` trusts its CA).

    With ``storage_faults=True`` Airflow's blob connection goes through a
    :class:`~airflow_batch_provider.testing.fault_proxy.StorageFaultProxy` (``storage_proxy``), and
    :meth:`set_faults` faults both services with one seed.
    """

    azurite: AzuriteServer = field(default_factory=AzuriteServer)
    batch: BatchEmulatorServer = field(default_factory=BatchEmulatorServer)
    storage_faults: bool = False
    storage_proxy: StorageFaultProxy | None = field(default=None, init=False)

    def start(self) -> LocalAzureStack:
        self.azurite.start()
        try:
            if self.storage_faults:
                from airflow_batch_provider.testing.fault_proxy import StorageFaultProxy

                self.storage_proxy = StorageFaultProxy.for_azurite(self.azurite).start()
            self.batch.storage_connection_string = self.azurite.connection_string
            self.batch.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.batch.stop()
        finally:
            try:
                if self.storage_proxy is not None:
                    self.storage_proxy.stop()
                    self.storage_proxy = None
            finally:
                self.azurite.stop()

    @property
    def blob_connection_string(self) -> str:
        """The connection string Airflow uses: through the fault proxy when there is one."""
        if self.storage_proxy is not None:
            return self.storage_proxy.connection_string(self.azurite)
        return self.azurite.connection_string

    def set_faults(self, plan: FaultPlan | None = None, *, nodes_too: bool = False, **fields: Any) -> None:
        """Fault the Batch emulator and (with ``storage_faults``) Storage with the same plan fields.

        Storage never answers 429, so that kind is left out of its plan. Its faults hit the provider's
        own requests (its User-Agent) unless ``nodes_too``: the emulated nodes fetch resource files and
        upload outputs through the same SAS URLs, but a real node talks to Storage from inside Azure
        and its agent retries on its own, so that traffic is not what these tests are about.
        """
        from airflow_batch_provider.config import USER_AGENT
        from airflow_batch_provider.emulator.faults import FaultPlan
        from airflow_batch_provider.testing.fault_proxy import STORAGE_KINDS

        plan = FaultPlan.of(plan, **fields)
        self.batch.set_faults(plan)
        if self.storage_proxy is not None:
            update: dict[str, Any] = {
                "kinds": tuple(kind for kind in plan.kinds if kind in STORAGE_KINDS) or ("500",)
            }
            if not nodes_too and plan.user_agent_pattern is None:
                update["user_agent_pattern"] = re.escape(USER_AGENT.split("/", 1)[0])
            self.storage_proxy.set_faults(plan.model_copy(update=update))

    def clear_faults(self) -> None:
        self.batch.clear_faults()
        if self.storage_proxy is not None:
            self.storage_proxy.clear_faults()

    def airflow_connections(self) -> dict[str, dict[str, object]]:
        """Connection id -> Airflow connection JSON (the ``AIRFLOW_CONN_*`` JSON format)."""
        connections: dict[str, dict[str, object]] = {
            BATCH_CONN_ID: {
                "conn_type": "azbatch",
                "host": self.batch.endpoint,
                "login": self.batch.account_name,
                "password": self.batch.account_key,
            },
            BLOB_CONN_ID: {
                "conn_type": "azblob",
                "extra": {"connection_string": self.blob_connection_string},
            },
        }
        if self.batch.https:
            connections[BATCH_ENTRA_CONN_ID] = {
                "conn_type": "azbatch",
                "host": self.batch.https_endpoint,
                "login": self.batch.account_name,
                "extra": {**self._service_principal(), "ca_bundle": str(self.batch.ca_cert_path)},
            }
        if self.batch.management:
            # A service principal whose tokens come from the emulator's Entra ID endpoint.
            connections[ARM_CONN_ID] = {
                "conn_type": "azbatch",
                "host": self.batch.endpoint,
                "login": self.batch.account_name,
                "extra": {
                    **self._service_principal(),
                    "subscription_id": EMULATED_SUBSCRIPTION_ID,
                    "resource_group": EMULATED_RESOURCE_GROUP,
                    "management_endpoint": self.batch.management_endpoint,
                    "management_ca_bundle": str(self.batch.ca_cert_path),
                },
            }
        return connections

    def _service_principal(self) -> dict[str, str]:
        """The extras of a service principal whose tokens come from the emulator's Entra ID endpoint."""
        return {
            "auth_type": "service_principal",
            "tenant_id": EMULATED_TENANT_ID,
            "client_id": OFFLINE_CLIENT_ID,
            "client_secret": OFFLINE_CLIENT_SECRET,
            "authority_host": self.batch.authority_host,
            "authority_ca_bundle": str(self.batch.ca_cert_path),
        }

    def environ(self) -> dict[str, str]:
        """``AIRFLOW_CONN_AZBATCH_DEFAULT``, ``AIRFLOW_CONN_AZBLOB_DEFAULT`` (and ``..._AZBATCH_ARM``)."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)
            for conn_id, connection in self.airflow_connections().items()
        }
