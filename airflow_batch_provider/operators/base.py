"""What the provider's operators and sensors share: the connection ids, their hooks (created once), the
connection fields added to ``template_fields``, and saving portal links without ever failing a task."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator, conf

from airflow_batch_provider.batch.durations import to_seconds
from airflow_batch_provider.batch.ids import to_batch_id
from airflow_batch_provider.exceptions import BatchProviderError
from airflow_batch_provider.hooks.base import AZBATCH_DEFAULT_CONN_ID, AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchPortalLink

if TYPE_CHECKING:
    from airflow.triggers.base import BaseTrigger

    from airflow_batch_provider.hooks.blob import BlobStorageHook

#: Seconds a deferral's own timeout allows beyond the trigger's deadline, so the trigger reports first.
DEFERRAL_MARGIN = 60.0


def batch_template_fields(*fields: str, azbatch: bool = True, azblob: bool = False) -> tuple[str, ...]:
    """``fields`` plus the connection ids the operator uses, so they can be templated too."""
    connections = (("azbatch_conn_id",) if azbatch else ()) + (("azblob_conn_id",) if azblob else ())
    return (*fields, *(name for name in connections if name not in fields))


class BatchConnectionMixin:
    """The connection ids, the Batch hook, Blob hooks by connection id, and portal-link persistence.

    Mixed into operators and sensors, which set ``azbatch_conn_id`` (and ``azblob_conn_id`` when they
    use Blob Storage).
    """

    azbatch_conn_id: str = AZBATCH_DEFAULT_CONN_ID
    azblob_conn_id: str | None = AZBLOB_DEFAULT_CONN_ID
    log: Any

    if TYPE_CHECKING:  # BaseOperator's, for the mixin's own methods

        def defer(
            self,
            *,
            trigger: BaseTrigger,
            method_name: str,
            kwargs: dict[str, Any] | None = None,
            timeout: timedelta | float | None = None,
        ) -> NoReturn: ...

    @cached_property
    def hook(self) -> BatchHook:
        """The Batch hook of ``azbatch_conn_id``, created once per task."""
        return BatchHook(self.azbatch_conn_id)

    @cached_property
    def _blob_hooks(self) -> dict[str, Any]:
        return {}

    def blob_hook_for(self, conn_id: str | None = None) -> BlobStorageHook:
        """The Blob hook of ``conn_id`` (default ``azblob_conn_id``), created once per task."""
        conn_id = conn_id or self.azblob_conn_id or AZBLOB_DEFAULT_CONN_ID
        if conn_id not in self._blob_hooks:
            from airflow_batch_provider.hooks.blob import BlobStorageHook

            self._blob_hooks[conn_id] = BlobStorageHook(conn_id)
        return self._blob_hooks[conn_id]

    def defer_from_checkpoint(
        self, context: Any, event: dict[str, Any], trigger_class: type[BaseTrigger]
    ) -> NoReturn:
        """Defer again after a trigger's ``checkpoint`` event, with the arguments the event hands back.

        Airflow stores a deferred trigger's arguments in its database and a restarted triggerer
        re-creates the trigger from them, so the progress they now hold (start-task reboots made) is
        not lost. Where Airflow has a ``task_state_store`` (3.3+) the progress goes there too, for a
        retry. Raises ``TaskDeferred``.
        """
        store = context.get("task_state_store")
        if store is not None and event.get("progress"):
            store.set(str(event["state_key"]), event["progress"])
        kwargs = dict(event["trigger_kwargs"])
        timeout_at = kwargs.get("timeout_at")
        self.log.info("%s; waiting on", event.get("message"))
        self.defer(
            trigger=trigger_class(**kwargs),
            method_name="execute_complete",
            timeout=None
            if timeout_at is None
            else timedelta(seconds=max(0.0, float(timeout_at) - time.time()) + DEFERRAL_MARGIN),
        )

    def persist_link(self, link: type[BatchPortalLink], context: Any, resource_id: str) -> None:
        """Save the portal link of ``resource_id`` now (before any deferral); a link never fails a task."""
        try:
            link.persist(context, self.hook.settings, resource_id)
        except Exception as err:
            self.log.debug("Could not persist the %s link: %s", link.kind.rstrip("s"), err)


class BatchBaseOperator(BatchConnectionMixin, BaseOperator):
    """Base of the provider's Batch operators: takes ``azbatch_conn_id`` and ``azblob_conn_id``.

    :param azbatch_conn_id: The ``azbatch`` connection.
    :param azblob_conn_id: The ``azblob`` connection, for operators that use Blob Storage.
    """

    template_fields: Sequence[str] = batch_template_fields()

    def __init__(
        self,
        *,
        azbatch_conn_id: str = AZBATCH_DEFAULT_CONN_ID,
        azblob_conn_id: str | None = AZBLOB_DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.azbatch_conn_id = azbatch_conn_id
        self.azblob_conn_id = azblob_conn_id


class BatchCleanupBaseOperator(BatchBaseOperator):
    """Base of the terminate and delete operators: starts the cleanup, then waits (bounded, deferrable)
    until the job has ended or the resource is gone.

    :param wait_for_completion: Block until the cleanup is done.
    :param timeout: Longest wait, in seconds or a ``timedelta``; then the task fails.
    :param poll_interval: Time between two checks while waiting, in seconds or a ``timedelta``.
    :param deferrable: Wait in the triggerer and free the worker slot.
    """

    #: ``pool`` or ``job``.
    kind: str
    #: The hook's outcome after which there is something to wait for.
    started_outcome = "deleted"

    def __init__(
        self,
        *,
        wait_for_completion: bool = False,
        timeout: timedelta | float = timedelta(hours=1),
        poll_interval: timedelta | float = 5,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    def start_cleanup(self, resource_id: str, *, wait: bool, poll_interval: float, timeout: float) -> str:
        """Start (and, with ``wait``, finish) the cleanup; the hook's outcome."""
        raise NotImplementedError

    def cleanup_trigger(self, resource_id: str, **kwargs: Any) -> Any:
        """The trigger that waits for the cleanup in the triggerer."""
        from airflow_batch_provider.triggers.cleanup import BatchDeletionTrigger

        return BatchDeletionTrigger(kind=self.kind, resource_id=resource_id, **kwargs)  # type: ignore[arg-type]

    def execute(self, context: Any) -> dict[str, Any]:
        resource_id = to_batch_id(getattr(self, f"{self.kind}_id"), f"{self.kind}_id")
        poll_interval = to_seconds(self.poll_interval, "poll_interval")
        poll_interval = 5.0 if poll_interval is None else poll_interval
        timeout = to_seconds(self.timeout, "timeout") or 3600.0
        wait_here = self.wait_for_completion and not self.deferrable
        outcome = self.start_cleanup(
            resource_id, wait=wait_here, poll_interval=poll_interval, timeout=timeout
        )
        result = {f"{self.kind}_id": resource_id, "outcome": outcome}
        if (
            self.wait_for_completion
            and self.deferrable
            and outcome in (self.started_outcome, "being_deleted")
        ):
            self.log.info("Waiting in the triggerer for %s %s: %s", self.kind, resource_id, outcome)
            self.defer(
                trigger=self.cleanup_trigger(
                    resource_id,
                    azbatch_conn_id=self.azbatch_conn_id,
                    poll_interval=poll_interval,
                    timeout_at=time.time() + timeout,
                    resume_xcom=result,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=timeout + 60),
            )
        self.log.info("%s %s: %s", self.kind.capitalize(), resource_id, outcome.replace("_", " "))
        return result

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result once the trigger saw the cleanup done; a timeout or read error fails the task."""
        if not event:
            raise BatchProviderError(f"The {self.kind} cleanup trigger ended without an event.")
        if event.get("status") not in ("deleted", "terminated"):
            raise BatchProviderError(
                f"{event.get('message')} Raise timeout, or check the {self.kind} in the Azure portal."
            )
        result = dict(event.get("resume_xcom") or {})
        self.log.info("%s %s: %s", self.kind.capitalize(), event.get("resource_id"), event.get("status"))
        return result
