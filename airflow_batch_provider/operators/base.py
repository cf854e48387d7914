"""What the provider's operators and sensors share: the connection ids, their hooks (created once), the
connection fields added to ``template_fields``, and saving portal links without ever failing a task."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_batch_provider.hooks.base import AZBATCH_DEFAULT_CONN_ID, AZBLOB_DEFAULT_CONN_ID
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.links.portal import BatchPortalLink

if TYPE_CHECKING:
    from airflow_batch_provider.hooks.blob import BlobStorageHook


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
