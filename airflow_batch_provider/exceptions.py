"""Exceptions raised by the Azure Batch provider.

Every error names what is wrong and how to fix it. They all derive from Airflow's ``AirflowException``
so Airflow treats them as ordinary task failures, and from :class:`ValueError` where the cause is bad
input that no retry can fix.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class BatchProviderError(AirflowException):
    """Base class of every error this provider raises on purpose."""


class ConnectionConfigError(BatchProviderError, ValueError):
    """An Airflow connection is missing fields, or its fields contradict each other."""


class InvalidInputError(BatchProviderError, ValueError):
    """An operator argument is invalid; raised before any cloud resource is touched."""


class AzureAuthenticationError(BatchProviderError):
    """Azure rejected the credentials of a connection."""


class BatchPoolNotReadyError(BatchProviderError):
    """The pool cannot become ready: quota, image or VM size error, start task failure, unusable nodes."""


class BatchTaskFailureError(BatchProviderError):
    """Batch tasks completed with a failure (non-zero exit code, or a failure info)."""


class BatchRequeueBudgetError(BatchProviderError):
    """A watched task was requeued (Spot preemption, node loss) more often than ``max_task_requeues``."""


class BatchJobEndedError(BatchProviderError):
    """The job ended (terminated, deleted) before its tasks completed."""


class ApplicationPackageConflictError(BatchProviderError):
    """A version already holds different content and overwriting was not asked for (or is not allowed)."""
