"""The Blob hook's clients (one sync, one async per event loop), its error translation, containers and
listings: the base the transfer and SAS parts build on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from airflow_batch_provider.batch.validation import validate_container_name
from airflow_batch_provider.config import USER_AGENT, conf_number
from airflow_batch_provider.exceptions import (
    AzureAuthenticationError,
    BatchProviderError,
    ConnectionConfigError,
)
from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID, AzureBaseHook
from airflow_batch_provider.hooks.blob.listing import LIST_PAGE_SIZE, BlobInfo, aiter_listing_pages
from airflow_batch_provider.hooks.credentials import AuthMode, parse_connection_string
from airflow_batch_provider.utils.secrets import strip_query

if TYPE_CHECKING:  # the storage SDK costs a third of a second to import: loaded with the first client
    from azure.storage.blob import BlobServiceClient, UserDelegationKey
    from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

T = TypeVar("T")


# Azure's HTTP logging policy logs every request and response at INFO; thousands of uploads would
# flood the task log (and cost CPU). Quieten it unless someone configured that logger explicitly.
_HTTP_LOGGER = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")


if _HTTP_LOGGER.level == logging.NOTSET:
    _HTTP_LOGGER.setLevel(logging.WARNING)

#: Codes of a 403 that mean the credentials themselves were rejected (Azurite says AuthorizationFailure
#: for a bad signature, where Azure says AuthenticationFailed; Azure also uses it for network rules).
_AUTH_FAILURE_CODES = frozenset({"AuthenticationFailed", "InvalidAuthenticationInfo", "AuthorizationFailure"})


def _error_code(err: BaseException) -> str:
    """The storage error code of ``err`` as plain text (the SDK gives an enum or a string)."""
    code = getattr(err, "error_code", None)
    return str(getattr(code, "value", code) or "")


#: Retry settings of the storage SDK's exponential retry, overridable in ``[azure_batch_provider]`` as
#: ``blob_retry_total``, ``blob_retry_initial_backoff``, ``blob_retry_increment_base`` and
#: ``blob_retry_jitter`` (seconds). The SDK retries 5xx, timeouts and dropped connections for every
#: method; uploads and downloads are idempotent, and "already exists" answers are handled here.
_BLOB_RETRY_OPTIONS: dict[str, str] = {
    "retry_total": "blob_retry_total",
    "initial_backoff": "blob_retry_initial_backoff",
    "increment_base": "blob_retry_increment_base",
    "random_jitter_range": "blob_retry_jitter",
}


def _retry_options() -> dict[str, Any]:
    """Keyword arguments for the storage clients' ``ExponentialRetry``, from the Airflow config."""
    return {argument: conf_number(key) for argument, key in _BLOB_RETRY_OPTIONS.items()}


def _requests_transport() -> Any:
    """A requests transport whose pool keeps enough connections for parallel block transfers."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=True)


def _aiohttp_transport() -> Any:
    """An aiohttp transport that reads proxy settings from the environment only when there are any.

    With ``trust_env`` aiohttp looks up ``.netrc`` and the proxy variables in a worker thread for every
    request, which costs more than sending a small blob.
    """
    from azure.core.pipeline.transport import AioHttpTransport

    return AioHttpTransport(use_env_settings=_proxy_settings_present())


def _proxy_settings_present() -> bool:
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"):
        if os.environ.get(name) or os.environ.get(name.upper()):
            return True
    netrc = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    return os.path.exists(netrc)


class BlobClientHook(AzureBaseHook):
    """The clients, errors, containers and listings of a Blob hook: the base of
    :class:`~airflow_batch_provider.hooks.blob.BlobStorageHook`.

    :param azblob_conn_id: The ``azblob`` connection id.
    :param http_policies: Extra azure-core pipeline policies for both clients, run on every HTTP attempt.
    """

    conn_name_attr: ClassVar[str] = "azblob_conn_id"

    default_conn_name: ClassVar[str] = AZBLOB_DEFAULT_CONN_ID

    conn_type: ClassVar[str] = "azblob"

    hook_name: ClassVar[str] = "Azure Blob Storage (batch provider)"

    service = "blob"

    #: Blobs per List Blobs page; the service returns at most 5000.
    list_page_size: int = LIST_PAGE_SIZE

    def __init__(
        self,
        azblob_conn_id: str = default_conn_name,
        *,
        http_policies: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=azblob_conn_id, **kwargs)
        self.azblob_conn_id = self.conn_id
        self.http_policies = list(http_policies or ())
        self._client: BlobServiceClient | None = None
        self._client_lock = threading.Lock()
        self._async_clients: dict[asyncio.AbstractEventLoop, tuple[AsyncBlobServiceClient, Any]] = {}
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_key_expiry: datetime | None = None

    def get_conn(self) -> BlobServiceClient:
        """The synchronous ``BlobServiceClient``, created on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = self._create_client()
            return self._client

    def _create_client(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        settings = self.settings
        mode = self._blob_mode()
        options = {
            "transport": _requests_transport(),
            "user_agent": USER_AGENT,
            **_retry_options(),
            **self._policy_options(),
        }
        if mode is AuthMode.CONNECTION_STRING:
            assert settings.connection_string is not None
            return BlobServiceClient.from_connection_string(settings.connection_string, **options)
        return BlobServiceClient(settings.blob_account_url, credential=settings.credential(), **options)

    def _policy_options(self) -> dict[str, Any]:
        """The client keyword for :attr:`http_policies`.

        The storage SDK builds its own pipeline and ignores azure-core's ``per_retry_policies``; it
        takes extra policies as ``_additional_pipeline_policies`` and runs them after its retry policy.
        """
        return {"_additional_pipeline_policies": list(self.http_policies)} if self.http_policies else {}

    def _blob_mode(self) -> AuthMode:
        return self._checked_mode(
            self.settings,
            self.settings.blob_account_url,
            "the account URL",
            "Use an https:// host, or an account key, connection string or SAS token for a local emulator.",
        )

    async def aget_conn(self) -> AsyncBlobServiceClient:
        """The asynchronous ``BlobServiceClient`` of the running event loop, created on first use."""
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(loop)
        if entry is None:
            from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

            settings = await self.aget_settings()
            mode = self._blob_mode()
            credential: Any = None
            options = {
                "transport": _aiohttp_transport(),
                "user_agent": USER_AGENT,
                **_retry_options(),
                **self._policy_options(),
            }
            if mode is AuthMode.CONNECTION_STRING:
                assert settings.connection_string is not None
                client = AsyncBlobServiceClient.from_connection_string(settings.connection_string, **options)
            else:
                credential = settings.async_credential()
                client = AsyncBlobServiceClient(settings.blob_account_url, credential=credential, **options)
            entry = (client, credential)
            self._async_clients[loop] = entry
        return entry[0]

    async def aclose(self) -> None:
        """Close the asynchronous client (and its credential) of the running event loop."""
        entry = self._async_clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            client, credential = entry
            await client.close()
            if credential is not None and hasattr(credential, "close"):
                await credential.close()

    def close(self) -> None:
        """Close the synchronous client."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _run(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run an async method to completion from synchronous code, closing its client afterwards."""
        _ = self.settings  # read the connection here, synchronously, rather than inside the loop

        async def runner() -> T:
            try:
                return await factory()
            finally:
                await self.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(runner())
        # Called from inside a running loop (a notebook, say): use a loop of our own in a thread.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, runner()).result()

    @contextlib.contextmanager
    def _translate_errors(self, action: str) -> Iterator[None]:
        """Re-raise Azure's authentication and permission failures as :class:`AzureAuthenticationError`.

        The message names the connection and what to check; it never includes a key or SAS, and the
        original exception (whose text could quote request details) is not chained.
        """
        try:
            yield
        except (ClientAuthenticationError, HttpResponseError) as err:
            translated = self._auth_error(err, action)
            if translated is None:
                raise
            raise translated from None

    def _auth_error(self, err: HttpResponseError, action: str) -> AzureAuthenticationError | None:
        status = getattr(err, "status_code", None)
        code = _error_code(err)
        if not isinstance(err, ClientAuthenticationError) and status != 403:
            return None
        mode = self._mode_label()
        where = f"Azure Blob Storage rejected connection {self.conn_id!r} ({mode}) while {action}"
        detail = f"HTTP {status}, {code}" if status else type(err).__name__
        if status is None:
            # No response at all: an Entra ID credential could not get a token.
            hint = (
                "Entra ID could not issue a token: check tenant_id, client_id and the secret or identity "
                "the connection names, and that this machine can reach the identity endpoint."
            )
        elif code in _AUTH_FAILURE_CODES or not code:
            hint = {
                AuthMode.SAS_TOKEN.value: "Check that the SAS token is complete, not expired and signed "
                "for this storage account.",
                AuthMode.CONNECTION_STRING.value: "Check the AccountName and AccountKey (or "
                "SharedAccessSignature) in the connection string, and that it names this account.",
                AuthMode.SHARED_KEY.value: "Check the account name (login) and the account key "
                "(password); keys change when they are rotated.",
            }.get(mode, "Check that the identity exists and the clock of this machine is correct.")
            if code == "AuthorizationFailure":
                hint += " The account's network rules may also block this machine."
        else:
            hint = (
                "The credentials were accepted but do not allow this operation. For a SAS token, issue one "
                "with the needed permissions and resource types; for Entra ID, grant a data-plane role "
                "such as 'Storage Blob Data Contributor' on the account or container."
            )
        request_id = getattr(getattr(err, "response", None), "headers", {}).get("x-ms-request-id")
        suffix = f" Request id: {request_id}." if request_id else ""
        return AzureAuthenticationError(f"{where} ({detail}). {hint}{suffix}")

    def _signs_with_key_or_token(self) -> bool:
        """Whether requests are signed with an account key or an Entra ID token (not a SAS)."""
        settings = self.settings
        mode = settings.resolve_mode()
        if mode is AuthMode.CONNECTION_STRING:
            assert settings.connection_string is not None
            return "accountkey" in parse_connection_string(settings.connection_string)
        return mode is not AuthMode.SAS_TOKEN

    def _mode_label(self) -> str:
        try:
            return self.settings.resolve_mode().value
        except ConnectionConfigError:
            return "unknown auth mode"

    def create_container(self, container: str) -> bool:
        """Create ``container`` unless it exists. Returns whether it was created."""
        validate_container_name(container)
        with self._translate_errors(f"creating container {container!r}"):
            try:
                self.get_conn().create_container(container)
            except ResourceExistsError:
                return False
        self.log.info("Created container %s", container)
        return True

    async def acreate_container(self, container: str) -> bool:
        """Async :meth:`create_container`."""
        validate_container_name(container)
        client = await self.aget_conn()
        with self._translate_errors(f"creating container {container!r}"):
            try:
                await client.create_container(container)
            except ResourceExistsError:
                return False
        self.log.info("Created container %s", container)
        return True

    def container_url(self, container: str) -> str:
        """The container's URL, without any SAS."""
        return strip_query(self.get_conn().get_container_client(container).url)

    def blob_url(self, container: str, blob: str) -> str:
        """A blob's URL, without any SAS."""
        return strip_query(self.get_conn().get_blob_client(container, blob).url)

    def list_blobs(self, container: str, prefix: str = "") -> list[BlobInfo]:
        """Every blob whose name starts with ``prefix``, with size and MD5."""
        return self._run(lambda: self.alist_blobs(container, prefix))

    async def alist_blobs(self, container: str, prefix: str = "") -> list[BlobInfo]:
        """Async :meth:`list_blobs`."""
        validate_container_name(container)
        return [item async for item in self._aiter_blobs(container, prefix)]

    async def _aiter_blobs(self, container: str, prefix: str) -> AsyncIterator[BlobInfo]:
        """The blobs under ``prefix``, in name order; a missing container is a :class:`BatchProviderError`."""
        async for page in self._aiter_pages(container, prefix):
            if page is None:
                raise self._missing_container(container)
            for item in page:
                yield item

    async def _aiter_pages(self, container: str, prefix: str) -> AsyncIterator[list[BlobInfo] | None]:
        """The listing's pages; a single ``None`` when the container does not exist."""
        client = (await self.aget_conn()).get_container_client(container)
        with self._translate_errors(f"listing container {container!r}"):
            try:
                async for page in aiter_listing_pages(client, prefix, page_size=self.list_page_size):
                    yield page
            except ResourceNotFoundError:
                yield None

    def _missing_container(self, container: str) -> BatchProviderError:
        return BatchProviderError(
            f"Container {container!r} does not exist in {self._account_label()}. "
            "Create it first or check the container name."
        )

    def _account_label(self) -> str:
        return f"storage account {self.settings.resolved_account_name or self.settings.blob_account_url!r}"
