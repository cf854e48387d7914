"""Create (or reuse) and delete Batch pools."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf

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
from airflow_batch_provider.operators.base import BatchBaseOperator
from airflow_batch_provider.triggers.pool import BatchPoolTrigger
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

    With ``wait_for_ready`` the task waits (in the triggerer when ``deferrable``) until the pool is
    steady with ``min_usable_nodes`` idle/running nodes (default: every requested node; 0 for
    autoscale) and fails fast on quota, image and VM size errors (with the service's message), on start
    task failures (with the tail of the node's ``startup/stderr.txt``) and on unusable nodes;
    ``AllocationTimedout`` on an autoscale pool keeps waiting until ``wait_timeout``.
    ``container_configuration`` makes a container pool: ``type`` (``dockerCompatible`` or
    ``criCompatible``), ``container_image_names`` (pulled when each node starts) and
    ``container_registries`` (``registry_server`` with ``conn_id``, an Airflow connection holding the
    registry's user and password, or ``identity_reference``); an image alias then resolves to a
    container-capable image. A password written into the DAG is refused.
    ``max_start_task_reboots`` reboots a node whose start task failed up to that many times (the start
    task reruns on every boot) before its failure counts; each reboot is logged with the node id, the
    attempt and the tail of ``startup/stderr.txt``.

    Returns ``{"pool_id", "created", "recreated", "vm_size", "task_slots_per_node", "usable_nodes"}``.
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
        wait_for_ready: bool = True,
        min_usable_nodes: int | None = None,
        max_start_task_reboots: int = 0,
        wait_timeout: timedelta | float = timedelta(minutes=30),
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
        self.wait_for_ready = wait_for_ready
        self.min_usable_nodes = min_usable_nodes
        self.max_start_task_reboots = validate_start_task_reboots(max_start_task_reboots)
        self.wait_timeout = wait_timeout
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
        wait_timeout = to_seconds(self.wait_timeout, "wait_timeout") or 1800.0
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
        if not self.wait_for_ready:
            return result
        reboots = StartTaskReboots(self.max_start_task_reboots)
        if self.deferrable:
            verdict = self._check(pool_id, min_nodes, reboots)
            if verdict.status == "waiting":
                self.log.info("%s", verdict.message)
                self.defer(
                    trigger=BatchPoolTrigger(
                        pool_id=pool_id,
                        azbatch_conn_id=self.azbatch_conn_id,
                        min_usable_nodes=min_nodes,
                        poll_interval=poll_interval,
                        timeout_at=time.time() + wait_timeout,
                        carry=result,
                        max_start_task_reboots=self.max_start_task_reboots,
                        start_task_reboots=reboots.to_json(),
                    ),
                    method_name="execute_complete",
                    timeout=timedelta(seconds=wait_timeout + 60),
                )
            return self._finish(result, {"status": verdict.status, **verdict.as_dict(), "pool_id": pool_id})
        return self._finish(result, self._wait(pool_id, min_nodes, wait_timeout, poll_interval, reboots))

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

    def _check(self, pool_id: str, min_nodes: int, reboots: StartTaskReboots) -> PoolVerdict:
        """One poll of the pool; logs the reboots it made."""
        return check_pool_blocking(self.hook, pool_id, min_nodes, reboots, self.log)

    def _wait(
        self, pool_id: str, min_nodes: int, timeout: float, poll_interval: float, reboots: StartTaskReboots
    ) -> dict[str, Any]:
        last: list[str] = []

        def log_change(verdict: PoolVerdict) -> None:
            if verdict.message not in last[-1:]:
                self.log.info("%s", verdict.message)
                last.append(verdict.message)

        result = poll_until(
            lambda: self._check(pool_id, min_nodes, reboots),
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
        return self._finish(dict(event.get("carry") or {"pool_id": event.get("pool_id")}), event)

    def _finish(self, result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status")
        if status == "ready":
            result["usable_nodes"] = event.get("usable_nodes")
            return result
        message = str(event.get("message") or "")
        if status == "timeout":
            raise BatchPoolNotReadyError(
                f"{message} Raise wait_timeout, check the account's core quota, or use a smaller VM size."
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


class BatchDeletePoolOperator(BatchBaseOperator):
    """Delete a Batch pool; a pool that does not exist (or is already being deleted) is not an error.

    Meant as a teardown task (``.as_teardown()``), so it runs whatever happened upstream.
    Returns ``{"pool_id", "outcome"}`` with ``outcome`` ``deleted``, ``not_found`` or ``being_deleted``.

    :param wait_for_deletion: Block until the pool is gone.
    """

    template_fields: Sequence[str] = ("pool_id", "azbatch_conn_id")
    ui_color = "#ffe0e0"

    def __init__(
        self,
        *,
        pool_id: str,
        wait_for_deletion: bool = False,
        poll_interval: float = 5,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(azbatch_conn_id=azbatch_conn_id, **kwargs)
        self.pool_id = pool_id
        self.wait_for_deletion = wait_for_deletion
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> dict[str, Any]:
        pool_id = to_batch_id(self.pool_id, "pool_id")
        poll_interval = to_seconds(self.poll_interval, "poll_interval")
        outcome = self.hook.delete_pool(
            pool_id, wait=self.wait_for_deletion, poll_interval=5 if poll_interval is None else poll_interval
        )
        self.log.info("Pool %s: %s", pool_id, outcome.replace("_", " "))
        return {"pool_id": pool_id, "outcome": outcome}
