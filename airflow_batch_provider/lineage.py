"""OpenLineage datasets for what the provider reads and writes (needs the ``openlineage`` extra).

Blob prefixes follow the OpenLineage naming spec for Azure Blob Storage (as its client implements it):
namespace ``wasbs://<container>@<account>.dfs.core.windows.net``, name the prefix (``/`` for a whole
container). Local files are namespace ``file``, name the absolute path. One dataset stands for one
prefix or directory, however many files it holds; its statistics facet carries the file count and
bytes. Every dataset is built from an Asset URI (:mod:`airflow_batch_provider.assets`), which never
carries a SAS.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_batch_provider.assets import ASSET_SCHEME, container_asset_uri


def dataset_naming(uri: str) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of an ``azblob://`` or ``file://`` Asset URI."""
    from openlineage.client.naming.dataset import WASBS, LocalFileSystem

    parts = urlsplit(uri)
    if parts.scheme == ASSET_SCHEME:
        container, _, prefix = parts.path.lstrip("/").partition("/")
        naming: Any = WASBS(container=container, service_name=parts.netloc, object_key=prefix or "/")
    elif parts.scheme == "file":
        naming = LocalFileSystem(path=unquote(parts.path))
    else:
        raise ValueError(f"no OpenLineage naming for {parts.scheme!r} URIs")
    return naming.get_namespace(), naming.get_name()


def local_directory_uri(source: str) -> str:
    """The ``file://`` URI of a local source: the path itself, or for a glob the directory above it."""
    parts = Path(source).parts
    first_glob = next((index for index, part in enumerate(parts) if set(part) & set("*?[")), len(parts))
    return Path(*parts[:first_glob] or ["."]).resolve().as_uri()


def resource_file_prefixes(tasks: list[dict[str, Any]]) -> dict[str, int]:
    """The Asset URI of every blob prefix the tasks' resource files read, with how many files come from
    it: a container URL with ``blobPrefix`` counts as one, a single blob URL counts in its directory."""
    prefixes: dict[str, set[str]] = {}
    for task in tasks:
        for resource in task.get("resourceFiles") or ():
            container_url = resource.get("storageContainerUrl")
            if container_url:
                prefix, name = resource.get("blobPrefix") or "", resource.get("filePath") or ""
            elif resource.get("httpUrl"):
                url = urlsplit(resource["httpUrl"])
                segments = url.path.lstrip("/").split("/")
                # https://<account>.blob.<suffix>/<container>/..., or path-style /<account>/<container>/...
                depth = 1 if ".blob." in (url.hostname or "") else 2
                if len(segments) <= depth:
                    continue
                container_url = url._replace(path="/" + "/".join(segments[:depth]), query="").geturl()
                prefix, name = unquote("/".join(segments[depth:-1])), unquote(segments[-1])
            else:
                continue
            try:
                uri = container_asset_uri(container_url, prefix)
            except ValueError:
                continue
            prefixes.setdefault(uri, set()).add(name)
    return {uri: len(names) for uri, names in prefixes.items()}


def output_file_prefixes(tasks: list[dict[str, Any]]) -> dict[str, str]:
    """The container URL (without its SAS) of every output destination of the tasks' output files, with
    the deepest blob prefix all of them upload under: one dataset per container, not one per task."""
    directories: dict[str, list[str]] = {}
    for task in tasks:
        for output in task.get("outputFiles") or ():
            container = (output.get("destination") or {}).get("container") or {}
            if not container.get("containerUrl"):
                continue
            segments = [segment for segment in (container.get("path") or "").split("/") if segment]
            if segments and not set(output.get("filePattern") or "") & set("*?["):
                segments = segments[:-1]  # a pattern without wildcards uploads to the path as a blob name
            url = container["containerUrl"].split("?", 1)[0]
            directories.setdefault(url, []).append("/".join(segments))
    return {url: posixpath.commonpath(paths) for url, paths in directories.items()}


def openlineage_dataset(uri: str, *, output: bool, count: int | None = None, size: int | None = None) -> Any:
    """An input or output OpenLineage dataset for ``uri``, with a statistics facet when known."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (
        input_statistics_input_dataset,
        output_statistics_output_dataset,
    )

    namespace, name = dataset_naming(uri)
    if output:
        facets: dict[str, Any] = {}
        if count is not None:
            statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                fileCount=count, size=size
            )
            facets["outputStatistics"] = statistics
        return OutputDataset(namespace=namespace, name=name, outputFacets=facets)
    input_facets: dict[str, Any] = {}
    if count is not None:
        input_facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            fileCount=count, size=size
        )
    return InputDataset(namespace=namespace, name=name, inputFacets=input_facets)


def asset_to_openlineage(asset: Any, lineage_context: Any = None) -> Any:
    """Airflow's Asset to OpenLineage converter for ``azblob://`` (registered in the provider info),
    used for Assets that hooks report to the hook lineage collector and for DAG outlets."""
    from openlineage.client.event_v2 import Dataset

    namespace, name = dataset_naming(asset.uri)
    return Dataset(namespace=namespace, name=name)


def operator_lineage(inputs: list[Any], outputs: list[Any]) -> Any:
    """An ``OperatorLineage`` for the OpenLineage provider."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=inputs, outputs=outputs)
