"""The provider registers with Airflow, and everything its metadata names can be imported."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink
from airflow.triggers.base import BaseTrigger

from airflow_batch_provider.get_provider_info import get_provider_info

INFO = get_provider_info()


def _import(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _modules(section: str) -> list[str]:
    return [module for entry in INFO[section] for module in entry["python-modules"]]


@pytest.mark.parametrize(
    ("section", "base"),
    [("operators", BaseOperator), ("sensors", BaseOperator), ("hooks", BaseHook), ("triggers", BaseTrigger)],
)
def test_every_listed_module_defines_public_classes_of_its_kind(section: str, base: type) -> None:
    for module_name in _modules(section):
        module = importlib.import_module(module_name)
        own = [
            obj
            for name, obj in vars(module).items()
            if inspect.isclass(obj) and obj.__module__ == module_name and not name.startswith("_")
        ]
        kinds = [cls for cls in own if issubclass(cls, base) and not inspect.isabstract(cls)]
        assert kinds, f"{module_name} is listed under {section} but defines no {base.__name__}"
        for cls in kinds:
            assert cls.__doc__, f"{cls.__qualname__} needs a docstring saying what the user gets"


def test_connection_types_point_at_hooks_that_declare_them() -> None:
    declared = {entry["connection-type"]: entry for entry in INFO["connection-types"]}
    assert set(declared) == {"azbatch", "azblob"}, "must not collide with the Microsoft provider's types"
    for conn_type, entry in declared.items():
        hook = _import(entry["hook-class-name"])
        assert issubclass(hook, BaseHook)
        assert hook.conn_type == conn_type
        assert hook.default_conn_name == f"{conn_type}_default"
        secret_fields = {
            name for name, spec in entry["conn-fields"].items() if spec["schema"].get("format") == "password"
        }
        assert "client_secret" in secret_fields


def test_connection_forms_offer_only_the_auth_modes_of_their_service_and_no_null() -> None:
    declared = {entry["connection-type"]: entry["conn-fields"] for entry in INFO["connection-types"]}
    batch_modes = declared["azbatch"]["auth_type"]["schema"]["enum"]
    blob_modes = declared["azblob"]["auth_type"]["schema"]["enum"]
    assert None not in batch_modes and None not in blob_modes
    assert "connection_string" not in batch_modes and "sas_token" not in batch_modes
    assert "connection_string" not in declared["azbatch"] and "sas_token" not in declared["azbatch"]
    assert {"shared_key", "service_principal", "managed_identity"} <= set(batch_modes)
    assert {"connection_string", "sas_token"} <= set(blob_modes)
    assert "connection_string" not in declared["azbatch"]["auth_type"]["description"]


def test_extra_links_are_operator_links() -> None:
    for dotted in INFO["extra-links"]:
        assert issubclass(_import(dotted), BaseOperatorLink)


def test_airflow_cli_lists_the_provider_and_its_hooks(tmp_path: Path) -> None:
    # Unit-test mode makes Airflow print a log line before the JSON; a user's shell has it off.
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    airflow = [sys.executable, "-m", "airflow"]
    providers = subprocess.run(
        [*airflow, "providers", "list", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    packages = {row["package_name"] for row in json.loads(providers.stdout)}
    assert "airflow-batch-provider" in packages

    hooks = subprocess.run(
        [*airflow, "providers", "hooks", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    by_type = {row["connection_type"]: row for row in json.loads(hooks.stdout)}
    assert by_type["azbatch"]["class"] == "airflow_batch_provider.hooks.batch.BatchHook"
    assert by_type["azblob"]["class"] == "airflow_batch_provider.hooks.blob.BlobStorageHook"


def test_config_options_are_published_from_the_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_batch_provider.config import OPTIONS, conf_flag, conf_number

    published = INFO["config"]["azure_batch_provider"]["options"]
    assert set(published) == set(OPTIONS)
    for key, option in OPTIONS.items():
        assert published[key]["type"] == option.type and published[key]["description"]
        if option.type in ("integer", "float"):
            assert conf_number(key) == option.default
            assert float(published[key]["default"]) == option.default
    monkeypatch.setenv("AIRFLOW__AZURE_BATCH_PROVIDER__BLOB_RETRY_JITTER", "0.5")
    monkeypatch.setenv("AIRFLOW__AZURE_BATCH_PROVIDER__RETRY_TOTAL", "not a number")
    monkeypatch.setenv("AIRFLOW__AZURE_BATCH_PROVIDER__HTTP_LOGGING", "True")
    assert conf_number("blob_retry_jitter") == 0.5
    assert conf_number("retry_total") == OPTIONS["retry_total"].default  # a bad value is ignored
    assert conf_flag("http_logging") is True
