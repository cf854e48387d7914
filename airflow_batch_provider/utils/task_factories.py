"""Deprecated: moved to :mod:`airflow_batch_provider.batch.task_factories`; this alias will be removed."""

from __future__ import annotations

import warnings

from airflow_batch_provider.batch.task_factories import *  # noqa: F403
from airflow_batch_provider.batch.task_factories import __all__ as __all__

warnings.warn(
    "airflow_batch_provider.utils.task_factories moved to airflow_batch_provider.batch.task_factories.",
    DeprecationWarning,
    stacklevel=2,
)
