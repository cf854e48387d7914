"""Azure portal links for the pools and jobs a task works on.

The URL is built from the ``azbatch`` connection's optional ``subscription_id`` and ``resource_group``
extras and the account name, and pushed to XCom under the link's key as soon as the resource id is
known, before any deferral, so the button survives deferrable mode and task failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

    from airflow_batch_provider.hooks.credentials import AzureConnectionSettings

PORTAL = "https://portal.azure.com/#resource"


def portal_url(settings: AzureConnectionSettings, kind: str, resource_id: str) -> str | None:
    """The portal URL of a pool or job (``kind`` is ``pools`` or ``jobs``), or ``None`` without the extras."""
    extras = settings.extras or {}
    subscription = extras.get("subscription_id")
    group = extras.get("resource_group")
    account = settings.resolved_account_name
    if not (subscription and group and account and resource_id):
        return None
    return (
        f"{PORTAL}/subscriptions/{quote(str(subscription))}/resourceGroups/{quote(str(group))}"
        f"/providers/Microsoft.Batch/batchAccounts/{quote(account)}/{kind}/{quote(resource_id)}"
    )


class BatchPortalLink(BaseOperatorLink):
    """A link to a Batch resource in the Azure portal, saved to XCom when the task runs."""

    kind: ClassVar[str] = ""

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return value if isinstance(value, str) else ""

    @classmethod
    def persist(cls, context: Any, settings: AzureConnectionSettings, resource_id: str) -> str | None:
        """Push the link to XCom now (call before deferring); returns the URL, or ``None`` without extras."""
        url = portal_url(settings, cls.kind, resource_id)
        # Pushed even when empty, so the link lookup at the end of the task finds a value.
        context["ti"].xcom_push(key=cls().xcom_key, value=url or "")
        return url


class BatchPoolLink(BatchPortalLink):
    """Link to the Batch pool in the Azure portal."""

    name = "Azure Batch pool"
    kind = "pools"


class BatchJobLink(BatchPortalLink):
    """Link to the Batch job in the Azure portal."""

    name = "Azure Batch job"
    kind = "jobs"
