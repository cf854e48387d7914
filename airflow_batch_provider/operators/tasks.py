"""Add a collection of tasks to a Batch job: explicit, from a factory, with common settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError

from airflow_batch_provider.assets import container_asset_uri, emit_asset, outlet_alias
from airflow_batch_provider.batch.containers import check_container_tasks, container_settings
from airflow_batch_provider.batch.durations import to_timedelta
from airflow_batch_provider.batch.ids import make_batch_id, to_batch_id
from airflow_batch_provider.batch.monitor.io import SyncBatchIO, run_sync
from airflow_batch_provider.batch.monitor.job import job_end_cause, prefix_filter
from airflow_batch_provider.batch.monitor.stop import stop_work
from airflow_batch_provider.batch.rest import environment_list, to_rest
from airflow_batch_provider.batch.service_errors import error_code
from airflow_batch_provider.batch.task_factories import TaskBuildContext
from airflow_batch_provider.batch.task_plan import (
    MAX_SAS_TTL,
    CommonSettings,
    OutputSettings,
    check_dependencies,
    job_accepts_tasks,
    needed_sas_lifetime,
    normalize_task,
    number_tasks,
    plan_task_collection,
)
from airflow_batch_provider.batch.validation import (
    validate_batch_id,
    validate_container_name,
)
from airflow_batch_provider.exceptions import BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.lineage import openlineage_dataset, operator_lineage, resource_file_prefixes
from airflow_batch_provider.links.portal import BatchJobLink
from airflow_batch_provider.operators.base import BatchBaseOperator
from airflow_batch_provider.utils.secrets import connection_credentials

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_QUEUE_MARGIN = timedelta(hours=2)
#: Longest task id prefix the operator derives itself (leaves room for the local ids).
DEFAULT_PREFIX_LENGTH = 36


def _with_container_settings(task: dict[str, Any]) -> dict[str, Any]:
    """A task whose own ``containerSettings`` are checked, its registry password read from its connection."""
    settings = task.get("containerSettings")
    if settings:
        task["containerSettings"] = container_settings(
            settings, connection_credentials, f"task {task.get('id')!r} container_settings"
        )
    return task


def default_task_id_prefix(context: Any) -> str:
    """``<task_id>[-<map index>]-<run id>``, made a valid id with a hash; the same on every retry."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    raw = f"{ti.task_id}" + (f"-{map_index}" if map_index is not None and map_index >= 0 else "")
    raw += f"-{context['run_id']}-{ti.dag_id}"
    return make_batch_id(raw, max_length=DEFAULT_PREFIX_LENGTH)


def full_prefix(prefix: str) -> str:
    """The string every task id of the collection starts with (prefix plus a separator)."""
    return prefix if prefix.endswith(("-", "_")) else f"{prefix}-"


class BatchAddTasksOperator(BatchBaseOperator):
    """Add tasks to a Batch job, validated first, in parallel chunks of 100, idempotently.

    Tasks come from ``tasks`` (dicts in REST or Python style, or ``BatchTaskCreateOptions``) and/or
    a ``task_factory`` from :mod:`airflow_batch_provider.batch.task_factories` (one task per blob,
    parametric sweep, tasks from an upload's XCom). Every task id becomes ``<prefix>-<local id>`` with
    a prefix derived from the DAG run and task (or ``task_id_prefix``), so an Airflow retry re-adds the
    same ids and the service's ``TaskExists`` answers count as already added: nothing runs twice.

    Common settings are applied to every task (a task's own values win): ``common_resource_files``
    (REST entries, or ``{"container", "blob_prefix", "file_path", "file_mode"}`` descriptors such as the
    ``resource_files`` of :class:`BlobUploadApplicationFilesOperator`, for which a read SAS is minted now),
    ``output_container`` (created if missing, unless ``create_output_container=False``) with
    ``output_patterns`` and, by default, the task's stdout/stderr uploaded on completion. A pattern
    with wildcards keeps each file's path under ``<output_path>/<task id>/``; a plain file name lands
    as ``<output_path>/<task id>/<name>``. Then ``environment``, ``constraints``, ``required_slots``,
    ``exit_conditions``, ``application_package_references``, ``user_identity``, ``container_settings``
    and ``task_defaults``.

    Before any task is sent: ids valid and unique, commands non-empty, ``requiredSlots`` within the
    pool's ``taskSlotsPerNode``, dependencies only on jobs that allow them, and every SAS valid until the
    job's max wall clock (or the tasks' own) plus ``queue_margin``.

    When the Airflow task is killed or times out while adding, the tasks already added under its prefix
    are terminated (``terminate_on_kill=False`` keeps them); once it returns, the tasks are the
    downstream wait's to watch.

    Returns ``{"job_id", "task_count", "task_id_prefix", "added", "already_existed"}``.

    :param job_id: The job to add the tasks to (any rendered template; made a valid Batch id).
    :param tasks: The tasks: dicts in REST or Python style, or ``BatchTaskCreateOptions`` (templated).
    :param task_factory: A factory from :mod:`airflow_batch_provider.batch.task_factories` making tasks.
    :param task_id_prefix: The task id prefix; default derived from the DAG run and task.
    :param prefix_task_ids: Prefix every task id (``False`` keeps the ids as given, and gives up
        idempotent retries and prefix-scoped waits).
    :param common_resource_files: Resource files for every task: REST entries or Blob descriptors.
    :param output_container: Container the tasks' output files (and std logs) are uploaded to.
    :param create_output_container: Create ``output_container`` when missing.
    :param output_path: Blob prefix of the outputs; each task writes under ``<output_path>/<task id>/``.
    :param output_patterns: File patterns on the node to upload on task completion.
    :param upload_std_logs: Upload each task's ``stdout.txt``/``stderr.txt`` with its outputs.
    :param environment: Environment variables for every task.
    :param constraints: Task constraints for every task (``max_wall_clock_time``, ``retention_time``...).
    :param required_slots: Scheduling slots each task needs (at most the pool's ``taskSlotsPerNode``).
    :param exit_conditions: Exit conditions for every task.
    :param application_package_references: Application packages for every task.
    :param user_identity: The user identity every task runs as.
    :param container_settings: Container settings for every task (on a container pool).
    :param task_defaults: Any other task property, applied where a task does not set it.
    :param identity_reference: A pool managed identity for Blob access instead of SAS tokens.
    :param sas_ttl: Lifetime of the SAS tokens minted for resource and output files (seconds or
        ``timedelta``); default long enough for the job's or the tasks' max wall clock time.
    :param queue_margin: Extra SAS lifetime for the time tasks may wait in the queue.
    :param max_concurrency: Add-collection requests sent at once (default from the configuration).
    :param terminate_on_kill: Terminate the tasks already added when the Airflow task is killed.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param azblob_conn_id: The ``azblob`` connection, for resource and output files.
    """

    template_fields: Sequence[str] = (
        "job_id",
        "tasks",
        "task_factory",
        "task_id_prefix",
        "common_resource_files",
        "output_container",
        "output_path",
        "output_patterns",
        "environment",
        "constraints",
        "required_slots",
        "exit_conditions",
        "application_package_references",
        "user_identity",
        "container_settings",
        "task_defaults",
        "identity_reference",
        "azbatch_conn_id",
        "azblob_conn_id",
    )
    template_fields_renderers = {"tasks": "json", "task_defaults": "json", "environment": "json"}
    operator_extra_links = (BatchJobLink(),)
    ui_color = "#e0ecff"

    def __init__(
        self,
        *,
        job_id: str,
        tasks: Sequence[Mapping[str, Any] | Any] | None = None,
        task_factory: Any | None = None,
        task_id_prefix: str | None = None,
        prefix_task_ids: bool = True,
        common_resource_files: Sequence[Mapping[str, Any]] | None = None,
        output_container: str | None = None,
        create_output_container: bool = True,
        output_path: str | None = None,
        output_patterns: Sequence[str] | None = None,
        upload_std_logs: bool = True,
        environment: Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
        required_slots: int | None = None,
        exit_conditions: Mapping[str, Any] | None = None,
        application_package_references: Sequence[Mapping[str, Any]] | None = None,
        user_identity: Mapping[str, Any] | None = None,
        container_settings: Mapping[str, Any] | None = None,
        task_defaults: Mapping[str, Any] | None = None,
        identity_reference: Mapping[str, Any] | None = None,
        sas_ttl: timedelta | float | None = None,
        queue_margin: timedelta | float = DEFAULT_QUEUE_MARGIN,
        max_concurrency: int | None = None,
        terminate_on_kill: bool = True,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        azblob_conn_id: str = AZBLOB_DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, azblob_conn_id=azblob_conn_id, **kwargs)
        self.job_id = job_id
        self.tasks = tasks
        self.task_factory = task_factory
        self.task_id_prefix = task_id_prefix
        self.prefix_task_ids = prefix_task_ids
        self.common_resource_files = common_resource_files
        self.output_container = output_container
        self.create_output_container = create_output_container
        self.output_path = output_path
        self.output_patterns = output_patterns
        self.upload_std_logs = upload_std_logs
        self.environment = environment
        self.constraints = constraints
        self.required_slots = required_slots
        self.exit_conditions = exit_conditions
        self.application_package_references = application_package_references
        self.user_identity = user_identity
        self.container_settings = container_settings
        self.task_defaults = task_defaults
        self.identity_reference = identity_reference
        self.sas_ttl = sas_ttl
        self.queue_margin = queue_margin
        self.max_concurrency = max_concurrency
        self.terminate_on_kill = terminate_on_kill
        self._adding: tuple[str, str] | None = None
        self.asset_alias = outlet_alias(self) if output_container else None
        self.lineage_inputs: dict[str, int] = {}
        self.lineage_outputs: list[str] = []

    # -- planning -----------------------------------------------------------------------------------

    def _raw_tasks(self, ctx: TaskBuildContext) -> list[dict[str, Any]]:
        raw: list[dict[str, Any]] = []
        if self.tasks:
            if isinstance(self.tasks, Mapping | str):
                raise InvalidInputError("tasks must be a list of task dicts (or BatchTaskCreateOptions).")
            raw.extend(normalize_task(task) for task in self.tasks)
        if self.task_factory is not None:
            build = getattr(self.task_factory, "build", None)
            if not callable(build):
                raise InvalidInputError(
                    f"task_factory must have a build(ctx) method, got {type(self.task_factory).__name__}."
                )
            raw.extend(normalize_task(task) for task in build(ctx))
        if self.tasks is None and self.task_factory is None:
            raise InvalidInputError("Pass tasks=[...] and/or task_factory=...; there is nothing to add.")
        return raw

    def _resource_files(self, ctx: TaskBuildContext) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = []
        for entry in self.common_resource_files or []:
            entry = dict(entry)
            if "container" in entry:  # a descriptor: mint the SAS now
                container = str(entry["container"])
                prefix = entry.get("blob_prefix") or entry.get("prefix") or ""
                if self.identity_reference:
                    item: dict[str, Any] = {
                        "storageContainerUrl": self.blob_hook_for().container_url(container),
                        "identityReference": to_rest(dict(self.identity_reference)),
                    }
                    if prefix:
                        item["blobPrefix"] = prefix
                else:
                    item = self.blob_hook_for().resource_files(container, prefix, expiry=ctx.sas_expiry)[0]
                if entry.get("file_path"):
                    item["filePath"] = entry["file_path"]
                if entry.get("file_mode"):
                    item["fileMode"] = entry["file_mode"]
                files.append(item)
            else:
                files.append(to_rest(entry))
        return files

    def _common_settings(self, common_files: list[dict[str, Any]]) -> CommonSettings:
        extras = {
            key: to_rest(value)
            for key, value in (
                ("exitConditions", self.exit_conditions),
                ("applicationPackageReferences", self.application_package_references),
                ("userIdentity", self.user_identity),
            )
            if value is not None and value != ""
        }
        if self.container_settings:
            extras["containerSettings"] = container_settings(self.container_settings, connection_credentials)
        return CommonSettings(
            defaults=to_rest(dict(self.task_defaults or {})),
            resource_files=common_files,
            environment=environment_list(self.environment) or [],
            constraints=to_rest(dict(self.constraints)) if self.constraints else {},
            required_slots=int(str(self.required_slots)) if self.required_slots not in (None, "") else None,
            extras=extras,
        )

    # -- execute ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the job, plan the tasks (checked before anything is sent), submit them, report."""
        job_id = to_batch_id(self.job_id, "job_id")
        prefix = self._task_id_prefix(context)
        id_prefix = full_prefix(prefix) if self.prefix_task_ids else ""
        self.persist_link(BatchJobLink, context, job_id)

        job, pool_id, pool = self._fetch_job(job_id)
        slots = int(pool.get("taskSlotsPerNode") or 1) if pool else None
        lifetime, why = needed_sas_lifetime(job, self.constraints, self.queue_margin)
        ctx, needed_until = self._build_context(lifetime, why)
        tasks = [_with_container_settings(task) for task in number_tasks(self._raw_tasks(ctx), id_prefix)]
        if not job_accepts_tasks(job):
            return self._added_before(job, tasks, id_prefix)
        check_dependencies(tasks, job, job_id)
        outputs = self._output_settings(ctx, job_id, prefix)
        final = plan_task_collection(
            tasks,
            self._common_settings(self._resource_files(ctx)),
            outputs,
            task_slots_per_node=slots,
            pool_id=pool_id,
            sas_needed_until=needed_until,
            sas_reason=why,
        )
        check_container_tasks(final, pool)
        if outputs and self.create_output_container:
            # Without the container every task would run and then fail its upload; create it once
            # everything local has been checked.
            self.blob_hook_for().create_container(str(self.output_container))
        self.lineage_inputs = resource_file_prefixes(final)
        self.lineage_outputs = []
        if outputs:
            url = self.blob_hook_for().container_url(str(self.output_container))
            self.lineage_outputs = [container_asset_uri(url, outputs.base_path)]
        self._adding = (job_id, id_prefix)
        summary = self._submit(job_id, id_prefix, pool_id, final)
        # Not in a ``finally``: on_kill runs after a timeout's exception has left this frame.
        self._adding = None
        if self.lineage_outputs and self.asset_alias is not None:
            extra = {"job_id": summary["job_id"], "task_count": summary["task_count"]}
            emit_asset(context, self.asset_alias, self.lineage_outputs[0], extra)
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: each resource-file prefix (with how many files the tasks read from it); outputs:
        the output container prefix the tasks upload to."""
        inputs = [
            openlineage_dataset(uri, output=False, count=count) for uri, count in self.lineage_inputs.items()
        ]
        return operator_lineage(
            inputs, [openlineage_dataset(uri, output=True) for uri in self.lineage_outputs]
        )

    def on_kill(self) -> None:
        """Terminate the tasks added so far under this task's prefix (never others of a shared job)."""
        if not (self.terminate_on_kill and self._adding):
            return
        job_id, id_prefix = self._adding
        if not id_prefix:
            self.log.warning(
                "Killed while adding tasks without an id prefix to job %s: they were left running, since "
                "they cannot be told from other tasks of the job (use prefix_task_ids=True).",
                job_id,
            )
            return
        try:
            self.log.warning(
                "Killed while adding tasks: %s",
                run_sync(stop_work(SyncBatchIO(self.hook), job_id, id_prefix)),
            )
        except Exception as err:
            self.log.error("Could not terminate the tasks under %r in job %s: %s", id_prefix, job_id, err)

    def _task_id_prefix(self, context: Context) -> str:
        """``task_id_prefix`` made a valid id, else one derived from the DAG run (the same on retries)."""
        if self.task_id_prefix:
            prefix = to_batch_id(self.task_id_prefix, "task_id_prefix")
        else:
            prefix = default_task_id_prefix(context)
        return validate_batch_id(prefix, "task id prefix")

    def _fetch_job(self, job_id: str) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
        """The job, its pool id, and its pool's slots and VM configuration (``None`` when unknown)."""
        job = self.hook.get_job(job_id)
        if job is None:
            raise BatchProviderError(
                f"Job {job_id!r} does not exist. Create it first (BatchCreateJobOperator) or check job_id."
            )
        pool_id = (job.get("poolInfo") or {}).get("poolId")
        if pool_id:
            pool = self.hook.get_pool(
                pool_id, select=["id", "taskSlotsPerNode", "virtualMachineConfiguration"]
            )
            return job, pool_id, pool
        auto = ((job.get("poolInfo") or {}).get("autoPoolSpecification") or {}).get("pool") or {}
        return job, pool_id, {"id": f"the auto pool of job {job_id}", **auto} if auto else None

    def _build_context(self, lifetime: timedelta, why: str) -> tuple[TaskBuildContext, datetime]:
        """What task factories get (SAS expiry, identity), and until when the tasks need their SAS."""
        ttl = to_timedelta(self.sas_ttl, "sas_ttl", maximum=MAX_SAS_TTL)
        if ttl is not None and ttl < lifetime:
            raise InvalidInputError(
                f"sas_ttl {ttl} is shorter than the tasks may need the files ({why}: {lifetime}). Raise "
                "sas_ttl, shorten the job's max_wall_clock_time, or use identity_reference instead of SAS."
            )
        now = datetime.now(timezone.utc)
        ctx = TaskBuildContext(
            blob_hook=self.blob_hook_for,
            sas_expiry=now + (ttl or lifetime) + timedelta(minutes=5),
            identity_reference=to_rest(dict(self.identity_reference)) if self.identity_reference else None,
        )
        return ctx, now + lifetime

    def _output_settings(self, ctx: TaskBuildContext, job_id: str, prefix: str) -> OutputSettings | None:
        """Where the tasks upload their outputs (a write SAS is minted now); ``None`` without a container."""
        if self.output_patterns and not self.output_container:
            raise InvalidInputError("output_patterns needs output_container (where to upload the files).")
        if not self.output_container:
            return None
        container = validate_container_name(self.output_container, field="output_container")
        blob_hook = self.blob_hook_for()
        if self.identity_reference:
            url = blob_hook.container_url(container)
        else:
            url = blob_hook.get_container_sas_url(container, "write", expiry=ctx.sas_expiry)
        return OutputSettings(
            container_url=url,
            base_path=self.output_path or f"{job_id}/{prefix}",
            patterns=tuple(self.output_patterns or ()),
            upload_std_logs=self.upload_std_logs,
            identity_reference=dict(ctx.identity_reference) if ctx.identity_reference else None,
        )

    def _submit(self, job_id: str, id_prefix: str, pool_id: str | None, tasks: list[dict[str, Any]]) -> dict:
        """Add the tasks and return the small XCom; tasks the service refused fail the Airflow task."""
        self.log.info(
            "Adding %d task(s) with ids %s* to job %s (pool %s)", len(tasks), id_prefix or "", job_id, pool_id
        )
        try:
            result = self.hook.add_tasks(job_id, tasks, max_concurrency=self.max_concurrency)
        except HttpResponseError as err:
            if error_code(err) not in ("JobCompleted", "JobNotActive"):
                raise
            # The job ended between the check and the request: say why, as for an ended job.
            ended = self.hook.get_job(job_id) or {"id": job_id}
            refused = f"Job {job_id!r} ended while {len(tasks)} task(s) were added."
            raise self._job_ended_error(ended, refused) from err
        if result.failures:
            shown = "; ".join(f"{f['id']}: {f.get('code')}: {f.get('message')}" for f in result.failures[:10])
            raise BatchProviderError(
                f"{len(result.failures)} of {len(tasks)} task(s) could not be added to job {job_id!r}: "
                f"{shown}"
            )
        self.log.info(
            "Job %s: %d task(s) added, %d already existed (from an earlier try), in %d request(s)",
            job_id,
            result.added,
            result.already_existed,
            result.requests,
        )
        return {
            "job_id": job_id,
            "task_count": len(tasks),
            "task_id_prefix": id_prefix or None,
            "added": result.added,
            "already_existed": result.already_existed,
        }

    def _job_ended_error(self, job: dict[str, Any], refused: str) -> BatchProviderError:
        """``refused``, then why the job ended: the failed task that ended it, or its terminate reason."""
        cause = run_sync(job_end_cause(SyncBatchIO(self.hook), job))
        if cause is None:
            reason = (job.get("executionInfo") or {}).get("terminateReason") or "unknown"
            cause = (
                f"It ended with terminate reason {reason}. Add tasks to an active job: a per-run "
                "job_id such as '{{ dag.dag_id }}-{{ run_id }}' gets a new job on every run."
            )
        return BatchProviderError(f"{refused} {cause}")

    def _added_before(
        self, job: dict[str, Any], planned: list[dict[str, Any]], id_prefix: str
    ) -> dict[str, Any]:
        """A job that ended takes no tasks: fine when an earlier try of this task added them all.

        That is a retry after the worker died between adding the last task and reporting success,
        with a job set to terminate when its tasks complete. Otherwise the error names why the job
        ended: for a job ended by a failed task's exit options, that task, its exit code and stderr.
        """
        job_id, state = str(job.get("id")), str(job.get("state") or "").lower()
        wanted = {str(task["id"]) for task in planned}
        listed = self.hook.list_tasks(
            job_id, filter=prefix_filter(id_prefix) if id_prefix else None, select=["id"]
        )
        missing = sorted(wanted - {str(task.get("id")) for task in listed})
        if missing:
            refused = (
                f"Job {job_id!r} is {state!r} and accepts no new tasks, and {len(missing)} of the "
                f"{len(wanted)} task(s) to add are not in it (e.g. {', '.join(missing[:3])})."
            )
            raise self._job_ended_error(job, refused)
        self.log.info(
            "Job %s is %s and already holds all %d task(s): an earlier try added them.",
            job_id,
            state,
            len(wanted),
        )
        return {
            "job_id": job_id,
            "task_count": len(planned),
            "task_id_prefix": id_prefix or None,
            "added": 0,
            "already_existed": len(planned),
        }


__all__ = ["BatchAddTasksOperator", "default_task_id_prefix", "full_prefix"]
