"""Trigger that waits, in the triggerer, until a Batch pool is ready or can never be."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_batch_provider.batch.capacity import CoreQuotaRetry
from airflow_batch_provider.batch.validation import validate_start_task_reboots
from airflow_batch_provider.triggers._base import BatchPollingTrigger
from airflow_batch_provider.triggers._off_loop import DEFAULT_CONN_ID
from airflow_batch_provider.utils.deprecation import renamed_arguments

if TYPE_CHECKING:  # the triggerer imports this module on its event loop: the SDK comes later, off it
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
    from airflow_batch_provider.batch.monitor.pool import PoolVerdict, StartTaskReboots


class BatchPoolTrigger(BatchPollingTrigger["PoolVerdict"]):
    """Poll a pool with the async Batch client until it is steady with enough usable nodes.

    Emits one event ``{"status": "ready"|"failed"|"timeout"|"error", "pool_id", "message",
    "usable_nodes"}``. Fatal resize errors (quota, image, VM size), start-task failures (with the tail
    of ``startup/stderr.txt``) and unusable nodes end the wait at once; ``AllocationTimedout`` on an
    autoscale pool keeps waiting until ``timeout_at`` (a UNIX timestamp).

    With ``max_start_task_reboots``, a node whose start task failed is rebooted up to that many times
    before the failure counts. ``start_task_reboots`` holds the reboots already made (by the operator's
    first check); the trigger adds its own. A triggerer re-creates a trigger from the arguments it was
    deferred with, so reboots counted only in memory would be made again after a triggerer restart.
    With ``checkpoint_each_reboot`` (the operator and the sensor set it), the trigger therefore ends
    with a ``checkpoint`` event after each poll that rebooted a node; the task defers again at once
    with the counts in the new trigger's arguments (:meth:`checkpoint_event`), which Airflow keeps in
    its database. With a ``state_store`` attached instead, the counts are saved there after each reboot.

    :param pool_id: The pool to watch.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param min_usable_nodes: Idle or running nodes needed; default every target node (0 for autoscale).
    :param poll_interval: Seconds between two polls.
    :param timeout_at: When to give up (UNIX timestamp); ``None`` waits without a deadline.
    :param max_consecutive_errors: Failed reads in a row that end the wait with an ``error`` event.
    :param resume_xcom: JSON returned unchanged in the event (its ``carry`` field), so the operator
        resumes with what it knew. Formerly ``carry``.
    :param max_start_task_reboots: Reboots per node whose start task failed before the failure counts.
    :param start_task_reboots: Reboots already made (from :meth:`StartTaskReboots.to_json`).
    :param checkpoint_each_reboot: End with a ``checkpoint`` event after each poll that rebooted a node
        (when no state store is attached), so the deferring task records the counts in Airflow.
    :param core_quota_retry: Resize a fixed-size pool that failed on the core quota again, with
        backoff, until this bound (from :meth:`CoreQuotaRetry.to_json`); ``None`` fails at once.
    """

    @renamed_arguments(carry="resume_xcom")
    def __init__(
        self,
        pool_id: str,
        azbatch_conn_id: str = DEFAULT_CONN_ID,
        min_usable_nodes: int | None = None,
        poll_interval: float = 30.0,
        timeout_at: float | None = None,
        max_consecutive_errors: int = 3,
        resume_xcom: dict[str, Any] | None = None,
        max_start_task_reboots: int = 0,
        start_task_reboots: dict[str, Any] | None = None,
        checkpoint_each_reboot: bool = False,
        core_quota_retry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            azbatch_conn_id=azbatch_conn_id,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_consecutive_errors=max_consecutive_errors,
        )
        #: JSON data returned unchanged in the event, so the operator resumes with what it knew.
        self.resume_xcom = resume_xcom
        self.pool_id = pool_id
        self.min_usable_nodes = min_usable_nodes
        self.max_start_task_reboots = validate_start_task_reboots(max_start_task_reboots)
        #: Reboots made so far; serialize() includes them, so a re-created trigger knows them.
        self._reboots_json = start_task_reboots
        self._reboots: StartTaskReboots | None = None
        self.checkpoint_each_reboot = bool(checkpoint_each_reboot)
        #: The core quota wait, with its resizes so far; ``None`` when the trigger has none.
        self.quota_retry = CoreQuotaRetry.from_json(core_quota_retry) if core_quota_retry else None
        #: Reboots counted when this trigger's first poll began: more than that means a checkpoint.
        self._reboots_at_start: int | None = None
        self._last_message: str | None = None

    def serialize_fields(self) -> dict[str, Any]:
        return {
            "pool_id": self.pool_id,
            "min_usable_nodes": self.min_usable_nodes,
            "resume_xcom": self.resume_xcom,
            "max_start_task_reboots": self.max_start_task_reboots,
            "start_task_reboots": self._reboots_json if self._reboots is None else self._reboots.to_json(),
            "checkpoint_each_reboot": self.checkpoint_each_reboot,
            "core_quota_retry": self.quota_retry.to_json() if self.quota_retry is not None else None,
        }

    @property
    def resource(self) -> str:
        return f"pool {self.pool_id!r}"

    @property
    def reboots(self) -> StartTaskReboots:
        """Reboots made so far; serialize() includes them, so a re-created trigger knows them."""
        if self._reboots is None:
            from airflow_batch_provider.batch.monitor.pool import StartTaskReboots

            self._reboots = StartTaskReboots.from_json(self.max_start_task_reboots, self._reboots_json)
        return self._reboots

    def progress(self) -> dict[str, Any] | None:
        return {"start_task_reboots": self.reboots.to_json()} if self.max_start_task_reboots else None

    def resume_from(self, progress: dict[str, Any]) -> None:
        from airflow_batch_provider.batch.monitor.pool import StartTaskReboots

        saved = progress.get("start_task_reboots")
        if saved:
            self._reboots = StartTaskReboots.from_json(self.max_start_task_reboots, saved)

    async def check(self, io: AsyncBatchIO) -> PoolVerdict:
        from airflow_batch_provider.batch.monitor.pool import check_pool  # loaded off the loop already

        if self._reboots_at_start is None:
            self._reboots_at_start = self.reboots.total
        return await check_pool(
            io, self.pool_id, self.min_usable_nodes, reboots=self.reboots, quota_retry=self.quota_retry
        )

    def _checkpoint_due(self) -> bool:
        """Whether this trigger rebooted a node that only its memory counts (see the class docs)."""
        return (
            self.checkpoint_each_reboot
            and self.state_store is None
            and self._reboots_at_start is not None
            and self.reboots.total > self._reboots_at_start
        )

    def on_value(self, value: PoolVerdict) -> None:
        for line in value.reboot_messages:
            self.log.warning("%s", line)
        if value.message != self._last_message:
            self.log.info("%s", value.message)
            self._last_message = value.message

    def is_done(self, value: PoolVerdict) -> bool:
        return value.status in ("ready", "failed") or self._checkpoint_due()

    def done_event(self, value: PoolVerdict) -> dict[str, Any]:
        if value.status not in ("ready", "failed"):
            return self.checkpoint_event()
        return {
            "carry": self.resume_xcom,
            "status": value.status,
            "pool_id": self.pool_id,
            "message": value.message,
            "usable_nodes": value.usable_nodes,
        }

    def timeout_event(self, value: PoolVerdict) -> dict[str, Any]:
        return {
            "carry": self.resume_xcom,
            "status": "timeout",
            "pool_id": self.pool_id,
            "message": f"Pool {self.pool_id!r} was not ready in time. Last status: {value.message}",
            "usable_nodes": value.usable_nodes,
        }

    def checkpoint_event(self) -> dict[str, Any]:
        """``{"status": "checkpoint", "trigger_kwargs", "state_key", "progress", ...}``: the wait is not
        over; defer again with ``BatchPoolTrigger(**trigger_kwargs)`` (which holds the reboots made)."""
        return {
            "carry": self.resume_xcom,
            "status": "checkpoint",
            "pool_id": self.pool_id,
            "message": f"Pool {self.pool_id!r}: {self.reboots.total} start-task reboot(s) made so far",
            "trigger_kwargs": self.serialize()[1],
            "state_key": self.state_key,
            "progress": self.progress(),
        }

    def error_event(self, message: str, last: PoolVerdict | None) -> dict[str, Any]:
        return {"carry": self.resume_xcom, "status": "error", "pool_id": self.pool_id, "message": message}
