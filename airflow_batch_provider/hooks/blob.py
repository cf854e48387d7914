"""Azure Blob Storage: parallel uploads and downloads, skip-unchanged, and least-privilege SAS URLs.

Many small files go through the asynchronous client, many requests in flight on one event loop,
which costs the least CPU per request. Big files go through the synchronous client's own parallel
block transfer (``max_concurrency`` on ``upload_blob``/``download_blob``), one file at a time per
worker thread. The synchronous methods run the asynchronous ones on a private event loop, so they can
be called from ``execute`` as they are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import mimetypes
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import parse_qs, quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobServiceClient,
    ContentSettings,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from airflow_batch_provider.batch.validation import normalize_blob_prefix, validate_container_name
from airflow_batch_provider.config import USER_AGENT, conf_number
from airflow_batch_provider.exceptions import (
    AzureAuthenticationError,
    BatchProviderError,
    ConnectionConfigError,
    InvalidInputError,
)
from airflow_batch_provider.hooks._blob_listing import LIST_PAGE_SIZE, BlobInfo, aiter_listing_pages
from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID, AzureBaseHook
from airflow_batch_provider.hooks.credentials import AuthMode, parse_connection_string
from airflow_batch_provider.storage.digest_cache import DigestCache, default_cache_dir
from airflow_batch_provider.storage.local_files import (
    BackgroundHasher,
    LocalFile,
    check_sources,
    collect_local_files,
    common_name_start,
    common_start,
    file_md5,
    safe_local_path,
    source_paths,
)
from airflow_batch_provider.utils.secrets import mask_sas, strip_query

T = TypeVar("T")

# Azure's HTTP logging policy logs every request and response at INFO; thousands of uploads would
# flood the task log (and cost CPU). Quieten it unless someone configured that logger explicitly.
_HTTP_LOGGER = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
if _HTTP_LOGGER.level == logging.NOTSET:
    _HTTP_LOGGER.setLevel(logging.WARNING)

#: Files up to this size are read whole and sent in one request by the asynchronous client.
SMALL_FILE_LIMIT = 4 * 1024 * 1024
#: Small files up to this size are read on the event loop itself; a thread costs more than the read.
_INLINE_READ_LIMIT = 256 * 1024
#: Default number of files in flight at once.
DEFAULT_MAX_CONCURRENCY = 32
#: Default number of parallel block transfers for one big file (``max_concurrency`` of the SDK).
DEFAULT_MAX_CONCURRENCY_PER_FILE = 8
#: Default lifetime of a generated SAS: long enough for a pool to start and the job to run.
DEFAULT_SAS_EXPIRY = timedelta(hours=24)
#: A SAS starts this long in the past, so a clock running slightly behind does not reject it.
SAS_CLOCK_SKEW = timedelta(minutes=15)
#: A user delegation key (Entra ID) may be valid for at most seven days.
_MAX_USER_DELEGATION = timedelta(days=7)
#: Blobs that Azure batch-deletes in one request at most.
_BATCH_DELETE_SIZE = 256
#: Folder at the container root where the operators write manifests of big file sets; downloads of a
#: prefix leave it out.
MANIFEST_DIR = "_airflow_manifests"

Access = Literal["read", "write"]
#: SAS permissions per access kind: inputs are read (and listed), outputs are created and written.
_CONTAINER_PERMISSIONS: dict[str, str] = {"read": "rl", "write": "cw"}
_BLOB_PERMISSIONS: dict[str, str] = {"read": "r", "write": "cw"}

#: Codes of a 403 that mean the credentials themselves were rejected (Azurite says AuthorizationFailure
#: for a bad signature, where Azure says AuthenticationFailed; Azure also uses it for network rules).
_AUTH_FAILURE_CODES = frozenset({"AuthenticationFailed", "InvalidAuthenticationInfo", "AuthorizationFailure"})


# -- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobFile:
    """One file as stored in Blob Storage; ``url`` never carries a SAS."""

    name: str
    size: int
    url: str
    local_path: str | None = None


@dataclass
class TransferResult:
    """What an upload or download moved (``transferred``) and what it found unchanged (``skipped``)."""

    container: str
    prefix: str
    transferred: list[BlobFile] = field(default_factory=list)
    skipped: list[BlobFile] = field(default_factory=list)

    @property
    def files(self) -> list[BlobFile]:
        """Every file of the set, transferred or skipped, sorted by blob name."""
        return sorted([*self.transferred, *self.skipped], key=lambda item: item.name)

    @property
    def bytes_transferred(self) -> int:
        return sum(item.size for item in self.transferred)

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self.transferred) + sum(item.size for item in self.skipped)


@dataclass(frozen=True)
class _UploadPlan:
    """The files of one upload with, index for index, their blob names and result records."""

    files: list[LocalFile]
    names: list[str]
    records: list[BlobFile]

    @classmethod
    def of(cls, files: list[LocalFile], prefix: str, container_url: str) -> _UploadPlan:
        names = [prefix + local.relative for local in files]
        records = [
            BlobFile(
                name=name,
                size=local.size,
                url=f"{container_url}/{quote(name, safe='/~')}",
                local_path=str(local.path),
            )
            for local, name in zip(files, names, strict=True)
        ]
        return cls(files, names, records)


def _files_and_digest_cache(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], use_cache: bool
) -> tuple[list[LocalFile], DigestCache]:
    """The files to upload, and the digest cache of these sources (one that keeps nothing if unused).

    The cache comes first: the moment it is opened is the one its entries must have settled before.
    """
    cache = DigestCache.for_sources(source_paths(sources), default_cache_dir() if use_cache else None)
    return collect_local_files(sources), cache


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# -- the hook -------------------------------------------------------------------------------------------


class BlobStorageHook(AzureBaseHook):
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

    # -- clients ----------------------------------------------------------------------------------------

    def get_conn(self) -> BlobServiceClient:
        """The synchronous ``BlobServiceClient``, created on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = self._create_client()
            return self._client

    def _create_client(self) -> BlobServiceClient:
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

    # -- errors -----------------------------------------------------------------------------------------

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

    # -- containers and listings ------------------------------------------------------------------------

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

    # -- upload -----------------------------------------------------------------------------------------

    def upload(
        self,
        container: str,
        sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        prefix: str = "",
        *,
        skip_unchanged: bool = True,
        create_container: bool = True,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_concurrency_per_file: int = DEFAULT_MAX_CONCURRENCY_PER_FILE,
        digest_cache: bool = True,
    ) -> TransferResult:
        """Upload files, directories or globs to ``container`` under ``prefix``, in parallel.

        Relative paths are kept below the prefix. With ``skip_unchanged``, the blobs under the prefix
        are listed once, and a file whose size and MD5 match its blob is not sent again (a blob without
        ``Content-MD5`` always is). Every uploaded blob gets its ``Content-MD5``, so the next run can
        compare. With ``create_container`` a missing container is created (when a listing is made, once
        it has found the container missing).

        :param sources: A file, a directory, a glob (``**`` allowed) or a list of them.
        :param max_concurrency: Files in flight at once.
        :param max_concurrency_per_file: Parallel block uploads for each file above 4 MiB.
        :param digest_cache: With ``skip_unchanged``, take the MD5 of a file whose size, times and
            inode are those of the last upload from the :mod:`digest cache
            <airflow_batch_provider.storage.digest_cache>` instead of reading the file again.
        """
        validate_container_name(container)
        check_sources(sources)
        return self._run(
            lambda: self._aupload(
                container,
                sources,
                normalize_blob_prefix(prefix),
                skip_unchanged=skip_unchanged,
                create_container=create_container,
                max_concurrency=max_concurrency,
                max_concurrency_per_file=max_concurrency_per_file,
                digest_cache=digest_cache,
            )
        )

    async def aupload(
        self,
        container: str,
        sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        prefix: str = "",
        *,
        skip_unchanged: bool = True,
        create_container: bool = True,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_concurrency_per_file: int = DEFAULT_MAX_CONCURRENCY_PER_FILE,
        digest_cache: bool = True,
    ) -> TransferResult:
        """Async :meth:`upload`."""
        validate_container_name(container)
        await asyncio.to_thread(check_sources, sources)
        return await self._aupload(
            container,
            sources,
            normalize_blob_prefix(prefix),
            skip_unchanged=skip_unchanged,
            create_container=create_container,
            max_concurrency=max_concurrency,
            max_concurrency_per_file=max_concurrency_per_file,
            digest_cache=digest_cache,
        )

    async def _aupload(
        self,
        container: str,
        sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        prefix: str,
        *,
        skip_unchanged: bool,
        create_container: bool,
        max_concurrency: int,
        max_concurrency_per_file: int,
        digest_cache: bool,
    ) -> TransferResult:
        """Find the files, learn which are unchanged, and upload the others.

        With ``skip_unchanged`` the listing of the blobs goes out first, under the longest start all
        names will share (known without walking directories); the directories are walked, and the
        files hashed, while it is on its way. For a glob, or sources with no entries at all, the walk
        comes first: only it knows the names, or that there is nothing to upload (then nothing is sent).
        """
        _check_concurrency(max_concurrency, "max_concurrency")
        _check_concurrency(max_concurrency_per_file, "max_concurrency_per_file")
        result = TransferResult(container=container, prefix=prefix)
        client = (await self.aget_conn()).get_container_client(container)
        listing: asyncio.Future[dict[str, BlobInfo] | None] | None = None
        if skip_unchanged:
            start = await asyncio.to_thread(common_name_start, sources)
            if start is not None:
                listing = asyncio.ensure_future(self._alist_by_name(container, prefix + start))
        try:
            files, cache = await asyncio.to_thread(
                _files_and_digest_cache, sources, skip_unchanged and digest_cache
            )
            if not files:
                return result
            plan = _UploadPlan.of(files, prefix, strip_query(client.url))
            if skip_unchanged and listing is None:  # a glob: the names' common start is known only now
                listing = asyncio.ensure_future(self._alist_by_name(container, common_start(plan.names)))
            if listing is not None:
                existing, unchanged = await self._find_unchanged(
                    container, plan, listing, cache, create_container=create_container
                )
            else:
                existing, unchanged = {}, set()
                if create_container:
                    await self.acreate_container(container)
        finally:
            if listing is not None:  # a no-op once it is done; else not needed after all (no files, an error)
                listing.cancel()
                await asyncio.gather(listing, return_exceptions=True)
        await self._aupload_changed(
            client, plan, existing, unchanged, result, cache, max_concurrency, max_concurrency_per_file
        )
        if cache.enabled:
            await asyncio.to_thread(cache.save, [local.path for local in files])
        self.log.info(
            "Uploaded %d file(s), %d byte(s), to %s/%s; %d unchanged file(s) skipped",
            len(result.transferred),
            result.bytes_transferred,
            container,
            prefix,
            len(result.skipped),
        )
        return result

    async def _find_unchanged(
        self,
        container: str,
        plan: _UploadPlan,
        listing: Awaitable[dict[str, BlobInfo] | None],
        cache: DigestCache,
        *,
        create_container: bool,
    ) -> tuple[dict[str, BlobInfo], set[int]]:
        """The blobs already there by name, and the indexes of the files equal to their blob.

        A file is unchanged when its blob has the same size and a ``Content-MD5`` equal to the MD5 of
        the file's content; a blob without ``Content-MD5`` (written by another tool) is never trusted.
        Size alone would miss an edit that keeps the size, and modification times are not comparable
        between a local disk and the service, so the MD5 of every candidate is computed.

        While the listing is on its way, the small files are hashed in a worker thread; once it is
        here, only files with a same-size blob are still hashed (big files are hashed as they are
        uploaded). A file the digest ``cache`` knows in its present state is not read at all. A
        missing container is created (with ``create_container``) once the listing says so, which
        saves a request when it exists.
        """
        files, names = plan.files, plan.names
        cached: dict[int, bytes] = {}
        for index, local in enumerate(files):
            digest = cache.get(local.path, local.stamp)
            if digest is not None:
                cached[index] = digest
        hasher = BackgroundHasher(
            {
                index: local.path
                for index, local in enumerate(files)
                if local.size <= SMALL_FILE_LIMIT and index not in cached
            }
        )
        hasher.start()
        try:
            existing = await listing
            if existing is None:
                if not create_container:
                    raise self._missing_container(container)
                await self.acreate_container(container)
                existing = {}
        except BaseException:
            await hasher.cancel()
            raise
        candidates = []
        for index, (local, name) in enumerate(zip(files, names, strict=True)):
            known = existing.get(name)
            if (
                local.size <= SMALL_FILE_LIMIT
                and known is not None
                and known.size == local.size
                and known.content_md5 is not None
            ):
                candidates.append(index)
        digests = await hasher.finish([index for index in candidates if index not in cached])
        for index, digest in digests.items():
            cache.put(files[index].path, files[index].stamp, digest)
        digests.update(cached)
        unchanged = {
            index for index in candidates if digests.get(index) == existing[names[index]].content_md5
        }
        return existing, unchanged

    async def _aupload_changed(
        self,
        client: Any,
        plan: _UploadPlan,
        existing: dict[str, BlobInfo],
        unchanged: set[int],
        result: TransferResult,
        cache: DigestCache,
        max_concurrency: int,
        max_concurrency_per_file: int,
    ) -> None:
        """Upload the files of ``plan`` not ``unchanged``, recording every file in ``result``.

        The MD5 of every file read on the way goes to the digest ``cache``.
        """
        result.skipped.extend(plan.records[index] for index in sorted(unchanged))
        pending = [index for index in range(len(plan.files)) if index not in unchanged]
        sync_container: Any = None

        async def upload_one(index: int) -> None:
            nonlocal sync_container
            local, name, record = plan.files[index], plan.names[index], plan.records[index]
            known = existing.get(name)
            known_md5 = known.content_md5 if known is not None and known.size == local.size else None
            settings = ContentSettings(content_type=_content_type(name))
            with self._translate_errors(f"uploading {name!r} to container {client.container_name!r}"):
                if local.size <= SMALL_FILE_LIMIT:
                    if local.size <= _INLINE_READ_LIMIT:
                        data = local.path.read_bytes()
                    else:
                        data = await asyncio.to_thread(local.path.read_bytes)
                    digest = hashlib.md5(data, usedforsecurity=False).digest()
                    cache.put(local.path, local.stamp, digest)
                    if known_md5 is not None and digest == known_md5:
                        # Unchanged after all (it could not be read when it was hashed first).
                        result.skipped.append(record)
                        return
                    settings.content_md5 = bytearray(digest)
                    await client.upload_blob(
                        name, data, overwrite=True, content_settings=settings, max_concurrency=1
                    )
                else:
                    if sync_container is None:
                        sync_container = self.get_conn().get_container_client(client.container_name)
                    uploaded = await asyncio.to_thread(
                        self._upload_big_file,
                        sync_container,
                        local,
                        name,
                        settings,
                        known_md5,
                        cache,
                        max_concurrency_per_file,
                    )
                    if not uploaded:
                        result.skipped.append(record)
                        return
            result.transferred.append(record)

        if pending:
            await _bounded_gather(pending, upload_one, max_concurrency)
        result.transferred.sort(key=lambda item: item.name)
        result.skipped.sort(key=lambda item: item.name)

    async def _alist_by_name(self, container: str, prefix: str) -> dict[str, BlobInfo] | None:
        """The blobs under ``prefix`` by name, or ``None`` when the container does not exist."""
        listed: dict[str, BlobInfo] = {}
        async for page in self._aiter_pages(container, prefix):
            if page is None:
                return None
            listed.update((item.name, item) for item in page)
        return listed

    @staticmethod
    def _upload_big_file(
        container_client: Any,
        local: LocalFile,
        name: str,
        settings: ContentSettings,
        known_md5: bytes | None,
        cache: DigestCache,
        max_concurrency: int,
    ) -> bool:
        """Upload one big file with the SDK's parallel block upload; ``False`` when it is unchanged."""
        blob = container_client.get_blob_client(name)
        if known_md5 is not None:
            # Same size as the blob: the MD5 decides, so it is needed before anything is sent.
            digest = cache.get(local.path, local.stamp)
            if digest is None:
                digest = file_md5(local.path)
                cache.put(local.path, local.stamp, digest)
            if digest == known_md5:
                return False
            settings.content_md5 = bytearray(digest)
            with open(local.path, "rb") as handle:
                blob.upload_blob(
                    handle,
                    length=local.size,
                    overwrite=True,
                    content_settings=settings,
                    max_concurrency=max_concurrency,
                )
            return True
        # New or resized blob: hash while uploading, then record the MD5 with one small request.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as hasher:
            pending = hasher.submit(file_md5, local.path)
            with open(local.path, "rb") as handle:
                blob.upload_blob(
                    handle,
                    length=local.size,
                    overwrite=True,
                    content_settings=settings,
                    max_concurrency=max_concurrency,
                )
            digest = pending.result()
        cache.put(local.path, local.stamp, digest)
        settings.content_md5 = bytearray(digest)
        blob.set_http_headers(content_settings=settings)
        return True

    def upload_bytes(self, container: str, blob: str, data: bytes, *, content_type: str | None = None) -> str:
        """Write ``data`` to one blob (overwriting it) and return the blob URL, without SAS."""
        validate_container_name(container)
        settings = ContentSettings(
            content_type=content_type or _content_type(blob),
            content_md5=bytearray(hashlib.md5(data, usedforsecurity=False).digest()),
        )
        client = self.get_conn().get_blob_client(container, blob)
        with self._translate_errors(f"uploading {blob!r} to container {container!r}"):
            client.upload_blob(data, overwrite=True, content_settings=settings)
        return strip_query(client.url)

    # -- download ---------------------------------------------------------------------------------------

    def download_prefix(
        self,
        container: str,
        prefix: str,
        local_dir: str | os.PathLike[str],
        *,
        skip_unchanged: bool = False,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_concurrency_per_file: int = DEFAULT_MAX_CONCURRENCY_PER_FILE,
    ) -> TransferResult:
        """Download every blob under ``prefix`` into ``local_dir``, keeping paths below the prefix.

        Blob names that would land outside ``local_dir`` are refused before anything is written.
        Manifests this provider writes (under ``_airflow_manifests/``) are left out. With
        ``skip_unchanged``, a local file whose size and MD5 match the blob is kept as it is.
        """
        validate_container_name(container)
        return self._run(
            lambda: self.adownload_prefix(
                container,
                prefix,
                local_dir,
                skip_unchanged=skip_unchanged,
                max_concurrency=max_concurrency,
                max_concurrency_per_file=max_concurrency_per_file,
            )
        )

    async def adownload_prefix(
        self,
        container: str,
        prefix: str,
        local_dir: str | os.PathLike[str],
        *,
        skip_unchanged: bool = False,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_concurrency_per_file: int = DEFAULT_MAX_CONCURRENCY_PER_FILE,
    ) -> TransferResult:
        """Async :meth:`download_prefix`."""
        validate_container_name(container)
        _check_concurrency(max_concurrency, "max_concurrency")
        _check_concurrency(max_concurrency_per_file, "max_concurrency_per_file")
        prefix = normalize_blob_prefix(prefix)
        root = Path(local_dir)
        result = TransferResult(container=container, prefix=prefix)
        client = (await self.aget_conn()).get_container_client(container)
        base_url = strip_query(client.url)

        plan: list[tuple[BlobInfo, Path]] = []
        async for item in self._aiter_blobs(container, prefix):
            relative = item.name[len(prefix) :]
            if not relative or relative.endswith("/") or relative.startswith(f"{MANIFEST_DIR}/"):
                continue  # directory markers and our own manifests
            plan.append((item, safe_local_path(root, relative)))
        if not plan:
            return result
        await asyncio.to_thread(_make_parents, {target.parent for _, target in plan})
        sync_container = self.get_conn().get_container_client(container)

        async def download_one(pair: tuple[BlobInfo, Path]) -> None:
            info, target = pair
            record = BlobFile(
                name=info.name,
                size=info.size,
                url=f"{base_url}/{quote(info.name, safe='/~')}",
                local_path=str(target),
            )
            if (
                skip_unchanged
                and info.content_md5 is not None
                and await asyncio.to_thread(_same_file, target, info)
            ):
                result.skipped.append(record)
                return
            with self._translate_errors(f"downloading {info.name!r} from container {container!r}"):
                if info.size <= SMALL_FILE_LIMIT:
                    stream = await client.download_blob(info.name, max_concurrency=1)
                    data = await stream.readall()
                    # Creating a file can take far longer than fetching a small blob: off the loop.
                    await loop.run_in_executor(writers, target.write_bytes, data)
                else:
                    await asyncio.to_thread(
                        _download_big_file, sync_container, info.name, target, max_concurrency_per_file
                    )
            result.transferred.append(record)

        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, max_concurrency)) as writers:
            await _bounded_gather(plan, download_one, max_concurrency)
        result.transferred.sort(key=lambda item: item.name)
        result.skipped.sort(key=lambda item: item.name)
        self.log.info(
            "Downloaded %d file(s), %d byte(s), from %s/%s to %s; %d unchanged file(s) skipped",
            len(result.transferred),
            result.bytes_transferred,
            container,
            prefix,
            root,
            len(result.skipped),
        )
        return result

    # -- delete -----------------------------------------------------------------------------------------

    def delete_prefix(self, container: str, prefix: str, *, max_concurrency: int = 8) -> int:
        """Delete every blob under ``prefix`` (with its snapshots); returns how many were deleted.

        Uses batch requests of up to 256 blobs, and single deletes where the service refuses batches.
        An empty prefix is refused: delete the container instead.
        """
        validate_container_name(container)
        return self._run(lambda: self.adelete_prefix(container, prefix, max_concurrency=max_concurrency))

    async def adelete_prefix(self, container: str, prefix: str, *, max_concurrency: int = 8) -> int:
        """Async :meth:`delete_prefix`."""
        validate_container_name(container)
        _check_concurrency(max_concurrency, "max_concurrency")
        if not (prefix or "").strip("/"):
            raise InvalidInputError(
                "delete_prefix needs a non-empty prefix; to empty a whole container, delete the container."
            )
        prefix = normalize_blob_prefix(prefix)
        names = [item.name async for item in self._aiter_blobs(container, prefix)]
        if not names:
            return 0
        client = (await self.aget_conn()).get_container_client(container)

        async def delete_batch(batch: list[str]) -> None:
            with self._translate_errors(f"deleting blobs under {prefix!r} in container {container!r}"):
                responses = [
                    response
                    async for response in await client.delete_blobs(
                        *batch, delete_snapshots="include", raise_on_any_failure=False
                    )
                ]
            failed = [
                (name, response.status_code)
                for name, response in zip(batch, responses, strict=False)
                if response.status_code not in (200, 202, 404)
            ]
            if failed:
                raise BatchProviderError(
                    f"Could not delete {len(failed)} blob(s) in container {container!r}, for example "
                    f"{failed[0][0]!r} (HTTP {failed[0][1]})."
                )

        async def delete_single(name: str) -> None:
            with (
                self._translate_errors(f"deleting {name!r} in container {container!r}"),
                contextlib.suppress(ResourceNotFoundError),
            ):
                await client.delete_blob(name, delete_snapshots="include")

        if self._signs_with_key_or_token():
            batches = [names[i : i + _BATCH_DELETE_SIZE] for i in range(0, len(names), _BATCH_DELETE_SIZE)]
            await _bounded_gather(batches, delete_batch, max_concurrency)
        else:
            # A SAS cannot sign the batch's sub-requests reliably (Azurite answers 500): one by one.
            await _bounded_gather(names, delete_single, max_concurrency * 4)
        self.log.info("Deleted %d blob(s) under %s/%s", len(names), container, prefix)
        return len(names)

    # -- SAS --------------------------------------------------------------------------------------------

    def get_container_sas_url(
        self,
        container: str,
        access: Access = "read",
        *,
        expiry: timedelta | datetime = DEFAULT_SAS_EXPIRY,
        start: datetime | None = None,
    ) -> str:
        """A container URL with a least-privilege SAS: ``read`` gives read+list, ``write`` create+write.

        Signed with the account key when the connection has one, else with a user delegation key when
        it uses Entra ID. A connection holding only a SAS token cannot sign a new one: its own token is
        returned when its permissions cover ``access``, otherwise :class:`ConnectionConfigError` says why.
        The token and its signature are registered with the secrets masker.
        """
        validate_container_name(container)
        return self._sas_url(container, None, _CONTAINER_PERMISSIONS[_check_access(access)], expiry, start)

    def get_blob_sas_url(
        self,
        container: str,
        blob: str,
        access: Access = "read",
        *,
        expiry: timedelta | datetime = DEFAULT_SAS_EXPIRY,
        start: datetime | None = None,
    ) -> str:
        """A blob URL with a least-privilege SAS: ``read`` gives read, ``write`` create+write."""
        validate_container_name(container)
        if not blob:
            raise InvalidInputError("blob must name a blob; use get_container_sas_url for a container.")
        return self._sas_url(container, blob, _BLOB_PERMISSIONS[_check_access(access)], expiry, start)

    def resource_files(
        self,
        container: str,
        blob_prefix: str = "",
        *,
        file_path: str | None = None,
        file_mode: str | None = None,
        expiry: timedelta | datetime = DEFAULT_SAS_EXPIRY,
    ) -> list[dict[str, str]]:
        """Batch ``resourceFiles`` entries (REST casing) for the blobs under ``blob_prefix``.

        The container URL carries a fresh read+list SAS, minted now; call this when the Batch task is
        submitted, never earlier, so no SAS is stored in XCom.
        """
        entry = {"storageContainerUrl": self.get_container_sas_url(container, "read", expiry=expiry)}
        if blob_prefix:
            entry["blobPrefix"] = blob_prefix
        if file_path:
            entry["filePath"] = file_path
        if file_mode:
            entry["fileMode"] = file_mode
        return [entry]

    def _sas_url(
        self,
        container: str,
        blob: str | None,
        permission: str,
        expiry: timedelta | datetime,
        start: datetime | None,
    ) -> str:
        now = datetime.now(timezone.utc)
        expires_at = _as_utc(expiry) if isinstance(expiry, datetime) else now + expiry
        if expires_at <= now:
            raise InvalidInputError(
                f"SAS expiry {expires_at.isoformat()} is in the past; give a future time."
            )
        starts_at = _as_utc(start) if start is not None else now - SAS_CLOCK_SKEW
        url = self.blob_url(container, blob) if blob else self.container_url(container)

        settings = self.settings
        mode = settings.resolve_mode()
        account_name = settings.resolved_account_name
        account_key = settings.account_key if mode is AuthMode.SHARED_KEY else None
        if mode is AuthMode.CONNECTION_STRING:
            assert settings.connection_string is not None
            parsed = parse_connection_string(settings.connection_string)
            account_name = parsed.get("accountname", account_name)
            account_key = parsed.get("accountkey")
            if not account_key and parsed.get("sharedaccesssignature"):
                return self._reuse_connection_sas(
                    url, parsed["sharedaccesssignature"], permission, blob, expires_at
                )
        if mode is AuthMode.SAS_TOKEN:
            assert settings.sas_token is not None
            return self._reuse_connection_sas(url, settings.sas_token, permission, blob, expires_at)
        if not account_name:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: the storage account name is needed to sign a SAS. "
                "Put it in the login field or use an https://<account>.blob.core.windows.net host."
            )

        sas_args: dict[str, Any] = {"permission": permission, "expiry": expires_at, "start": starts_at}
        if account_key:
            sas_args["account_key"] = account_key
        elif mode.uses_entra_id:
            sas_args["user_delegation_key"] = self._user_delegation_key(starts_at, expires_at)
        else:  # pragma: no cover - every mode is handled above
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: cannot sign a SAS in mode {mode.value}."
            )
        if blob:
            token = generate_blob_sas(account_name, container, blob, **sas_args)
        else:
            token = generate_container_sas(account_name, container, **sas_args)
        mask_sas(token)
        return f"{url}?{token}"

    def _user_delegation_key(self, starts_at: datetime, expires_at: datetime) -> UserDelegationKey:
        """A user delegation key valid from ``starts_at`` to ``expires_at``, reused while it covers them."""
        now = datetime.now(timezone.utc)
        if expires_at > now + _MAX_USER_DELEGATION:
            raise InvalidInputError(
                "A SAS signed with Entra ID (user delegation) can last at most 7 days from now; "
                "shorten the expiry."
            )
        cached, cached_until = self._delegation_key, self._delegation_key_expiry
        if (
            cached is not None
            and cached_until is not None
            and cached_until >= expires_at
            and cached.signed_start is not None
            and _as_utc(datetime.fromisoformat(cached.signed_start.replace("Z", "+00:00"))) <= starts_at
        ):
            return cached
        # Ask for a little more than needed (at least an hour), so later SAS of this hook can reuse it.
        key_expiry = min(now + _MAX_USER_DELEGATION, max(expires_at, now + timedelta(hours=1)))
        with self._translate_errors("requesting a user delegation key to sign a SAS"):
            key = self.get_conn().get_user_delegation_key(starts_at, key_expiry)
        if key.value:
            from airflow.sdk.log import mask_secret

            mask_secret(key.value)
        self._delegation_key, self._delegation_key_expiry = key, key_expiry
        return key

    def _reuse_connection_sas(
        self, url: str, token: str, permission: str, blob: str | None, expires_at: datetime
    ) -> str:
        """Return ``url`` with the connection's own SAS when it grants ``permission``, else explain."""
        token = token.lstrip("?")
        query = {name: values[0] for name, values in parse_qs(token).items()}
        granted = query.get("sp", "")
        missing = [letter for letter in permission if letter not in granted]
        problems = []
        if missing:
            problems.append(
                f"it grants {granted!r} but {permission!r} is needed (missing {''.join(missing)!r})"
            )
        if "srt" in query:  # account SAS: objects, and containers for listing
            needed_types = "o" + ("c" if "l" in permission else "")
            if any(kind not in query["srt"] for kind in needed_types):
                problems.append(f"its resource types {query['srt']!r} do not include {needed_types!r}")
        elif query.get("sr") == "b" and blob is None:
            problems.append("it is scoped to a single blob, not a container")
        if problems:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} authenticates with a SAS token, from which no new SAS can be "
                f"signed, and the token itself is not sufficient: {'; '.join(problems)}. Give the connection "
                "an account key or an Entra ID identity, or a SAS token with these permissions."
            )
        token_expiry = query.get("se")
        if token_expiry:
            with contextlib.suppress(ValueError):
                ends = _as_utc(datetime.fromisoformat(token_expiry.replace("Z", "+00:00")))
                if ends < expires_at:
                    self.log.warning(
                        "The SAS token of connection %s expires at %s, before the requested %s; tasks "
                        "queued after that cannot read or write their files.",
                        self.conn_id,
                        ends.isoformat(),
                        expires_at.isoformat(),
                    )
        if set(granted) - set(permission):
            self.log.warning(
                "Reusing the SAS token of connection %s, which grants %r where %r would be enough.",
                self.conn_id,
                granted,
                permission,
            )
        mask_sas(token)
        return f"{url}?{token}"

    # -- connection test --------------------------------------------------------------------------------

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


# -- module helpers -------------------------------------------------------------------------------------


def _error_code(err: BaseException) -> str:
    """The storage error code of ``err`` as plain text (the SDK gives an enum or a string)."""
    code = getattr(err, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _check_concurrency(value: int, name: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")


def _check_access(access: str) -> str:
    if access not in _CONTAINER_PERMISSIONS:
        raise InvalidInputError(
            f"access must be 'read' (read+list, for inputs) or 'write' (create+write, for outputs), "
            f"got {access!r}."
        )
    return access


def _make_parents(directories: Iterable[Path]) -> None:
    for directory in sorted(directories):
        directory.mkdir(parents=True, exist_ok=True)


def _same_file(target: Path, info: BlobInfo) -> bool:
    try:
        if target.stat().st_size != info.size:
            return False
    except OSError:
        return False
    return file_md5(target) == info.content_md5


def _download_big_file(container_client: Any, name: str, target: Path, max_concurrency: int) -> None:
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as handle:
            container_client.download_blob(name, max_concurrency=max_concurrency).readinto(handle)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


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


async def _bounded_gather(items: Iterable[Any], worker: Callable[[Any], Awaitable[None]], limit: int) -> None:
    """Run ``worker`` over ``items`` with at most ``limit`` in flight; stop early and re-raise on error."""
    iterator = iter(items)
    failure: list[BaseException] = []

    async def lane() -> None:
        for item in iterator:
            if failure:
                return
            try:
                await worker(item)
            except BaseException as err:
                failure.append(err)
                return

    await asyncio.gather(*(lane() for _ in range(limit)))
    if failure:
        raise failure[0]


__all__ = [
    "DEFAULT_SAS_EXPIRY",
    "MANIFEST_DIR",
    "BlobFile",
    "BlobInfo",
    "BlobStorageHook",
    "TransferResult",
]
