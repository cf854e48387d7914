"""Which resources an emulated Batch account holds: one backend per kind, in one table.

A kind's backend owns its resources and the service's rules for them (``models/<module>.py``);
routes reach it as ``account.<attribute>``. To emulate a new kind of resource, write its backend,
add it to :data:`RESOURCE_KINDS` and annotate the attribute on
:class:`~airflow_batch_provider.emulator.models.account.BatchAccount`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_batch_provider.emulator.models.job_schedules import JobScheduleBackend
from airflow_batch_provider.emulator.models.jobs import JobBackend
from airflow_batch_provider.emulator.models.nodes import NodeBackend
from airflow_batch_provider.emulator.models.pools import PoolBackend
from airflow_batch_provider.emulator.models.tasks import TaskBackend

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.account import BatchAccount


@dataclass(frozen=True)
class ResourceKind:
    """One kind of resource: the account attribute that holds its backend, and the backend's class."""

    attribute: str
    backend: type[Any]


#: Every kind of resource the account holds (application packages come from the account's
#: :class:`~airflow_batch_provider.emulator.models.applications.ApplicationCatalog` instead).
RESOURCE_KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("pools", PoolBackend),
    ResourceKind("nodes", NodeBackend),
    ResourceKind("jobs", JobBackend),
    ResourceKind("tasks", TaskBackend),
    ResourceKind("job_schedules", JobScheduleBackend),
)


def create_backends(account: BatchAccount) -> dict[str, Any]:
    """A fresh, empty backend of every kind for ``account``, by attribute name."""
    return {kind.attribute: kind.backend(account) for kind in RESOURCE_KINDS}
