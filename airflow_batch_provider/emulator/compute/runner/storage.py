"""Storage clients shared by the downloads and uploads of one task attempt.

One aiohttp session per attempt, created only when the attempt touches storage, carries every blob
client (through azure-core's aiohttp transport) and every plain HTTP download, so connections are
pooled and nothing is set up for tasks without resource or output files.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob.aio import BlobClient, ContainerClient

#: Retries of the storage SDK for one request; kept low so a dead endpoint fails an attempt quickly.
_RETRY_TOTAL = 2
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


def redact_url(url: str) -> str:
    """The URL without its query string, so SAS tokens never end up in failure messages or logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def is_blob_url(url: str) -> bool:
    """Whether an ``httpUrl`` points at Azure Blob Storage (a ``*.blob.*`` host or a SAS URL)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return ".blob." in host or "sig" in parse_qs(parts.query)


class StorageSession:
    """Lazily created HTTP session and per-container blob clients for one attempt."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._containers: dict[tuple[str, str], ContainerClient] = {}

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_HTTP_TIMEOUT)
        return self._session

    def _client_options(self) -> dict[str, Any]:
        return {
            "transport": AioHttpTransport(session=self.http, session_owner=False),
            "retry_total": _RETRY_TOTAL,
        }

    def container_from_url(self, container_url: str) -> ContainerClient:
        """A client for a container URL (with its SAS), reused for every use of the same URL."""
        key = ("url", container_url)
        client = self._containers.get(key)
        if client is None:
            client = ContainerClient.from_container_url(container_url, **self._client_options())
            self._containers[key] = client
        return client

    def container_from_connection_string(
        self, connection_string: str, container_name: str
    ) -> ContainerClient:
        key = (connection_string, container_name)
        client = self._containers.get(key)
        if client is None:
            client = ContainerClient.from_connection_string(
                connection_string, container_name, **self._client_options()
            )
            self._containers[key] = client
        return client

    def blob_from_url(self, blob_url: str) -> BlobClient:
        return BlobClient.from_blob_url(blob_url, **self._client_options())

    async def close(self) -> None:
        for client in self._containers.values():
            await client.close()
        self._containers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> StorageSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
