"""``azblob://<container>/<path>``: Airflow Object Storage on an ``azblob`` connection.

``ObjectStoragePath("azblob://outputs/job-1/", conn_id="azblob_default")`` lists, reads and writes
blobs through `adlfs <https://github.com/fsspec/adlfs>`_ with the connection's credentials, in every
mode the Blob hook supports (connection string, SAS token, account key, Entra ID), against Azure or a
local emulator alike. The scheme is ``azblob`` so that it never clashes with ``abfs``, ``az`` or
``wasb`` of the Microsoft Azure provider when both are installed.
"""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import urlsplit

import fsspec
from adlfs import AzureBlobFileSystem
from upath.implementations.cloud import AzurePath

from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.credentials import AuthMode

#: The schemes Airflow routes to :func:`get_fs`.
schemes = ["azblob"]


class AzblobFileSystem(AzureBlobFileSystem):
    """adlfs under the provider's own scheme, so that paths read ``azblob://container/path``."""

    protocol = ("azblob",)


def _register_protocol() -> None:
    """Teach fsspec and universal_pathlib the ``azblob`` protocol, parsed exactly like ``az``.

    Runs when this module loads, which the ``universal_pathlib.implementations`` entry point makes
    happen before the first ``azblob://`` path is parsed.
    """
    fsspec.register_implementation("azblob", AzblobFileSystem, clobber=True)
    _parse_like_az("azblob")


def _parse_like_az(protocol: str) -> None:
    """Give ``protocol`` the path parsing rules universal_pathlib applies to ``az``.

    universal_pathlib (0.3.8 to 0.3.10 at least) keys those rules (the container is the anchor, empty
    segments are kept) by protocol name in a private table, ``WrappedFileSystemFlavour.protocol_config``,
    and offers no public way to extend it (fsspec/universal_pathlib#291): its ``register_implementation``
    and entry point register only the path class. So the protocol is added to that table, here and
    nowhere else; ``tests/unit/test_fs_blob.py`` fails as soon as a upath release changes it.
    """
    try:
        from upath._flavour import WrappedFileSystemFlavour

        config = WrappedFileSystemFlavour.protocol_config
        for rules in config.values():
            if isinstance(rules, set) and "az" in rules:
                rules.add(protocol)
        WrappedFileSystemFlavour.from_protocol.cache_clear()  # forget a parse made before this
    except (ImportError, AttributeError) as err:
        warnings.warn(
            f"universal_pathlib changed its internals ({err}); {protocol}:// paths may treat the "
            "container as a folder. Report it to airflow-batch-provider, or install "
            "universal-pathlib 0.3.10.",
            RuntimeWarning,
            stacklevel=2,
        )


_register_protocol()


class AzblobPath(AzurePath):
    """The ``universal_pathlib`` path class of ``azblob://`` URLs (container first, like ``az://``).

    Registered through the ``universal_pathlib.implementations`` entry point, which is how
    ``ObjectStoragePath`` learns that the scheme exists.
    """

    __slots__ = ()


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> AzblobFileSystem:
    """An ``adlfs`` filesystem for ``azblob://`` paths, authenticated by the ``azblob`` connection.

    ``storage_options`` are passed to ``adlfs.AzureBlobFileSystem`` and win over the connection.
    """
    from airflow_batch_provider.hooks.blob import BlobStorageHook

    settings = BlobStorageHook(conn_id or AZBLOB_DEFAULT_CONN_ID).settings
    options = adlfs_options(settings)
    options.update(storage_options or {})
    return AzblobFileSystem(**options)


def adlfs_options(settings: Any) -> dict[str, Any]:
    """The ``AzureBlobFileSystem`` keyword arguments for one connection's settings.

    Keys and SAS tokens are handed over as a connection string with an explicit ``BlobEndpoint``, so
    a custom or ``http://`` endpoint (Azurite) works too; Entra ID modes pass the connection's
    asynchronous credential, which adlfs uses for its asynchronous client.
    """
    mode = settings.resolve_mode()
    if mode is AuthMode.CONNECTION_STRING:
        return {"connection_string": settings.connection_string}
    endpoint = f"BlobEndpoint={settings.blob_account_url};"
    if mode is AuthMode.SHARED_KEY:
        return {
            "connection_string": f"{endpoint}AccountName={settings.resolved_account_name};"
            f"AccountKey={settings.account_key};"
        }
    if mode is AuthMode.SAS_TOKEN:
        return {"connection_string": f"{endpoint}SharedAccessSignature={settings.sas_token.lstrip('?')};"}
    url = urlsplit(settings.blob_account_url)
    return {
        "account_name": settings.resolved_account_name,
        "account_host": url.netloc + url.path.rstrip("/"),
        "credential": settings.async_credential(),
    }
