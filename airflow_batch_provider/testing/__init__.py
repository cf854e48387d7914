"""Helpers to run DAGs and tests against a local Azure stack: Azurite and the Batch emulator.

The pytest plugin in :mod:`airflow_batch_provider.testing.pytest_plugin` is registered automatically
when the provider is installed, so its fixtures (``azurite``, ``batch_emulator``,
``local_azure_stack``) are available in any project's tests.
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
