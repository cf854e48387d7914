"""Collect what Batch tasks produced: their stdout/stderr and the blobs their output files uploaded."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_batch_provider.assets import container_asset_uri
from airflow_batch_provider.batch.ids import to_batch_id
from airflow_batch_provider.batch.monitor.job import is_failed_task, prefix_filter
from airflow_batch_provider.batch.task_plan import strip_sas
from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.lineage import openlineage_dataset, operator_lineage, output_file_prefixes
from airflow_batch_provider.links.portal import BatchJobLink
from airflow_batch_provider.operators.base import BatchBaseOperator
from airflow_batch_provider.utils.deprecation import renamed_arguments

if TYPE_CHECKING:
    from airflow.sdk import Context

_WHICH = {"failed": True, "all": False}
#: Most URLs returned in XCom; beyond that only the count is given.
MAX_URLS_IN_XCOM = 500


def _container_and_path(container_url: str, path: str | None) -> tuple[str, str]:
    """Container name and blob prefix from an output destination (SAS removed)."""
    parts = [p for p in urlsplit(strip_sas(container_url)).path.split("/") if p]
    if not parts:
        raise InvalidInputError(f"Output destination {strip_sas(container_url)!r} names no container.")
    return unquote(parts[-1]), (path or "")


def _only_failed_from_which(which: Any) -> bool:
    """The deprecated ``which="failed"|"all"`` as ``only_failed``."""
    if which not in _WHICH:
        raise InvalidInputError(
            f"which must be one of {', '.join(_WHICH)}, got {which!r}; better, pass only_failed=True "
            "(failed tasks) or only_failed=False (all tasks)."
        )
    return _WHICH[which]


def _as_bool(value: Any, name: str) -> bool:
    """A flag that may arrive as a rendered template (``"True"``, ``"false"``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidInputError(f"{name} must be True or False, got {value!r}.")
        return text in ("true", "1", "yes")
    return bool(value)


class BatchCollectTaskOutputOperator(BatchBaseOperator):
    """Fetch stdout/stderr of failed (or all) tasks into the Airflow log or to Blob, and list output blobs.

    For each selected task (only the failed ones by default, all with ``only_failed=False``; optionally
    only ids under
    ``task_id_prefix``, at most ``max_tasks``) the last ``max_bytes`` of each file in ``files`` is
    read from the node with a ranged request and written to the task log, or, with
    ``destination_container``, uploaded to ``<destination_prefix>/<task id>/<file>``. Read logs soon:
    nodes that were deallocated take their files with them (upload ``std*.txt`` as output files to
    keep them, which :class:`BatchAddTasksOperator` does by default).

    With an ``azblob`` connection, the blobs the tasks' output files uploaded are listed and their
    URLs (never with a SAS) returned. Returns ``{"job_id", "task_count", "logs", "output_urls",
    "output_url_count"}``.

    OpenLineage: the inputs are the output prefixes listed (one dataset per container, at the prefix
    all the tasks upload under, with the blob count and bytes); the output, with
    ``destination_container``, is the prefix the logs were uploaded to.

    :param job_id: The job whose tasks to read (templated).
    :param task_id_prefix: Only tasks whose id starts with this (templated).
    :param only_failed: Only failed tasks (default); ``False`` reads every task. Formerly
        ``which="failed"|"all"``.
    :param files: Node files to read for each task, relative to its directory (templated).
    :param max_bytes: Bytes read from the end of each file, at most.
    :param max_tasks: Tasks read, at most.
    :param destination_container: Upload the files to this container instead of logging them
        (templated).
    :param destination_prefix: Blob prefix of those uploads (templated).
    :param list_output_blobs: List the blobs the tasks' output files uploaded.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param azblob_conn_id: The ``azblob`` connection, to upload logs and list output blobs.
    """

    template_fields: Sequence[str] = (
        "job_id",
        "task_id_prefix",
        "only_failed",
        "files",
        "destination_container",
        "destination_prefix",
        "azbatch_conn_id",
        "azblob_conn_id",
    )
    operator_extra_links = (BatchJobLink(),)
    ui_color = "#fbeee0"

    @renamed_arguments(which=("only_failed", _only_failed_from_which))
    def __init__(
        self,
        *,
        job_id: str,
        task_id_prefix: str | None = None,
        only_failed: bool = True,
        files: Sequence[str] = ("stdout.txt", "stderr.txt"),
        max_bytes: int = 64 * 1024,
        max_tasks: int = 50,
        destination_container: str | None = None,
        destination_prefix: str | None = None,
        list_output_blobs: bool = True,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        azblob_conn_id: str | None = AZBLOB_DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, azblob_conn_id=azblob_conn_id, **kwargs)
        self.job_id = job_id
        self.task_id_prefix = task_id_prefix
        self.only_failed = only_failed
        self.files = files
        self.max_bytes = max_bytes
        self.max_tasks = max_tasks
        self.destination_container = destination_container
        self.destination_prefix = destination_prefix
        self.list_output_blobs = list_output_blobs
        #: File count and bytes per Asset URI this run listed and wrote, for OpenLineage.
        self.lineage_inputs: dict[str, tuple[int, int]] = {}
        self.lineage_outputs: dict[str, tuple[int, int]] = {}

    @cached_property
    def blob_hook(self) -> Any:
        if not self.azblob_conn_id:
            raise InvalidInputError("azblob_conn_id is needed to upload logs or list output blobs.")
        return self.blob_hook_for(self.azblob_conn_id)

    def _tasks(self, job_id: str, only_failed: bool) -> list[dict[str, Any]]:
        filters = []
        if self.task_id_prefix:
            filters.append(prefix_filter(str(self.task_id_prefix)))
        if only_failed:
            filters.append("executionInfo/result eq 'failure'")
        tasks = self.hook.list_tasks(
            job_id,
            filter=" and ".join(filters) or None,
            select=["id", "state", "executionInfo", "outputFiles"],
        )
        if only_failed:
            tasks = [t for t in tasks if is_failed_task(t)]
        return sorted(tasks, key=lambda t: str(t.get("id")))

    def execute(self, context: Context) -> dict[str, Any]:
        only_failed = _as_bool(self.only_failed, "only_failed")
        files = [self.files] if isinstance(self.files, str) else list(self.files or [])
        job_id = to_batch_id(self.job_id, "job_id")
        self.persist_link(BatchJobLink, context, job_id)
        tasks = self._tasks(job_id, only_failed)
        self.log.info("%d %stask(s) in job %s", len(tasks), "failed " if only_failed else "", job_id)
        logs: dict[str, dict[str, str]] = {}
        self.lineage_inputs, self.lineage_outputs = {}, {}
        uploaded: list[int] = []
        prefix = (self.destination_prefix or f"{job_id}/logs").strip("/")
        if self.destination_container and tasks:
            self.blob_hook.create_container(str(self.destination_container))
        for task in tasks[: self.max_tasks]:
            task_id = str(task["id"])
            logs[task_id] = {}
            for name in files:
                try:
                    text = self.hook.read_task_file_tail(job_id, task_id, name, max_bytes=self.max_bytes)
                except Exception as err:
                    text = None
                    self.log.warning("Task %s: could not read %s (%s)", task_id, name, type(err).__name__)
                if text is None:
                    logs[task_id][name] = "unavailable"
                    continue
                if self.destination_container:
                    data = text.encode("utf-8")
                    url = self.blob_hook.upload_bytes(
                        str(self.destination_container), f"{prefix}/{task_id}/{name}", data
                    )
                    logs[task_id][name] = strip_sas(url)
                    uploaded.append(len(data))
                else:
                    info = task.get("executionInfo") or {}
                    self.log.info(
                        "===== %s of task %s (exit code %s) =====\n%s",
                        name,
                        task_id,
                        info.get("exitCode"),
                        text.rstrip() or "(empty)",
                    )
                    logs[task_id][name] = "logged"
        if len(tasks) > self.max_tasks:
            self.log.info("Showed %d of %d task(s); raise max_tasks to see more.", self.max_tasks, len(tasks))

        if uploaded:
            container_url = self.blob_hook.container_url(str(self.destination_container))
            self.lineage_outputs[container_asset_uri(container_url, prefix)] = (len(uploaded), sum(uploaded))

        urls: list[str] = []
        if self.list_output_blobs and self.azblob_conn_id:
            urls = self._output_urls(tasks)
        return {
            "job_id": job_id,
            "task_count": len(tasks),
            "logs": logs,
            "output_urls": urls[:MAX_URLS_IN_XCOM],
            "output_url_count": len(urls),
        }

    def _output_urls(self, tasks: list[dict[str, Any]]) -> list[str]:
        seen: set[tuple[str, str]] = set()
        urls: list[str] = []
        listed: dict[str, dict[str, int]] = {}  # container URL without SAS -> blob name -> size
        for task in tasks:
            for output in task.get("outputFiles") or []:
                container = (output.get("destination") or {}).get("container") or {}
                if not container.get("containerUrl"):
                    continue
                name, path = _container_and_path(container["containerUrl"], container.get("path"))
                if (name, path) in seen:
                    continue
                seen.add((name, path))
                try:
                    blobs = self.blob_hook.list_blobs(name, path)
                except Exception as err:
                    self.log.warning("Could not list %s/%s: %s", name, path, err)
                    continue
                sizes = listed.setdefault(strip_sas(container["containerUrl"]), {})
                sizes.update((blob.name, blob.size) for blob in blobs)
                urls.extend(self.blob_hook.blob_url(name, blob.name) for blob in blobs)
        for container_url, prefix in output_file_prefixes(tasks).items():
            if container_url not in listed:
                continue
            try:
                uri = container_asset_uri(container_url, prefix)
            except ValueError:
                continue
            found = listed[container_url]
            self.lineage_inputs[uri] = (len(found), sum(found.values()))
        return sorted(set(urls))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the tasks' output prefixes it listed; output: the prefix it uploaded logs to, if any."""

        def datasets(uris: dict[str, tuple[int, int]], output: bool) -> list[Any]:
            return [
                openlineage_dataset(uri, output=output, count=count, size=size)
                for uri, (count, size) in uris.items()
            ]

        return operator_lineage(datasets(self.lineage_inputs, False), datasets(self.lineage_outputs, True))
