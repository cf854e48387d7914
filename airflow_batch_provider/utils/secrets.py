"""Keeping secrets out of logs, XComs and rendered templates.

Everything secret the provider reads or mints (account keys, client secrets, connection strings, SAS
tokens) is registered with Airflow's secrets masker here, and URLs are stripped of their SAS before they
are logged or returned.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit, urlunsplit


def mask(secret: str | None) -> None:
    """Register one secret value with Airflow's secrets masker."""
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


def mask_sas(token: str | None) -> None:
    """Register a SAS token and its signature, raw and URL-encoded, with the secrets masker."""
    if not token:
        return
    token = token.lstrip("?")
    mask(token)
    for signature in parse_qs(token).get("sig", []):
        mask(signature)
        encoded = quote(signature, safe="")
        if encoded != signature:
            mask(encoded)


def mask_connection_string(connection_string: str | None, parts: dict[str, str]) -> None:
    """Register a storage connection string and each secret part of it (``parts`` as parsed)."""
    if not connection_string:
        return
    mask(connection_string)
    mask(parts.get("accountkey"))
    mask_sas(parts.get("sharedaccesssignature"))


def strip_query(url: str) -> str:
    """Drop the query string, and so any SAS, from a URL."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def connection_credentials(conn_id: str) -> tuple[str | None, str | None]:
    """``(login, password)`` of an Airflow connection (a container registry's user and password), the
    password registered with the secrets masker before it is used anywhere."""
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    mask(connection.password)
    return connection.login, connection.password
