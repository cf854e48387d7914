"""Every argument of every public class has a ``:param <name>:`` line in its docstring (or a base's)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import airflow_batch_provider.hooks
from airflow_batch_provider.get_provider_info import get_provider_info

PACKAGE = "airflow_batch_provider"


def _public_modules() -> list[str]:
    """The modules ``get_provider_info`` lists (operators, sensors, triggers, hooks) and all of ``hooks/``."""
    info = get_provider_info()
    listed = {
        module
        for kind in ("operators", "sensors", "triggers", "hooks")
        for entry in info[kind]
        for module in entry["python-modules"]
    }
    hooks = airflow_batch_provider.hooks
    listed |= {
        found.name
        for found in pkgutil.walk_packages(hooks.__path__, f"{hooks.__name__}.")
        if not any(part.startswith("_") for part in found.name.split("."))
    }
    return sorted(listed)


def _public_classes() -> list[type]:
    classes = []
    for name in _public_modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == name
                and not attribute.startswith("_")
                and not issubclass(value, BaseException)
            ):
                classes.append(value)
    return classes


def _undocumented(cls: type) -> list[str]:
    docs = "\n".join(
        inspect.getdoc(base) or "" for base in cls.__mro__ if base.__module__.startswith(PACKAGE)
    )
    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    deprecated = getattr(cls.__init__, "deprecated_arguments", {})  # type: ignore[misc]
    return [
        parameter.name
        for parameter in parameters
        if parameter.name != "self"
        and parameter.name not in deprecated
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        and f":param {parameter.name}:" not in docs
    ]


def test_the_walk_finds_the_public_classes() -> None:
    names = {cls.__name__ for cls in _public_classes()}
    expected = {
        "BatchCreatePoolOperator",
        "BatchJobSensor",
        "BatchPoolTrigger",
        "BatchHook",
        "BlobStorageHook",
    }
    assert expected <= names


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda cls: cls.__qualname__)
def test_every_argument_has_a_param_doc(cls: type) -> None:
    assert _undocumented(cls) == [], f"{cls.__module__}.{cls.__qualname__}: add :param <name>: lines"
