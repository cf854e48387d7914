"""Azure Blob Storage: :class:`BlobStorageHook`, built from its clients (:mod:`.client`), transfers
(:mod:`.transfer`) and SAS URLs (:mod:`.sas`), with the fast List Blobs reader (:mod:`.listing`)."""

from __future__ import annotations

from urllib.parse import parse_qs

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from airflow_batch_provider.exceptions import ConnectionConfigError
from airflow_batch_provider.hooks.blob.client import _AUTH_FAILURE_CODES, _error_code
from airflow_batch_provider.hooks.blob.listing import BlobInfo
from airflow_batch_provider.hooks.blob.sas import DEFAULT_SAS_EXPIRY, BlobSasMixin
from airflow_batch_provider.hooks.blob.transfer import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_CONCURRENCY_PER_FILE,
    MANIFEST_DIR,
    BlobFile,
    BlobTransferMixin,
    TransferResult,
)
from airflow_batch_provider.hooks.credentials import parse_connection_string


class BlobStorageHook(BlobTransferMixin, BlobSasMixin):
    """Azure Blob Storage through an ``azblob`` connection.

    The connection's authentication mode follows
    :class:`~airflow_batch_provider.hooks.credentials.AzureConnectionSettings`: connection string, SAS
    token, account key, service principal, workload identity, managed identity or
    ``DefaultAzureCredential``. One synchronous and one asynchronous client are created per hook (the
    asynchronous one per event loop) and reused.

    :param azblob_conn_id: The Airflow connection id.
    :param http_policies: Extra azure-core pipeline policies (``SansIOHTTPPolicy``/``HTTPPolicy``) for
        both clients, run on every HTTP attempt: to count, time or tag requests, as the benchmarks do.
    """

    def test_connection(self) -> tuple[bool, str]:
        """Make one real call with the connection's credentials and report the outcome.

        Reads the account information; when the credentials are accepted but may not read it, lists
        one container instead. A SAS scoped to one container or blob can do neither, which is reported
        as not verifiable rather than as wrong.
        """
        try:
            mode = self.settings.resolve_mode()
            client = self.get_conn()
        except ConnectionConfigError as err:
            return False, str(err)
        except Exception as err:
            return False, f"Could not read connection {self.conn_id!r}: {type(err).__name__}: {err}"
        label = self._account_label()
        try:
            try:
                info = client.get_account_information()
                kind = info.get("account_kind") or "storage"
                return True, f"Connected to {label} ({kind}, {mode.value})."
            except HttpResponseError as err:
                if err.status_code != 403 or _error_code(err) in _AUTH_FAILURE_CODES | {""}:
                    raise
            # Authenticated, but not allowed to read account information: try listing containers.
            try:
                for page in client.list_containers(results_per_page=1).by_page():
                    list(page)
                    break
                return True, f"Connected to {label} ({mode.value}); containers can be listed."
            except HttpResponseError as err:
                code = _error_code(err)
                if err.status_code == 403 and code and code not in _AUTH_FAILURE_CODES:
                    return True, (
                        f"The credentials for {label} were accepted ({mode.value}), but they may neither "
                        f"read account information nor list containers ({code}); operations they allow work."
                    )
                raise
        except (ClientAuthenticationError, HttpResponseError) as err:
            scope = self._sas_scope()
            if err.status_code == 403 and scope:
                return False, (
                    f"Could not verify connection {self.conn_id!r}: its SAS token is scoped to a single "
                    f"{scope}, and such a token can neither read account information nor list containers "
                    "(HTTP 403). It may still be valid there; run a task on that container to check it."
                )
            translated = self._auth_error(err, "testing the connection")
            if translated is not None:
                return False, str(translated)
            return (
                False,
                f"Blob Storage answered HTTP {err.status_code} ({_error_code(err) or type(err).__name__}).",
            )
        except Exception as err:
            return False, f"Could not reach {self.settings.blob_account_url}: {type(err).__name__}: {err}"

    def _sas_scope(self) -> str | None:
        """``"container"`` or ``"blob"`` when the connection's SAS is a service SAS of that scope."""
        settings = self.settings
        token = settings.sas_token
        if settings.connection_string:
            token = parse_connection_string(settings.connection_string).get("sharedaccesssignature", token)
        if not token:
            return None
        query = parse_qs(token.lstrip("?"))
        if "srt" in query:
            return None
        return {"c": "container", "b": "blob", "d": "directory"}.get(query.get("sr", [""])[0], "container")


__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_CONCURRENCY_PER_FILE",
    "DEFAULT_SAS_EXPIRY",
    "MANIFEST_DIR",
    "BlobFile",
    "BlobInfo",
    "BlobStorageHook",
    "TransferResult",
]
