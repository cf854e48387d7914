"""Deprecated: moved to :mod:`airflow_batch_provider.batch.node_environment`; this alias will be removed."""

from __future__ import annotations

import warnings

from airflow_batch_provider.batch.node_environment import *  # noqa: F403
from airflow_batch_provider.batch.node_environment import __all__ as __all__

warnings.warn(
    "airflow_batch_provider.utils.node_environment moved to airflow_batch_provider.batch.node_environment.",
    DeprecationWarning,
    stacklevel=2,
)
