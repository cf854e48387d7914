"""Azurite plus the Batch emulator, wired together, with the Airflow connections that point at them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType

from airflow_batch_provider.testing.azurite import AzuriteServer
from airflow_batch_provider.testing.emulator import BatchEmulatorServer

BATCH_CONN_ID = "azbatch_default"
BLOB_CONN_ID = "azblob_default"


@dataclass
class LocalAzureStack:
    """A whole offline Azure for DAG tests: Azurite (Blob) and the Batch emulator using it as auto-storage.

    ``airflow_connections()`` and ``environ()`` give Airflow what it needs to reach both, as the
    default ``azbatch`` and ``azblob`` connections.
    """

    azurite: AzuriteServer = field(default_factory=AzuriteServer)
    batch: BatchEmulatorServer = field(default_factory=BatchEmulatorServer)

    def start(self) -> LocalAzureStack:
        self.azurite.start()
        try:
            self.batch.storage_connection_string = self.azurite.connection_string
            self.batch.start()
        except BaseException:
            self.azurite.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.batch.stop()
        finally:
            self.azurite.stop()

    def airflow_connections(self) -> dict[str, dict[str, object]]:
        """Connection id -> Airflow connection JSON (the ``AIRFLOW_CONN_*`` JSON format)."""
        return {
            BATCH_CONN_ID: {
                "conn_type": "azbatch",
                "host": self.batch.endpoint,
                "login": self.batch.account_name,
                "password": self.batch.account_key,
            },
            BLOB_CONN_ID: {
                "conn_type": "azblob",
                "extra": {"connection_string": self.azurite.connection_string},
            },
        }

    def environ(self) -> dict[str, str]:
        """``AIRFLOW_CONN_AZBATCH_DEFAULT`` and ``AIRFLOW_CONN_AZBLOB_DEFAULT``, ready for ``os.environ``."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)
            for conn_id, connection in self.airflow_connections().items()
        }

    def __enter__(self) -> LocalAzureStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
