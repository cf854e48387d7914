"""Helpers to run DAGs and tests against a local Azure stack: Azurite and the Batch emulator.

A project's tests get the fixtures of :mod:`airflow_batch_provider.testing.pytest_plugin`
(``azurite``, ``batch_emulator``, ``local_azure_stack``) with one line in their ``conftest.py``:
``pytest_plugins = ["airflow_batch_provider.testing.pytest_plugin"]``.
"""

from airflow_batch_provider.testing.azurite import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, AzuriteServer
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from airflow_batch_provider.testing.stack import LocalAzureStack

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "AzuriteServer",
    "BatchEmulatorServer",
    "LocalAzureStack",
]
