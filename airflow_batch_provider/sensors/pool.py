"""Sensor that waits until a Batch pool is steady with enough usable nodes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_batch_provider.batch.monitor.pool import PoolVerdict, StartTaskReboots, check_pool_blocking
from airflow_batch_provider.batch.validation import validate_start_task_reboots
from airflow_batch_provider.exceptions import BatchPoolNotReadyError, BatchProviderError, InvalidInputError
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchPoolLink
from airflow_batch_provider.operators.base import DEFERRAL_MARGIN, BatchConnectionMixin
from airflow_batch_provider.triggers.pool import BatchPoolTrigger


def pool_result(event: dict[str, Any]) -> dict[str, Any]:
    return {"pool_id": event.get("pool_id"), "usable_nodes": event.get("usable_nodes")}


class BatchPoolSensor(BatchConnectionMixin, BaseSensorOperator):
    """Wait until a pool is steady with at least ``min_usable_nodes`` idle or running nodes.

    Fails fast, with the service's message, on quota, image and VM size errors; on start task failures
    with the tail of the node's ``startup/stderr.txt``; and on unusable nodes. ``AllocationTimedout`` on
    an autoscale pool keeps waiting until ``timeout``. Deferrable.

    :param pool_id: The pool id.
    :param min_usable_nodes: Nodes required; default every target node (0 for autoscale pools).
    :param max_start_task_reboots: Reboot a node whose start task failed up to this many times before
        its failure counts (0: never). Counted by the running wait, so not in ``mode="reschedule"``
        unless ``deferrable``.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param poke_interval: Time between two checks, in seconds or a ``timedelta``.
    :param deferrable: Wait in the triggerer and free the worker slot.
    """

    template_fields: Sequence[str] = ("pool_id", "min_usable_nodes", "azbatch_conn_id")
    operator_extra_links = (BatchPoolLink(),)
    ui_color = "#cce5ff"

    def __init__(
        self,
        *,
        pool_id: str,
        min_usable_nodes: int | None = None,
        max_start_task_reboots: int = 0,
        azbatch_conn_id: str = BatchHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.pool_id = pool_id
        self.min_usable_nodes = min_usable_nodes
        self.azbatch_conn_id = azbatch_conn_id
        self.deferrable = deferrable
        self.max_start_task_reboots = validate_start_task_reboots(max_start_task_reboots)
        if self.max_start_task_reboots and self.mode == "reschedule" and not deferrable:
            raise InvalidInputError(
                "max_start_task_reboots needs mode='poke' or deferrable=True: in mode='reschedule' "
                "every poke starts afresh and could not count the reboots it made."
            )
        self._reboots = StartTaskReboots(self.max_start_task_reboots)
        self._last_message: str | None = None

    def _min(self) -> int | None:
        return int(self.min_usable_nodes) if self.min_usable_nodes not in (None, "", "None") else None

    def execute(self, context: Any) -> Any:
        self.persist_link(BatchPoolLink, context, self.pool_id)
        if self.deferrable:
            verdict = self._check()
            if verdict.status != "waiting":
                return self._handle({"status": verdict.status, **verdict.as_dict(), "pool_id": self.pool_id})
            self.log.info("%s", verdict.message)
            self.defer(
                trigger=BatchPoolTrigger(
                    pool_id=self.pool_id,
                    azbatch_conn_id=self.azbatch_conn_id,
                    min_usable_nodes=self._min(),
                    poll_interval=self.poke_interval,
                    timeout_at=time.time() + self.timeout,
                    max_start_task_reboots=self.max_start_task_reboots,
                    start_task_reboots=self._reboots.to_json(),
                    checkpoint_each_reboot=True,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout + DEFERRAL_MARGIN),
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout as err:
            raise AirflowSensorTimeout(f"{err} Last status: {self._last_message or 'unknown'}") from err

    def _check(self) -> PoolVerdict:
        """One poll of the pool; logs the reboots it made."""
        return check_pool_blocking(self.hook, self.pool_id, self._min(), self._reboots, self.log)

    def poke(self, context: Any) -> bool | PokeReturnValue:
        verdict = self._check()
        if verdict.message != self._last_message:
            self.log.info("%s", verdict.message)
            self._last_message = verdict.message
        if verdict.status == "waiting":
            return False
        return PokeReturnValue(
            True, self._handle({"status": verdict.status, **verdict.as_dict(), "pool_id": self.pool_id})
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event:
            raise BatchProviderError("The Batch pool trigger ended without an event.")
        if event.get("status") == "checkpoint":
            self.defer_from_checkpoint(context, event, BatchPoolTrigger)
        return self._handle(event)

    def _handle(self, event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status")
        if status == "ready":
            return pool_result(event)
        if status == "timeout":
            raise AirflowSensorTimeout(str(event.get("message")))
        if status == "failed":
            raise BatchPoolNotReadyError(str(event.get("message")))
        raise BatchProviderError(str(event.get("message") or f"Waiting for pool {self.pool_id!r} failed."))
