"""Blob transfers: parallel uploads and downloads, skip-unchanged, the big-file path, prefix deletes.

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
import mimetypes
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core.exceptions import ResourceNotFoundError

from airflow_batch_provider.assets import container_asset_uri
from airflow_batch_provider.batch.validation import normalize_blob_prefix, validate_container_name
from airflow_batch_provider.exceptions import BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.blob.client import BlobClientHook
from airflow_batch_provider.hooks.blob.listing import BlobInfo
from airflow_batch_provider.lineage import local_directory_uri
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
from airflow_batch_provider.utils.secrets import strip_query

#: Files up to this size are read whole and sent in one request by the asynchronous client.
SMALL_FILE_LIMIT = 4 * 1024 * 1024

#: Small files up to this size are read on the event loop itself; a thread costs more than the read.
_INLINE_READ_LIMIT = 256 * 1024

#: Default number of files in flight at once.
DEFAULT_MAX_CONCURRENCY = 32

#: Default number of parallel block transfers for one big file (``max_concurrency`` of the SDK).
DEFAULT_MAX_CONCURRENCY_PER_FILE = 8

#: Blobs that Azure batch-deletes in one request at most.
_BATCH_DELETE_SIZE = 256

#: Folder at the container root where the operators write manifests of big file sets; downloads of a
#: prefix leave it out.
MANIFEST_DIR = "_airflow_manifests"

if TYPE_CHECKING:
    from azure.storage.blob import ContentSettings


def _content_settings(**properties: Any) -> ContentSettings:
    """The storage SDK's ``ContentSettings``, importing the SDK on first use rather than with the hook."""
    from azure.storage.blob import ContentSettings

    return ContentSettings(**properties)


@dataclass(frozen=True)
class BlobFile:
    """One file as stored in Blob Storage; ``url`` never carries a SAS.

    :param name: The blob name.
    :param size: Its size in bytes.
    :param url: The blob URL, without a SAS.
    :param local_path: The local file it was uploaded from or downloaded to.
    """

    name: str
    size: int
    url: str
    local_path: str | None = None


@dataclass
class TransferResult:
    """What an upload or download moved (``transferred``) and what it found unchanged (``skipped``).

    :param container: The container.
    :param prefix: The blob prefix.
    :param transferred: Files sent or fetched.
    :param skipped: Files found unchanged and not transferred.
    """

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


def _check_concurrency(value: int, name: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")


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


class BlobTransferMixin(BlobClientHook):
    """Uploads, downloads and deletes of :class:`~airflow_batch_provider.hooks.blob.BlobStorageHook`."""

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
        result = self._run(
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
        self._report_upload_lineage(sources, result)
        return result

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
        result = await self._aupload(
            container,
            sources,
            normalize_blob_prefix(prefix),
            skip_unchanged=skip_unchanged,
            create_container=create_container,
            max_concurrency=max_concurrency,
            max_concurrency_per_file=max_concurrency_per_file,
            digest_cache=digest_cache,
        )
        self._report_upload_lineage(sources, result)
        return result

    def _report_upload_lineage(
        self, sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], result: TransferResult
    ) -> None:
        paths = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
        self._report_lineage(
            [local_directory_uri(os.fspath(path)) for path in paths],
            [self._prefix_uri(result.container, result.prefix)],
            result,
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
            settings = _content_settings(content_type=_content_type(name))
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
        settings = _content_settings(
            content_type=content_type or _content_type(blob),
            content_md5=bytearray(hashlib.md5(data, usedforsecurity=False).digest()),
        )
        client = self.get_conn().get_blob_client(container, blob)
        with self._translate_errors(f"uploading {blob!r} to container {container!r}"):
            client.upload_blob(data, overwrite=True, content_settings=settings)
        return strip_query(client.url)

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

    def _prefix_uri(self, container: str, prefix: str) -> str:
        return container_asset_uri(self.container_url(container), prefix)

    def _report_lineage(self, inputs: list[str], outputs: list[str], result: TransferResult) -> None:
        """Tell Airflow's hook lineage collector what a transfer read and wrote, one Asset per prefix
        or directory, so that transfers made from ``@task`` code show in lineage too."""
        from airflow.sdk.lineage import get_hook_lineage_collector

        collector = get_hook_lineage_collector()
        extra: dict[str, Any] = {"count": len(result.files), "bytes": result.total_bytes}
        for uri in inputs:
            collector.add_input_asset(context=self, uri=uri, asset_extra=extra)
        for uri in outputs:
            collector.add_output_asset(context=self, uri=uri, asset_extra=extra)

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
        result = await self._adownload_prefix(
            container,
            prefix,
            Path(local_dir),
            skip_unchanged=skip_unchanged,
            max_concurrency=max_concurrency,
            max_concurrency_per_file=max_concurrency_per_file,
        )
        self._report_lineage(
            [self._prefix_uri(container, prefix)], [Path(local_dir).resolve().as_uri()], result
        )
        return result

    async def _adownload_prefix(
        self,
        container: str,
        prefix: str,
        root: Path,
        *,
        skip_unchanged: bool,
        max_concurrency: int,
        max_concurrency_per_file: int,
    ) -> TransferResult:
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
