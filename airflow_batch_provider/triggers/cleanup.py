"""Triggers that wait, in the triggerer, for a cleanup: a deleted pool or job gone, a terminated job ended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from airflow_batch_provider.triggers._base import BatchPollingTrigger
from airflow_batch_provider.triggers._off_loop import DEFAULT_CONN_ID

if TYPE_CHECKING:  # the triggerer imports this module on its event loop: the SDK comes later, off it
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO

DeletedKind = Literal["pool", "job"]


class BatchDeletionTrigger(BatchPollingTrigger[bool]):
    """Poll a pool or job that is being deleted until the service no longer knows it.

    Emits one event ``{"status": "deleted"|"timeout"|"error", "kind", "resource_id", "message",
    "resume_xcom"}``.

    :param kind: ``pool`` or ``job``.
    :param resource_id: The pool or job id.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param poll_interval: Seconds between two polls.
    :param timeout_at: When to give up (UNIX timestamp); ``None`` waits without a deadline.
    :param max_consecutive_errors: Failed reads in a row that end the wait with an ``error`` event.
    :param resume_xcom: JSON returned unchanged in the event, so the operator resumes with what it knew.
    """

    def __init__(
        self,
        kind: DeletedKind,
        resource_id: str,
        azbatch_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 5.0,
        timeout_at: float | None = None,
        max_consecutive_errors: int = 3,
        resume_xcom: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            azbatch_conn_id=azbatch_conn_id,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_consecutive_errors=max_consecutive_errors,
        )
        if kind not in ("pool", "job"):
            raise ValueError(f"kind must be 'pool' or 'job', got {kind!r}.")
        self.kind = kind
        self.resource_id = resource_id
        self.resume_xcom = resume_xcom

    def serialize_fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "resource_id": self.resource_id, "resume_xcom": self.resume_xcom}

    @property
    def resource(self) -> str:
        return f"{self.kind} {self.resource_id!r}"

    async def check(self, io: AsyncBatchIO) -> bool:
        """Whether the resource is gone."""
        get = io.get_pool if self.kind == "pool" else io.get_job
        return await get(self.resource_id, select=["id"]) is None

    def is_done(self, value: bool) -> bool:
        return value

    def _event(self, status: str, message: str) -> dict[str, Any]:
        return {
            "status": status,
            "kind": self.kind,
            "resource_id": self.resource_id,
            "message": message,
            "resume_xcom": self.resume_xcom,
        }

    def done_event(self, value: bool) -> dict[str, Any]:
        return self._event("deleted", f"The {self.resource} is deleted.")

    def timeout_event(self, value: bool) -> dict[str, Any]:
        return self._event("timeout", f"The {self.resource} was still being deleted at the timeout.")

    def error_event(self, message: str, last: bool | None) -> dict[str, Any]:
        return self._event("error", message)


class BatchJobTerminationTrigger(BatchDeletionTrigger):
    """Poll a job being terminated until it has ended (``completed``) or is gone.

    Emits one event ``{"status": "terminated"|"timeout"|"error", "kind", "resource_id", "message",
    "resume_xcom"}``.

    :param job_id: The job id.
    :param azbatch_conn_id: The ``azbatch`` connection.
    :param poll_interval: Seconds between two polls.
    :param timeout_at: When to give up (UNIX timestamp); ``None`` waits without a deadline.
    :param max_consecutive_errors: Failed reads in a row that end the wait with an ``error`` event.
    :param resume_xcom: JSON returned unchanged in the event, so the operator resumes with what it knew.
    """

    def __init__(
        self,
        job_id: str,
        azbatch_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 5.0,
        timeout_at: float | None = None,
        max_consecutive_errors: int = 3,
        resume_xcom: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            "job",
            job_id,
            azbatch_conn_id=azbatch_conn_id,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_consecutive_errors=max_consecutive_errors,
            resume_xcom=resume_xcom,
        )

    def serialize_fields(self) -> dict[str, Any]:
        return {"job_id": self.resource_id, "resume_xcom": self.resume_xcom}

    async def check(self, io: AsyncBatchIO) -> bool:
        """Whether the job has ended (or is gone)."""
        job = await io.get_job(self.resource_id, select=["id", "state"])
        return job is None or str(job.get("state", "")).lower() == "completed"

    def done_event(self, value: bool) -> dict[str, Any]:
        return self._event("terminated", f"The {self.resource} has ended.")

    def timeout_event(self, value: bool) -> dict[str, Any]:
        return self._event("timeout", f"The {self.resource} was still terminating at the timeout.")
