"""Move files between the worker and Blob Storage: inputs and applications up, outputs down.

Every operator returns a small, SAS-free JSON document as its XCom. Blob URLs are listed for up to
``manifest_threshold`` files (100 by default); above that the list goes to a manifest blob,
``_airflow_manifests/<dag_id>/<run_id>/<task_id>[-<map_index>].json`` at the container root, whose URL
is returned instead. The name depends only on the run and task, so a retry overwrites it.

SAS tokens are never put in XCom (XCom is readable by anyone who can see the run). Batch operators
mint them when they submit work: :meth:`BlobStorageHook.resource_files` turns the ``resource_files``
descriptor :class:`BlobUploadApplicationFilesOperator` returns into Batch ``resourceFiles`` entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_batch_provider.assets import container_asset_uri, emit_asset, outlet_alias
from airflow_batch_provider.batch.validation import normalize_blob_prefix, validate_container_name
from airflow_batch_provider.exceptions import BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.blob import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_CONCURRENCY_PER_FILE,
    MANIFEST_DIR,
    BlobStorageHook,
    TransferResult,
)
from airflow_batch_provider.lineage import local_directory_uri, openlineage_dataset, operator_lineage
from airflow_batch_provider.operators.base import batch_template_fields
from airflow_batch_provider.utils.deprecation import renamed_classes

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Above this many files, XCom carries a manifest URL instead of the list of blob URLs.
DEFAULT_MANIFEST_THRESHOLD = 100

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._=-]+")


def manifest_blob_name(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The manifest blob of one task run; deterministic, so a retry overwrites the earlier one."""

    def clean(value: str) -> str:
        return _UNSAFE_NAME_CHARS.sub("_", value).strip("_") or "_"

    leaf = clean(task_id) if map_index is None or map_index < 0 else f"{clean(task_id)}-{map_index}"
    return f"{MANIFEST_DIR}/{clean(dag_id)}/{clean(run_id)}/{leaf}.json"


class BaseBlobTransferOperator(BaseOperator):
    """What the storage operators share: the connection, container, prefix and concurrency.

    :param container: Blob container name (templated).
    :param prefix: Virtual directory inside the container, such as ``inputs/run-1/`` (templated).
    :param azblob_conn_id: The ``azblob`` connection to use.
    :param max_concurrency: Files transferred at once.
    :param max_concurrency_per_file: Parallel block transfers for each file above 4 MiB.
    :param skip_unchanged: Do not transfer a file whose size and MD5 already match the other side.
    :param fail_on_empty: Fail when there is nothing to transfer; with ``False``, log a warning and
        return a count of 0.
    :param manifest_threshold: Above this many files, write a manifest blob instead of listing them.
    """

    template_fields: Sequence[str] = batch_template_fields("container", "prefix", azbatch=False, azblob=True)
    ui_color = "#e7f1fb"

    def __init__(
        self,
        *,
        container: str,
        prefix: str = "",
        azblob_conn_id: str = BlobStorageHook.default_conn_name,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_concurrency_per_file: int = DEFAULT_MAX_CONCURRENCY_PER_FILE,
        skip_unchanged: bool = True,
        fail_on_empty: bool = True,
        manifest_threshold: int = DEFAULT_MANIFEST_THRESHOLD,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.container = container
        self.prefix = prefix
        self.azblob_conn_id = azblob_conn_id
        self.max_concurrency = max_concurrency
        self.max_concurrency_per_file = max_concurrency_per_file
        self.skip_unchanged = skip_unchanged
        self.fail_on_empty = fail_on_empty
        self.manifest_threshold = manifest_threshold
        self.asset_alias = outlet_alias(self)
        #: File count and bytes per Asset URI this run read or wrote, for OpenLineage.
        self.lineage_statistics: dict[str, tuple[int, int]] = {}

    @cached_property
    def hook(self) -> BlobStorageHook:
        return BlobStorageHook(azblob_conn_id=self.azblob_conn_id)

    def _validated_target(self) -> tuple[str, str]:
        """The container and normalised prefix, or :class:`InvalidInputError` naming the argument."""
        container = validate_container_name(self.container, field="container")
        return container, normalize_blob_prefix(self.prefix, field="prefix")

    def lineage_uris(self) -> tuple[list[str], list[str]]:
        """The Asset URIs this operator reads and writes, from its rendered arguments."""
        raise NotImplementedError

    def get_openlineage_facets_on_start(self) -> Any:
        """What the OpenLineage provider reports when the task starts: one dataset per prefix."""
        return self.get_openlineage_facets_on_complete(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The datasets read and written, with file counts and bytes once the transfer ran."""
        inputs, outputs = self.lineage_uris()

        def dataset(uri: str, output: bool) -> Any:
            count, size = self.lineage_statistics.get(uri, (None, None))
            return openlineage_dataset(uri, output=output, count=count, size=size)

        return operator_lineage(
            [dataset(uri, False) for uri in inputs], [dataset(uri, True) for uri in outputs]
        )

    def _blob_uri(self) -> str:
        container, prefix = self._validated_target()
        return container_asset_uri(self.hook.container_url(container), prefix)

    def _nothing_to_do(self, message: str, error: type[Exception]) -> None:
        if self.fail_on_empty:
            raise error(f"{message} Set fail_on_empty=False to succeed with a count of 0 instead.")
        self.log.warning("%s Nothing to transfer.", message)

    def _manifest_name(self, context: Context) -> str:
        ti: Any = context.get("ti")
        dag_id = getattr(ti, "dag_id", None) or self.dag_id
        run_id = getattr(ti, "run_id", None) or str(context.get("run_id") or "manual")
        map_index = getattr(ti, "map_index", None)
        return manifest_blob_name(dag_id, run_id, self.task_id, map_index)


class BlobUploadFilesOperator(BaseBlobTransferOperator):
    """Upload input data (files, directories or globs) to a container prefix, in parallel.

    Relative paths are kept below ``prefix``. Files whose size and MD5 match the blob already there are
    skipped, so a re-run sends nothing. Returns ``container``, ``prefix``, ``container_url``,
    ``count`` (files in the set), ``uploaded``, ``skipped``, ``bytes`` (sent), ``total_bytes``, and
    either ``blobs`` (URLs, no SAS) or ``manifest_url``.

    :param source: A local file, directory or glob (``**`` allowed), or a list of them (templated).
    :param create_container: Create the container when it does not exist.
    """

    template_fields: Sequence[str] = batch_template_fields(
        "source", "container", "prefix", azbatch=False, azblob=True
    )

    def __init__(
        self,
        *,
        source: str | Sequence[str],
        container: str,
        prefix: str = "",
        create_container: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(container=container, prefix=prefix, **kwargs)
        self.source = source
        self.create_container = create_container

    def execute(self, context: Context) -> dict[str, Any]:
        container, prefix = self._validated_target()
        sources = [self.source] if isinstance(self.source, str) else list(self.source or [])
        if not sources or any(not str(source).strip() for source in sources):
            raise InvalidInputError(
                f"source {self.source!r} is empty or holds an empty path; pass a local file, directory or "
                "glob to upload."
            )
        # Resolving the sources touches no network: a missing path fails here, before any upload.
        result = self.hook.upload(
            container,
            sources,
            prefix,
            skip_unchanged=self.skip_unchanged,
            create_container=self.create_container,
            max_concurrency=self.max_concurrency,
            max_concurrency_per_file=self.max_concurrency_per_file,
        )
        if not result.files:
            self._nothing_to_do(f"source {self.source!r} matches no files.", InvalidInputError)
        return self._summary(context, result)

    def _summary(self, context: Context, result: TransferResult) -> dict[str, Any]:
        files = result.files
        summary: dict[str, Any] = {
            "container": result.container,
            "prefix": result.prefix,
            "container_url": self.hook.container_url(result.container),
            "count": len(files),
            "uploaded": len(result.transferred),
            "skipped": len(result.skipped),
            "bytes": result.bytes_transferred,
            "total_bytes": result.total_bytes,
            "blobs": None,
            "manifest_url": None,
        }
        if len(files) <= self.manifest_threshold:
            summary["blobs"] = [item.url for item in files]
        else:
            uploaded = {item.name for item in result.transferred}
            manifest = [
                {
                    "name": item.name,
                    "url": item.url,
                    "size": item.size,
                    "status": "uploaded" if item.name in uploaded else "skipped",
                }
                for item in files
            ]
            name = self._manifest_name(context)
            summary["manifest_url"] = self.hook.upload_bytes(
                result.container,
                name,
                json.dumps(manifest, indent=1).encode(),
                content_type="application/json",
            )
            self.log.info("Listed %d blobs in the manifest %s", len(files), summary["manifest_url"])
        uri = container_asset_uri(summary["container_url"], result.prefix)
        self.lineage_statistics[uri] = (len(files), result.total_bytes)
        emit_asset(
            context,
            self.asset_alias,
            uri,
            {"count": len(files), "bytes": result.total_bytes, "uploaded": len(result.transferred)},
        )
        return summary

    def lineage_uris(self) -> tuple[list[str], list[str]]:
        sources = [self.source] if isinstance(self.source, str) else list(self.source or [])
        return [local_directory_uri(str(source)) for source in sources], [self._blob_uri()]


class BlobUploadApplicationFilesOperator(BlobUploadFilesOperator):
    """Upload application files (programs, scripts, packages) for Batch tasks to run.

    The same upload as :class:`BlobUploadFilesOperator`, with the default prefix ``apps/``, and an
    extra ``resource_files`` entry in the XCom: a SAS-free descriptor that the Batch task operators
    pass to :meth:`BlobStorageHook.resource_files` when they submit tasks, which mints a read+list SAS
    then. Its ``file_mode`` (``0755`` by default) makes the files executable on Linux nodes.

    :param node_path: Directory on the node, relative to the task working directory, to download to.
    :param file_mode: Octal Linux file mode for the downloaded files, or ``None`` to leave the default.
    """

    template_fields: Sequence[str] = batch_template_fields(
        "source", "container", "prefix", "node_path", azbatch=False, azblob=True
    )
    ui_color = "#d9ecd9"

    def __init__(
        self,
        *,
        source: str | Sequence[str],
        container: str,
        prefix: str = "apps/",
        node_path: str | None = None,
        file_mode: str | None = "0755",
        **kwargs: Any,
    ) -> None:
        super().__init__(source=source, container=container, prefix=prefix, **kwargs)
        self.node_path = node_path
        self.file_mode = file_mode

    def execute(self, context: Context) -> dict[str, Any]:
        if self.file_mode is not None and not re.fullmatch(r"0?[0-7]{3}", self.file_mode):
            raise InvalidInputError(
                f"file_mode {self.file_mode!r} is not an octal mode; use for example '0755' or None."
            )
        summary = super().execute(context)
        descriptor: dict[str, Any] = {"container": summary["container"], "blob_prefix": summary["prefix"]}
        if self.node_path:
            descriptor["file_path"] = self.node_path
        if self.file_mode:
            descriptor["file_mode"] = self.file_mode
        summary["resource_files"] = [descriptor]
        return summary


class BlobDownloadFilesOperator(BaseBlobTransferOperator):
    """Download every blob under a container prefix into a local directory, in parallel.

    Paths below the prefix are kept; blob names that would escape ``local_dir`` are refused. Returns
    ``container``, ``prefix``, ``local_dir``, ``count``, ``downloaded``, ``skipped``, ``bytes`` and
    ``files`` (paths relative to ``local_dir``, or ``None`` above ``manifest_threshold`` files).

    :param local_dir: Directory to download into; created when missing (templated).
    :param skip_unchanged: Keep local files whose size and MD5 match the blob (off by default).
    """

    template_fields: Sequence[str] = batch_template_fields(
        "container", "prefix", "local_dir", azbatch=False, azblob=True
    )
    ui_color = "#fbeee0"

    def __init__(
        self,
        *,
        container: str,
        prefix: str,
        local_dir: str,
        skip_unchanged: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(container=container, prefix=prefix, skip_unchanged=skip_unchanged, **kwargs)
        self.local_dir = local_dir

    def execute(self, context: Context) -> dict[str, Any]:
        container, prefix = self._validated_target()
        if not self.local_dir:
            raise InvalidInputError("local_dir is empty; name the directory to download into.")
        result = self.hook.download_prefix(
            container,
            prefix,
            self.local_dir,
            skip_unchanged=self.skip_unchanged,
            max_concurrency=self.max_concurrency,
            max_concurrency_per_file=self.max_concurrency_per_file,
        )
        files = result.files
        if not files:
            self._nothing_to_do(f"No blobs under {prefix!r} in container {container!r}.", BatchProviderError)
        relative = [item.name[len(prefix) :] for item in files]
        source, target = self._blob_uri(), Path(self.local_dir).resolve().as_uri()
        self.lineage_statistics[source] = self.lineage_statistics[target] = (len(files), result.total_bytes)
        emit_asset(
            context,
            self.asset_alias,
            target,
            {"count": len(files), "bytes": result.total_bytes, "source": source},
        )
        return {
            "container": container,
            "prefix": prefix,
            "local_dir": self.local_dir,
            "count": len(files),
            "downloaded": len(result.transferred),
            "skipped": len(result.skipped),
            "bytes": result.bytes_transferred,
            "files": relative if len(files) <= self.manifest_threshold else None,
        }

    def lineage_uris(self) -> tuple[list[str], list[str]]:
        return [self._blob_uri()], [Path(self.local_dir).resolve().as_uri()]


#: The storage operators' names before they followed ``<Service><Action>Operator``; still served.
DEPRECATED_NAMES = {
    "UploadDataFilesOperator": "BlobUploadFilesOperator",
    "UploadApplicationFilesOperator": "BlobUploadApplicationFilesOperator",
    "DownloadOutputFilesOperator": "BlobDownloadFilesOperator",
}
__getattr__ = renamed_classes(__name__, DEPRECATED_NAMES)
