"""Deprecated: moved to :mod:`airflow_batch_provider.batch.durations`; this alias will be removed."""

from __future__ import annotations

import warnings

from airflow_batch_provider.batch.durations import *  # noqa: F403
from airflow_batch_provider.batch.durations import __all__ as __all__

warnings.warn(
    "airflow_batch_provider.utils.durations moved to airflow_batch_provider.batch.durations.",
    DeprecationWarning,
    stacklevel=2,
)
