"""Deprecated: moved to :mod:`airflow_batch_provider.batch.ids`; this alias will be removed."""

from __future__ import annotations

import warnings

from airflow_batch_provider.batch.ids import *  # noqa: F403
from airflow_batch_provider.batch.ids import __all__ as __all__

warnings.warn(
    "airflow_batch_provider.utils.ids moved to airflow_batch_provider.batch.ids.",
    DeprecationWarning,
    stacklevel=2,
)
