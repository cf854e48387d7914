"""The base of the provider's triggers: the connection, the polling settings, their serialization, and
a ``run()`` loop on :func:`~airflow_batch_provider.batch.monitor.polling.apoll_until`."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batch_provider.batch.monitor.polling import PollPolicy, apoll_until
from airflow_batch_provider.triggers._off_loop import DEFAULT_CONN_ID, prepare_batch_io
from airflow_batch_provider.triggers.wait_state import (
    WaitStateStore,
    load_state,
    save_state,
    wait_progress_key,
)

if TYPE_CHECKING:  # the triggerer imports triggers on its event loop: the SDK comes later, off it
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO

V = TypeVar("V")


class BatchPollingTrigger(BaseTrigger, Generic[V]):
    """Polls a Batch resource with the async client until a check says it is done, ``timeout_at`` (a
    UNIX timestamp) passes, or ``max_consecutive_errors`` reads in a row fail; then emits one event.

    A subclass names its own fields (:meth:`serialize_fields`), runs one check (:meth:`check`), says
    when it is done (:meth:`is_done`) and turns each ending into an event.

    With a :attr:`state_store` attached (an object with ``task_state_store``'s ``get``/``set``), the
    progress a subclass names in :meth:`progress` is saved after every poll that changed it and
    restored (:meth:`resume_from`) when a re-created trigger starts, so a triggerer restart loses none.

    :param azbatch_conn_id: The ``azbatch`` connection.
    :param poll_interval: Seconds between two checks.
    :param timeout_at: When to give up (UNIX timestamp); ``None`` waits without a deadline.
    :param max_consecutive_errors: Failed reads in a row that end the wait with an ``error`` event.
    """

    def __init__(
        self,
        *,
        azbatch_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 30.0,
        timeout_at: float | None = None,
        max_consecutive_errors: int = 3,
    ) -> None:
        super().__init__()
        self.azbatch_conn_id = azbatch_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at
        self.max_consecutive_errors = int(max_consecutive_errors)
        #: Keeps the wait's progress across triggerer restarts; attached by the runtime, not serialized.
        self.state_store: WaitStateStore | None = None
        self._saved: dict[str, Any] | None = None

    # -- what a subclass provides ---------------------------------------------------------------------

    @abstractmethod
    def serialize_fields(self) -> dict[str, Any]:
        """The subclass's own constructor arguments, as JSON."""

    @property
    @abstractmethod
    def resource(self) -> str:
        """What is polled, for messages (``job 'etl-1'``)."""

    @abstractmethod
    async def check(self, io: AsyncBatchIO) -> V:
        """One poll."""

    @abstractmethod
    def is_done(self, value: V) -> bool:
        """Whether ``value`` ends the wait."""

    def on_value(self, value: V) -> None:
        """Called with every successful poll (to log progress)."""

    @abstractmethod
    def done_event(self, value: V) -> dict[str, Any]: ...

    @abstractmethod
    def timeout_event(self, value: V) -> dict[str, Any]: ...

    @abstractmethod
    def error_event(self, message: str, last: V | None) -> dict[str, Any]: ...

    def progress(self) -> dict[str, Any] | None:
        """The progress worth keeping across a restart (JSON), or ``None`` for none."""
        return None

    def resume_from(self, progress: dict[str, Any]) -> None:
        """Go on from progress saved by an earlier incarnation of this trigger."""

    # -- shared ---------------------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        """The state store key of this wait's progress."""
        return wait_progress_key(self.resource)

    async def _check_and_save(self, io: AsyncBatchIO) -> V:
        value = await self.check(io)
        progress = self.progress()
        if self.state_store is not None and progress is not None and progress != self._saved:
            try:
                await save_state(self.state_store, self.state_key, progress)
                self._saved = progress
            except Exception as err:  # keeping progress is a courtesy: it never fails the wait
                self.log.warning("Could not save the wait's progress: %s", err)
        return value

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.serialize_fields(),
                "azbatch_conn_id": self.azbatch_conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook, io = await prepare_batch_io(self.azbatch_conn_id)
        policy = PollPolicy(self.poll_interval, self.timeout_at, self.max_consecutive_errors)
        if self.state_store is not None:
            saved = await load_state(self.state_store, self.state_key)
            if saved:
                self.log.info("Going on from the saved progress of %s", self.resource)
                self.resume_from(saved)
                self._saved = saved
        try:
            result = await apoll_until(
                lambda: self._check_and_save(io),
                self.is_done,
                policy,
                what=self.resource,
                on_value=self.on_value,
                logger=self.log,
            )
        finally:
            await hook.aclose()
        if result.outcome == "done" and result.value is not None:
            yield TriggerEvent(self.done_event(result.value))
        elif result.outcome == "timeout" and result.value is not None:
            yield TriggerEvent(self.timeout_event(result.value))
        else:
            from airflow_batch_provider.batch.service_errors import error_message

            err = result.error
            detail = f"{type(err).__name__}: {error_message(err)}" if err else "no answer"
            yield TriggerEvent(self.error_event(f"Could not read {self.resource}: {detail}", result.value))
