"""A stand-in for the Azure SDK repository's ``devtools_testutils``, for live runs against the emulator.

Only what azure-batch's tests import. Tests always run live (``is_live`` is true): there is no test
proxy, no recording and no sanitizing, so those hooks are no-ops. The resource preparers hand out
stand-ins for the Azure resources: a resource group is only a name, the storage account is the
emulator's Azurite auto-storage.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import emulated_account
from devtools_testutils.resource_testcase import RESOURCE_GROUP_PARAM

__all__ = [
    "AzureMgmtPreparer",
    "AzureMgmtRecordedTestCase",
    "AzureRecordedTestCase",
    "AzureTestError",
    "CachedResourceGroupPreparer",
    "EnvironmentVariableLoader",
    "FakeResource",
    "ResourceGroupPreparer",
    "StorageAccountPreparer",
    "add_general_regex_sanitizer",
    "recorded_by_proxy",
    "remove_batch_sanitizers",
    "set_custom_default_matcher",
]


class FakeResource(NamedTuple):
    name: str
    id: str


class AzureTestError(Exception):
    """A test's resources could not be prepared."""


class AzureRecordedTestCase:
    """The base of recorded tests; here every test is live."""

    @property
    def is_live(self) -> bool:
        return True

    def get_credential(self, client_class: type, **kwargs: Any) -> Any:
        """The emulated account's Shared Key credential (the service would take a token here)."""
        return emulated_account.current().credential


class AzureMgmtRecordedTestCase(AzureRecordedTestCase):
    """The base of tests that prepare management-plane resources."""


def _moniker(prefix: str, test_name: str, length: int) -> str:
    """A stable name for a test's resource: the prefix and a digest of the test's name."""
    digest = hashlib.sha256(test_name.encode("utf-8")).hexdigest()
    return (prefix + digest)[:length]


class AzureMgmtPreparer:
    """Create a resource before the test runs, pass it in as keyword arguments, remove it afterwards.

    Subclasses implement :meth:`create_resource` (returning the keyword arguments to add) and
    :meth:`remove_resource`. Works on ``async def`` tests, which is all azure-batch has.
    """

    def __init__(
        self,
        name_prefix: str = "",
        random_name_length: int = 24,
        disable_recording: bool = True,
        playback_fake_resource: Any = None,
        client_kwargs: dict[str, Any] | None = None,
        random_name_enabled: bool = False,
    ) -> None:
        self.name_prefix = name_prefix
        self.random_name_length = random_name_length
        self.client_kwargs = client_kwargs or {}
        self.resource_moniker = name_prefix
        self.moniker = name_prefix
        self.is_live = True

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return {}

    def remove_resource(self, name: str, **kwargs: Any) -> None:
        return None

    def __call__(self, test: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if not inspect.iscoroutinefunction(test):
            raise TypeError(f"{type(self).__name__} prepares async tests only; {test.__name__} is not one")

        @functools.wraps(test)
        async def prepared(*args: Any, **kwargs: Any) -> Any:
            name = _moniker(self.name_prefix, test.__qualname__, self.random_name_length)
            self.moniker = name
            resources = self.create_resource(name, **kwargs)
            try:
                return await test(*args, **{**kwargs, **resources})
            finally:
                self.remove_resource(name, **{**kwargs, **resources})

        return prepared

    def create_mgmt_client(self, client_class: type, **kwargs: Any) -> Any:
        raise AzureTestError(
            "the emulator serves the Batch data plane; create resources through azure.batch.BatchClient"
        )


class ResourceGroupPreparer(AzureMgmtPreparer):
    """A resource group: only a name, since nothing here needs Resource Manager."""

    def __init__(
        self,
        name_prefix: str = "rgpy",
        location: str = "westus",
        parameter_name: str = RESOURCE_GROUP_PARAM,
        **kwargs: Any,
    ) -> None:
        super().__init__(name_prefix, 24)
        self.location = location
        self.parameter_name = parameter_name

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        group = FakeResource(
            name=name, id=f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{name}"
        )
        return {self.parameter_name: group, f"{self.parameter_name}_location": self.location}


CachedResourceGroupPreparer = ResourceGroupPreparer


class StorageAccountPreparer(AzureMgmtPreparer):
    """The storage account: Azurite, which the emulator already uses as the account's auto-storage."""

    def __init__(
        self,
        name_prefix: str = "",
        location: str = "westus",
        parameter_name: str = "storage_account",
        **kwargs: Any,
    ) -> None:
        super().__init__(name_prefix, 24)
        self.location = location
        self.parameter_name = parameter_name

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        storage = emulated_account.current().storage
        account = FakeResource(name=storage.account_name, id=storage.blob_endpoint)
        return {
            self.parameter_name: account,
            f"{self.parameter_name}_key": storage.account_key,
            f"{self.parameter_name}_cs": storage.connection_string,
        }


class EnvironmentVariableLoader(AzureMgmtPreparer):
    """Pass each named setting from ``<DIRECTORY>_<NAME>`` in the environment, else the given default."""

    def __init__(
        self, directory: str, name_prefix: str = "", preparer_class: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(name_prefix, 24)
        self.directory = directory
        self.defaults = {key: value for key, value in kwargs.items() if isinstance(value, str)}

    def create_resource(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return {key: os.environ.get(key.upper(), default) for key, default in self.defaults.items()}


def recorded_by_proxy(test: Callable[..., Any]) -> Callable[..., Any]:
    """Recording is off: the test runs live as it is."""
    return test


def set_custom_default_matcher(**kwargs: Any) -> None:
    """Matchers compare recordings; nothing is recorded."""


def add_general_regex_sanitizer(**kwargs: Any) -> None:
    """Sanitizers scrub recordings; nothing is recorded."""


def remove_batch_sanitizers(sanitizer_ids: list[str], **kwargs: Any) -> None:
    """Sanitizers scrub recordings; nothing is recorded."""
