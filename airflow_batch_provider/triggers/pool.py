"""Trigger that waits, in the triggerer, until a Batch pool is ready or can never be."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batch_provider.triggers._off_loop import DEFAULT_CONN_ID, prepare_batch_io
from airflow_batch_provider.utils.validation import validate_start_task_reboots

if TYPE_CHECKING:
    from airflow_batch_provider.utils.batch_status import StartTaskReboots


class BatchPoolTrigger(BaseTrigger):
    """Poll a pool with the async Batch client until it is steady with enough usable nodes.

    Emits one event ``{"status": "ready"|"failed"|"timeout"|"error", "pool_id", "message",
    "usable_nodes"}``. Fatal resize errors (quota, image, VM size), start-task failures (with the tail
    of ``startup/stderr.txt``) and unusable nodes end the wait at once; ``AllocationTimedout`` on an
    autoscale pool keeps waiting until ``timeout_at`` (a UNIX timestamp).

    With ``max_start_task_reboots``, a node whose start task failed is rebooted up to that many times
    before the failure counts. ``start_task_reboots`` holds the reboots already made (by the operator's
    first check); the trigger adds its own in memory. The triggerer cannot store them, so a trigger
    resumed on another triggerer (or after a restart) starts again from the counts it was deferred
    with, and a node may get up to that many reboots more; the wait stays bounded by ``timeout_at``.
    """

    def __init__(
        self,
        pool_id: str,
        azbatch_conn_id: str = DEFAULT_CONN_ID,
        min_usable_nodes: int | None = None,
        poll_interval: float = 30.0,
        timeout_at: float | None = None,
        max_consecutive_errors: int = 3,
        carry: dict[str, Any] | None = None,
        max_start_task_reboots: int = 0,
        start_task_reboots: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        #: JSON data returned unchanged in the event, so the operator resumes with what it knew.
        self.carry = carry
        self.pool_id = pool_id
        self.azbatch_conn_id = azbatch_conn_id
        self.min_usable_nodes = min_usable_nodes
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.max_start_task_reboots = validate_start_task_reboots(max_start_task_reboots)
        self._reboots_json = start_task_reboots
        self._reboots: StartTaskReboots | None = None

    @property
    def reboots(self) -> StartTaskReboots:
        """Reboots made so far; serialize() includes them, so a re-created trigger knows them."""
        if self._reboots is None:
            from airflow_batch_provider.utils.batch_status import StartTaskReboots

            self._reboots = StartTaskReboots.from_json(self.max_start_task_reboots, self._reboots_json)
        return self._reboots

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pool_id": self.pool_id,
                "azbatch_conn_id": self.azbatch_conn_id,
                "min_usable_nodes": self.min_usable_nodes,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "max_consecutive_errors": self.max_consecutive_errors,
                "carry": self.carry,
                "max_start_task_reboots": self.max_start_task_reboots,
                "start_task_reboots": self._reboots_json
                if self._reboots is None
                else self._reboots.to_json(),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook, io = await prepare_batch_io(self.azbatch_conn_id)
        # Already imported by prepare_batch_io, off the event loop.
        from airflow_batch_provider.hooks._sdk_compat import error_message
        from airflow_batch_provider.utils.batch_status import check_pool

        last_message = None
        errors = 0
        try:
            while True:
                try:
                    verdict = await check_pool(io, self.pool_id, self.min_usable_nodes, reboots=self.reboots)
                    errors = 0
                except Exception as err:
                    errors += 1
                    if errors >= self.max_consecutive_errors:
                        yield TriggerEvent(
                            {
                                "carry": self.carry,
                                "status": "error",
                                "pool_id": self.pool_id,
                                "message": f"Could not read pool {self.pool_id!r}: "
                                f"{type(err).__name__}: {error_message(err)}",
                            }
                        )
                        return
                    self.log.warning("Reading pool %s failed (%s); will retry", self.pool_id, err)
                    await asyncio.sleep(self.poll_interval)
                    continue
                for line in verdict.reboot_messages:
                    self.log.warning("%s", line)
                if verdict.message != last_message:
                    self.log.info("%s", verdict.message)
                    last_message = verdict.message
                if verdict.status in ("ready", "failed"):
                    yield TriggerEvent(
                        {
                            "carry": self.carry,
                            "status": verdict.status,
                            "pool_id": self.pool_id,
                            "message": verdict.message,
                            "usable_nodes": verdict.usable_nodes,
                        }
                    )
                    return
                if self.timeout_at is not None and time.time() >= self.timeout_at:
                    yield TriggerEvent(
                        {
                            "carry": self.carry,
                            "status": "timeout",
                            "pool_id": self.pool_id,
                            "message": f"Pool {self.pool_id!r} was not ready in time. Last status: "
                            f"{verdict.message}",
                            "usable_nodes": verdict.usable_nodes,
                        }
                    )
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            await hook.aclose()
