"""The base both hooks share: reading the connection and turning it into credentials."""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_batch_provider.exceptions import ConnectionConfigError
from airflow_batch_provider.hooks.credentials import AuthMode, AzureConnectionSettings, Service

#: The connection ids used when none is given.
AZBATCH_DEFAULT_CONN_ID = "azbatch_default"
AZBLOB_DEFAULT_CONN_ID = "azblob_default"


class AzureBaseHook(BaseHook):
    """Reads an ``azbatch`` or ``azblob`` connection once and exposes its normalised settings.

    Subclasses set ``conn_name_attr``, ``default_conn_name``, ``conn_type``, ``hook_name`` and
    ``service``. Synchronous code uses :attr:`settings`; code running in the triggerer awaits
    :meth:`aget_settings`, which fetches the connection the async-safe way.

    :param conn_id: The Airflow connection id; default the subclass's ``default_conn_name``.
    """

    service: ClassVar[Service]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        self._settings: AzureConnectionSettings | None = None

    @cached_property
    def settings(self) -> AzureConnectionSettings:
        if self._settings is None:
            self._settings = self._settings_from(self.get_connection(self.conn_id))
        return self._settings

    async def aget_settings(self) -> AzureConnectionSettings:
        if self._settings is None:
            self._settings = self._settings_from(await self.aget_connection(self.conn_id))
        return self._settings

    def _checked_mode(self, settings: AzureConnectionSettings, url: str, url_name: str, fix: str) -> AuthMode:
        """The connection's authentication mode, refusing Entra ID over plain HTTP.

        Entra ID tokens are only sent over HTTPS; saying so here names the connection, the URL
        (``url_name``) and the ``fix``, before azure-core refuses with less to go on.
        """
        mode = settings.resolve_mode()
        if mode.uses_entra_id and urlsplit(url).scheme != "https":
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} ({mode.value}): Entra ID tokens are only sent over HTTPS, but "
                f"{url_name} is {url!r}. {fix}"
            )
        return mode

    def _settings_from(self, conn: Any) -> AzureConnectionSettings:
        return AzureConnectionSettings.from_fields(
            conn_id=self.conn_id,
            service=self.service,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
        )
