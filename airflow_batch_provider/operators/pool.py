"""Create (or reuse) and delete Batch pools."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

from airflow_batch_provider.batch.capacity import CoreQuotaRetry, QuotaWait
from airflow_batch_provider.batch.containers import container_capable_image, container_configuration
from airflow_batch_provider.batch.durations import to_seconds
from airflow_batch_provider.batch.ids import to_batch_id
from airflow_batch_provider.batch.monitor.polling import PollPolicy, poll_until
from airflow_batch_provider.batch.monitor.pool import PoolVerdict, StartTaskReboots, check_pool_blocking
from airflow_batch_provider.batch.pool_spec import (
    build_pool_spec,
    image_needs_lookup,
    pool_differences,
    requested_node_count,
    resolve_image,
)
from airflow_batch_provider.batch.rest import to_rest
from airflow_batch_provider.batch.validation import validate_batch_id, validate_start_task_reboots
from airflow_batch_provider.exceptions import BatchPoolNotReadyError, BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.base import AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchPoolLink
from airflow_batch_provider.operators.base import (
    DEFERRAL_MARGIN,
    BatchBaseOperator,
    BatchCleanupBaseOperator,
)
from airflow_batch_provider.triggers.pool import BatchPoolTrigger
from airflow_batch_provider.triggers.wait_state import wait_progress_key
from airflow_batch_provider.utils.deprecation import argument_name, renamed_arguments
from airflow_batch_provider.utils.secrets import connection_credentials

if TYPE_CHECKING:
    from airflow.sdk import Context

_IF_EXISTS = ("reuse", "fail", "recreate")


def _opt_int(value: Any, name: str) -> int | None:
    if value is None or value == "" or value == "None":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a whole number, got {value!r}.") from None


class BatchCreatePoolOperator(BatchBaseOperator):
    """Create a Batch pool, or reuse a compatible one, and optionally wait until it is ready.

    The image is an alias (``ubuntu-24.04``, ``ubuntu-22.04``...) resolved through the account's
    supported-images list to its node agent SKU, or an explicit image reference dict. Size the pool with
    ``target_dedicated_nodes`` / ``target_spot_nodes`` or with ``auto_scale_formula``; ``pool_spec``
    (REST or Python style) is merged last for any other pool property.

    An existing pool with the same id is reused when its VM size, image, node agent, task slots, fill
    policy, scaling mode and start task match; otherwise the task fails listing the differences, or
    deletes and recreates the pool with ``if_exists="recreate"`` (``"fail"`` refuses any existing pool).

    With ``wait_for_completion`` the task waits (in the triggerer when ``deferrable``) until the pool is
    steady with ``min_usable_nodes`` idle/running nodes (default: every requested node; 0 for
    autoscale) and fails fast on quota, image and VM size errors (with the service's message), on start
    task failures (with the tail of the node's ``startup/stderr.txt``) and on unusable nodes;
    ``AllocationTimedout`` on an autoscale pool keeps waiting until ``timeout``.
    ``container_configuration`` makes a container pool: ``type`` (``dockerCompatible`` or
    ``criCompatible``), ``container_image_names`` (pulled when each node starts) and
    ``container_registries`` (``registry_server`` with ``conn_id``, an Airflow connection holding the
    registry's user and password, or ``identity_reference``); an image alias then resolves to a
    container-capable image. A password written into the DAG is refused.
    ``max_start_task_reboots`` reboots a node whose start task failed up to that many times (the start
    task reruns on every boot) before its failure counts; each reboot is logged with the node id, the
    attempt and the tail of ``startup/stderr.txt``.
    ``quota_wait_timeout`` (seconds, on a fixed-size pool; blocking or deferred) turns a core quota
    resize error (``AccountCoreQuotaReached``...) into a wait: the pool is resized again after
    ``quota_retry_delay`` seconds, the pause doubling up to 5 minutes, until it gets its nodes or the
    bound passes. The wait's ``timeout`` is extended by that bound.

    Returns ``{"pool_id", "created", "recreated", "vm_size", "task_slots_per_node", "usable_nodes"}``.

    :param pool_id: The pool id (any rendered template; made a valid Batch id).
    :param vm_size: The VM size of the nodes, such as ``standard_d2s_v3``.
    :param image: An image alias (``ubuntu-24.04``...) or an image reference dict.
    :param node_agent_sku_id: The node agent SKU; looked up for an alias when not given.
    :param target_dedicated_nodes: Dedicated nodes wanted.
    :param target_spot_nodes: Spot nodes wanted.
    :param auto_scale_formula: An autoscale formula, instead of fixed node counts.
    :param auto_scale_evaluation_interval: How often the formula runs (seconds, ``timedelta`` or ISO 8601).
    :param start_task: The start task every node runs when it joins or reboots.
    :param start_task_resource_files: Resource files of the start task: REST entries or Blob descriptors
        (``container``, ``blob_prefix``, ``file_path``, ``file_mode``, ``sas_days``).
    :param container_configuration: Makes a container pool (``type``, ``container_image_names``,
        ``container_registries``).
    :param task_slots_per_node: Tasks a node runs at once.
    :param node_fill_type: ``spread`` or ``pack``.
    :param metadata: Name-value pairs stored on the pool.
    :param pool_spec: Any other pool property (REST or Python style), merged last.
    :param if_exists: ``reuse`` a compatible pool, ``fail``, or ``recreate`` an incompatible one.
    :param wait_for_completion: Wait until the pool is ready (formerly ``wait_for_ready``).
    :param min_usable_nodes: Idle or running nodes the wait needs; default every requested node.
    :param max_start_task_reboots: Reboots of a node whose start task failed before its failure counts.
    :param quota_wait_timeout: Seconds (or ``timedelta``) to wait for the core quota to free up when a
        fixed-size pool cannot get its nodes; ``None`` (default) fails at the first quota error.
    :param quota_retry_delay: Seconds before the first new resize; the pause doubles up to 5 minutes.
    :param timeout: Longest wait for the pool, in seconds or a ``timedelta`` (formerly ``wait_timeout``).
    :param poll_interval: Time between two checks, in seconds or a ``timedelta``.
    :param deferrable: Wait in the triggerer and free the worker slot.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param azblob_conn_id: The ``azblob`` connection, for start task resource files from Blob.
    """

    template_fields: Sequence[str] = (
        "pool_id",
        "vm_size",
        "image",
        "node_agent_sku_id",
        "target_dedicated_nodes",
        "target_spot_nodes",
        "auto_scale_formula",
        "auto_scale_evaluation_interval",
        "start_task",
        "start_task_resource_files",
        "container_configuration",
        "task_slots_per_node",
        "node_fill_type",
        "metadata",
        "pool_spec",
        "if_exists",
        "min_usable_nodes",
        "azbatch_conn_id",
        "azblob_conn_id",
    )
    template_fields_renderers = {"pool_spec": "json", "start_task": "json", "image": "json"}
    operator_extra_links = (BatchPoolLink(),)
    ui_color = "#d6eaff"

    @renamed_arguments(wait_for_ready="wait_for_completion", wait_timeout="timeout")
    def __init__(
        self,
        *,
        pool_id: str,
        vm_size: str,
        image: str | Mapping[str, Any] = "ubuntu-24.04",
        node_agent_sku_id: str | None = None,
        target_dedicated_nodes: int | None = None,
        target_spot_nodes: int | None = None,
        auto_scale_formula: str | None = None,
        auto_scale_evaluation_interval: timedelta | float | str | None = None,
        start_task: Mapping[str, Any] | Any | None = None,
        start_task_resource_files: Sequence[Mapping[str, Any]] | None = None,
        container_configuration: Mapping[str, Any] | None = None,
        task_slots_per_node: int = 1,
        node_fill_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        pool_spec: Mapping[str, Any] | None = None,
        if_exists: str = "reuse",
        wait_for_completion: bool = True,
        min_usable_nodes: int | None = None,
        max_start_task_reboots: int = 0,
        quota_wait_timeout: timedelta | float | None = None,
        quota_retry_delay: float = 5.0,
        timeout: timedelta | float = timedelta(minutes=30),
        poll_interval: timedelta | float = 30,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        azbatch_conn_id: str = BatchHook.default_conn_name,
        azblob_conn_id: str = AZBLOB_DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, azblob_conn_id=azblob_conn_id, **kwargs)
        self.pool_id = pool_id
        self.vm_size = vm_size
        self.image = image
        self.node_agent_sku_id = node_agent_sku_id
        self.target_dedicated_nodes = target_dedicated_nodes
        self.target_spot_nodes = target_spot_nodes
        self.auto_scale_formula = auto_scale_formula
        self.auto_scale_evaluation_interval = auto_scale_evaluation_interval
        self.start_task = start_task
        self.start_task_resource_files = start_task_resource_files
        self.container_configuration = container_configuration
        self.task_slots_per_node = task_slots_per_node
        self.node_fill_type = node_fill_type
        self.metadata = metadata
        self.pool_spec = pool_spec
        self.if_exists = if_exists
        self.wait_for_completion = wait_for_completion
        self.min_usable_nodes = min_usable_nodes
        self.max_start_task_reboots = validate_start_task_reboots(max_start_task_reboots)
        self._progress_store: Any = None
        self.quota_wait_timeout = quota_wait_timeout
        self.quota_retry_delay = quota_retry_delay
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    # -- spec ---------------------------------------------------------------------------------------

    def build_spec(
        self, pool_id: str, supported_images: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The pool body this operator would send (no SAS minted yet)."""
        image = self.image
        if isinstance(image, str) and image.strip().startswith("{"):
            raise InvalidInputError("image must be an alias string or a dict, not a JSON string.")
        reference, agent = resolve_image(image, self.node_agent_sku_id, supported_images)
        containers = None
        if self.container_configuration:
            containers = container_configuration(self.container_configuration, connection_credentials)
            if not self.node_agent_sku_id:
                reference, agent = container_capable_image(reference, agent, supported_images)
        spec = build_pool_spec(
            pool_id=pool_id,
            vm_size=str(self.vm_size or ""),
            image_reference=reference,
            node_agent_sku_id=agent,
            target_dedicated_nodes=_opt_int(self.target_dedicated_nodes, "target_dedicated_nodes"),
            target_spot_nodes=_opt_int(self.target_spot_nodes, "target_spot_nodes"),
            auto_scale_formula=self.auto_scale_formula or None,
            auto_scale_evaluation_interval=self.auto_scale_evaluation_interval or None,
            start_task=self.start_task,
            task_slots_per_node=_opt_int(self.task_slots_per_node, "task_slots_per_node"),
            node_fill_type=self.node_fill_type or None,
            metadata=self.metadata,
            extra=self.pool_spec,
        )
        if containers is not None:
            spec.setdefault("virtualMachineConfiguration", {})["containerConfiguration"] = containers
        return spec

    def _start_task_files(self) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = []
        for entry in self.start_task_resource_files or []:
            entry = dict(entry)
            if "container" not in entry:
                files.append(to_rest(entry))
                continue

            # Nodes run the start task whenever they join or reboot: a long-lived read SAS is needed.
            item = self.blob_hook_for().resource_files(
                str(entry["container"]),
                entry.get("blob_prefix") or entry.get("prefix") or "",
                file_path=entry.get("file_path"),
                file_mode=entry.get("file_mode"),
                expiry=timedelta(days=int(entry.get("sas_days", 30))),
            )[0]
            files.append(item)
        return files

    # -- execute ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        pool_id = validate_batch_id(to_batch_id(self.pool_id, "pool_id"), "pool")
        if self.if_exists not in _IF_EXISTS:
            raise InvalidInputError(
                f"if_exists must be one of {', '.join(_IF_EXISTS)}, got {self.if_exists!r}."
            )
        supported = None
        if image_needs_lookup(self.image, self.node_agent_sku_id):
            supported = self.hook.list_supported_images()
        spec = self.build_spec(pool_id, supported)
        wait_timeout = to_seconds(self.timeout, argument_name(self, "timeout")) or 1800.0
        poll_interval = to_seconds(self.poll_interval, "poll_interval") or 30.0
        min_nodes = _opt_int(self.min_usable_nodes, "min_usable_nodes")
        if min_nodes is None:
            min_nodes = requested_node_count(spec)

        created = recreated = False
        existing = self.hook.get_pool(pool_id)
        if existing is not None and str(existing.get("state", "")).lower() == "deleting":
            self.log.info("Pool %s is being deleted; waiting until it is gone to create it again", pool_id)
            self.hook.delete_pool(pool_id, wait=True, poll_interval=max(1, int(poll_interval)))
            existing = None
        if existing is not None:
            created, recreated = self._handle_existing(pool_id, spec, existing, poll_interval)
        else:
            created = self._create(spec)
            if not created:  # someone created it between our read and our create
                existing = self.hook.get_pool(pool_id)
                if existing is not None:
                    created, recreated = self._handle_existing(pool_id, spec, existing, poll_interval)

        self.persist_link(BatchPoolLink, context, pool_id)
        result: dict[str, Any] = {
            "pool_id": pool_id,
            "created": created,
            "recreated": recreated,
            "vm_size": spec.get("vmSize"),
            "task_slots_per_node": int(spec.get("taskSlotsPerNode") or 1),
            "usable_nodes": None,
        }
        if not self.wait_for_completion:
            return result
        self._progress_store = context.get("task_state_store")
        reboots = StartTaskReboots.from_json(self.max_start_task_reboots, self._saved_reboots(pool_id))
        quota_retry = self._core_quota_retry(spec)
        wait_timeout += quota_retry.wait.timeout if quota_retry is not None else 0.0
        if self.deferrable:
            verdict = self._check(pool_id, min_nodes, reboots, quota_retry)
            if verdict.status == "waiting":
                self.log.info("%s", verdict.message)
                self.defer(
                    trigger=BatchPoolTrigger(
                        pool_id=pool_id,
                        azbatch_conn_id=self.azbatch_conn_id,
                        min_usable_nodes=min_nodes,
                        poll_interval=poll_interval,
                        timeout_at=time.time() + wait_timeout,
                        resume_xcom=result,
                        max_start_task_reboots=self.max_start_task_reboots,
                        start_task_reboots=reboots.to_json(),
                        checkpoint_each_reboot=True,
                        core_quota_retry=quota_retry.to_json() if quota_retry is not None else None,
                    ),
                    method_name="execute_complete",
                    timeout=timedelta(seconds=wait_timeout + DEFERRAL_MARGIN),
                )
            return self._finish(result, {"status": verdict.status, **verdict.as_dict(), "pool_id": pool_id})
        return self._finish(
            result, self._wait(pool_id, min_nodes, wait_timeout, poll_interval, reboots, quota_retry)
        )

    def _core_quota_retry(self, spec: Mapping[str, Any]) -> CoreQuotaRetry | None:
        """The core quota wait ``quota_wait_timeout`` asks for; ``None`` without one or for autoscale
        (whose formula asks for nodes again by itself)."""
        bound = to_seconds(self.quota_wait_timeout, "quota_wait_timeout") or 0.0
        if bound <= 0 or spec.get("enableAutoScale"):
            return None
        delay = float(self.quota_retry_delay)
        return CoreQuotaRetry(
            QuotaWait(bound, delay, max(300.0, delay)),
            int(spec.get("targetDedicatedNodes") or 0),
            int(spec.get("targetLowPriorityNodes") or 0),
        )

    def _create(self, spec: dict[str, Any]) -> bool:
        files = self._start_task_files()
        body = dict(spec)
        if files:
            start = dict(body.get("startTask") or {})
            if not start.get("commandLine"):
                raise InvalidInputError("start_task_resource_files needs a start_task with a commandLine.")
            start["resourceFiles"] = [*files, *(start.get("resourceFiles") or [])]
            body["startTask"] = start
        created = self.hook.create_pool(body)
        if created:
            self.log.info("Created pool %s: %s, %s", spec["id"], spec.get("vmSize"), _describe_size(spec))
        return created

    def _handle_existing(
        self, pool_id: str, spec: dict[str, Any], existing: dict[str, Any], poll_interval: float
    ) -> tuple[bool, bool]:
        if self.if_exists == "fail":
            raise BatchProviderError(
                f"Pool {pool_id!r} already exists and if_exists='fail'. Use another pool_id, "
                "if_exists='reuse' to share it, or delete it first."
            )
        differences = pool_differences(spec, existing)
        if not differences:
            self.log.info("Reusing the existing, compatible pool %s (%s)", pool_id, _describe_size(existing))
            return False, False
        listed = "\n  - ".join(differences)
        if self.if_exists != "recreate":
            raise BatchProviderError(
                f"Pool {pool_id!r} already exists with a different configuration:\n  - {listed}\n"
                "Use another pool_id, or if_exists='recreate' to delete and recreate it (running tasks "
                "on it are requeued)."
            )
        self.log.warning("Recreating pool %s because it differs:\n  - %s", pool_id, listed)
        self.hook.delete_pool(pool_id, wait=True, poll_interval=max(1, int(poll_interval)))
        if not self._create(spec):
            raise BatchProviderError(f"Pool {pool_id!r} reappeared while it was being recreated.")
        return True, True

    def _check(
        self,
        pool_id: str,
        min_nodes: int,
        reboots: StartTaskReboots,
        quota_retry: CoreQuotaRetry | None = None,
    ) -> PoolVerdict:
        """One poll of the pool; logs the reboots it made and keeps them in the task state store."""
        made = reboots.total
        verdict = check_pool_blocking(self.hook, pool_id, min_nodes, reboots, self.log, quota_retry)
        store = self._progress_store
        if store is not None and reboots.total != made:
            # Same key and shape as the trigger's progress, so a retry goes on from these reboots.
            store.set(wait_progress_key(f"pool {pool_id!r}"), {"start_task_reboots": reboots.to_json()})
        return verdict

    def _saved_reboots(self, pool_id: str) -> dict[str, Any] | None:
        """Reboots an earlier try made (Airflow 3.3's task state store), so a retry does not redo them."""
        store = self._progress_store
        if store is None or not self.max_start_task_reboots:
            return None
        saved = store.get(wait_progress_key(f"pool {pool_id!r}"))
        reboots = saved.get("start_task_reboots") if isinstance(saved, dict) else None
        if reboots:
            self.log.info("Pool %s: going on from the start-task reboots an earlier try made", pool_id)
        return reboots if isinstance(reboots, dict) else None

    def _wait(
        self,
        pool_id: str,
        min_nodes: int,
        timeout: float,
        poll_interval: float,
        reboots: StartTaskReboots,
        quota_retry: CoreQuotaRetry | None = None,
    ) -> dict[str, Any]:
        last: list[str] = []

        def log_change(verdict: PoolVerdict) -> None:
            if verdict.message not in last[-1:]:
                self.log.info("%s", verdict.message)
                last.append(verdict.message)

        result = poll_until(
            lambda: self._check(pool_id, min_nodes, reboots, quota_retry),
            lambda verdict: verdict.status != "waiting",
            PollPolicy.within(timeout, poll_interval),
            what=f"pool {pool_id!r}",
            on_value=log_change,
            logger=self.log,
        ).raise_error()
        verdict = result.value
        if result.outcome == "done" and verdict is not None:
            return {"status": verdict.status, **verdict.as_dict(), "pool_id": pool_id}
        status = verdict.message if verdict is not None else "unknown"
        return {
            "status": "timeout",
            "pool_id": pool_id,
            "message": f"Pool {pool_id!r} was not ready after {timeout:.0f}s. Last status: {status}",
        }

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event:
            raise BatchProviderError("The pool trigger ended without an event.")
        if event.get("status") == "checkpoint":
            self.defer_from_checkpoint(context, event, BatchPoolTrigger)
        return self._finish(dict(event.get("carry") or {"pool_id": event.get("pool_id")}), event)

    def _finish(self, result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status")
        if status == "ready":
            result["usable_nodes"] = event.get("usable_nodes")
            return result
        message = str(event.get("message") or "")
        if status == "timeout":
            raise BatchPoolNotReadyError(
                f"{message} Raise {argument_name(self, 'timeout')}, check the account's core quota, "
                "or use a smaller VM size."
            )
        if status == "failed":
            raise BatchPoolNotReadyError(message)
        raise BatchProviderError(message or f"Waiting for pool {result.get('pool_id')!r} failed.")


def _describe_size(spec: Mapping[str, Any]) -> str:
    if spec.get("enableAutoScale"):
        return f"autoscale ({spec.get('autoScaleFormula', '')!s:.60})"
    dedicated = spec.get("targetDedicatedNodes") or 0
    spot = spec.get("targetLowPriorityNodes") or 0
    return f"{dedicated} dedicated + {spot} Spot node(s)"


class BatchDeletePoolOperator(BatchCleanupBaseOperator):
    """Delete a Batch pool; a pool that does not exist (or is already being deleted) is not an error.

    Meant as a teardown task (``.as_teardown()``), so it runs whatever happened upstream.
    Returns ``{"pool_id", "outcome"}`` with ``outcome`` ``deleted``, ``not_found`` or ``being_deleted``.
    With ``wait_for_completion`` the task waits until the pool is gone (node deallocation can take
    minutes: in the triggerer when ``deferrable``), at most ``timeout``.

    :param pool_id: The pool to delete (templated).
    :param wait_for_completion: Block until the pool is gone (formerly ``wait_for_deletion``).
    :param azbatch_conn_id: The ``azbatch`` connection.
    """

    template_fields: Sequence[str] = ("pool_id", "azbatch_conn_id")
    ui_color = "#ffe0e0"
    kind = "pool"

    @renamed_arguments(wait_for_deletion="wait_for_completion")
    def __init__(
        self,
        *,
        pool_id: str,
        wait_for_completion: bool = False,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(wait_for_completion=wait_for_completion, azbatch_conn_id=azbatch_conn_id, **kwargs)
        self.pool_id = pool_id

    def start_cleanup(self, resource_id: str, *, wait: bool, poll_interval: float, timeout: float) -> str:
        return self.hook.delete_pool(resource_id, wait=wait, poll_interval=poll_interval, timeout=timeout)
