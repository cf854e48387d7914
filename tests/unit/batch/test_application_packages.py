"""Client-side application package helpers: deterministic zips, name rules, variable names, validation.

Nothing talks to Azure here; the management hook is only configured, never asked for a token.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from airflow.models.connection import Connection

from airflow_batch_provider.batch.application_packages import (
    build_deterministic_zip,
    existing_zip,
    package_reference,
    validate_application_id,
    validate_version,
)
from airflow_batch_provider.batch.node_environment import linux_variable_name
from airflow_batch_provider.exceptions import ConnectionConfigError, InvalidInputError
from airflow_batch_provider.hooks.batch_management import DEFAULT_MANAGEMENT_ENDPOINT, BatchManagementHook
from airflow_batch_provider.operators.application import BatchPublishApplicationPackageOperator


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "run.sh").chmod(0o750)
    (root / "data").mkdir()
    (root / "data" / "b.txt").write_text("b")
    (root / "data" / "a.txt").write_text("a")
    (root / "README").write_text("readme")
    return root


def test_same_content_gives_the_same_bytes(tmp_path: Path) -> None:
    first = build_deterministic_zip(_tree(tmp_path / "one"), tmp_path / "one.zip")
    second_dir = _tree(tmp_path / "two")
    # Different timestamps and a different (but still executable) mode must not matter.
    for path in second_dir.rglob("*"):
        os.utime(path, (time.time() - 86400 * 400, time.time() - 86400 * 400))
    (second_dir / "bin" / "run.sh").chmod(0o700)
    second = build_deterministic_zip(second_dir, tmp_path / "two.zip")
    assert first.sha256 == second.sha256
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_different_content_gives_a_different_hash(tmp_path: Path) -> None:
    first = build_deterministic_zip(_tree(tmp_path / "one"), tmp_path / "one.zip")
    changed = _tree(tmp_path / "two")
    (changed / "data" / "a.txt").write_text("A")
    assert build_deterministic_zip(changed, tmp_path / "two.zip").sha256 != first.sha256


def test_zip_layout_is_sorted_with_fixed_times_and_modes(tmp_path: Path) -> None:
    package = build_deterministic_zip(_tree(tmp_path / "src"), tmp_path / "p.zip")
    with zipfile.ZipFile(package.path) as archive:
        infos = archive.infolist()
        assert [info.filename for info in infos] == [
            "README",
            "bin/",
            "bin/run.sh",
            "data/",
            "data/a.txt",
            "data/b.txt",
        ]
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in infos}
        assert modes["bin/run.sh"] == 0o755
        assert modes["README"] == 0o644
        assert archive.read("bin/run.sh") == b"#!/bin/sh\necho hi\n"
    assert package.size == package.path.stat().st_size


def test_existing_zip_is_taken_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "given.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x", "y")
    assert existing_zip(path).path == path
    (tmp_path / "not.zip").write_text("plain text")
    with pytest.raises(InvalidInputError, match="is not a zip archive"):
        existing_zip(tmp_path / "not.zip")


@pytest.mark.parametrize("value", ["tool", "My_Tool-2", "a" * 64])
def test_valid_application_ids(value: str) -> None:
    assert validate_application_id(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        ("a" * 65, "65 characters long"),
        ("my.tool", "contains '.'"),
        ("my tool/x", "contains ' /'"),
    ],
)
def test_invalid_application_ids(value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_application_id(value)


@pytest.mark.parametrize("value", ["1", "1.0.2", "v2_rc-1", "_1.x"])
def test_valid_versions(value: str) -> None:
    assert validate_version(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be a non-empty string"),
        (".1", "starts with a period"),
        ("1+build", r"contains '\+'"),
        ("1" * 65, "65 characters long"),
    ],
)
def test_invalid_versions(value: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_version(value)


def test_variable_names_follow_the_documented_linux_rule() -> None:
    assert linux_variable_name("blender", "2.7") == "AZ_BATCH_APP_PACKAGE_blender_2_7"
    assert linux_variable_name("my-tool", "1.0-rc") == "AZ_BATCH_APP_PACKAGE_my_tool_1_0_rc"
    assert linux_variable_name("blender") == "AZ_BATCH_APP_PACKAGE_blender"
    assert package_reference("blender", "2.7") == {"applicationId": "blender", "version": "2.7"}


# -- the operator validates before any call --------------------------------------------------------------


def _operator(**kwargs: Any) -> BatchPublishApplicationPackageOperator:
    options: dict[str, Any] = {
        "task_id": "publish",
        "application_id": "tool",
        "version": "1.0",
        "source": ".",
    }
    options.update(kwargs)
    return BatchPublishApplicationPackageOperator(**options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"application_id": "bad id"}, "application names may only contain"),
        ({"version": ".1"}, "starts with a period"),
        ({"source": "/definitely/not/here"}, "does not exist"),
    ],
)
def test_operator_rejects_bad_input_before_connecting(
    kwargs: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hook(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the hook must not be created for invalid input")

    monkeypatch.setattr("airflow_batch_provider.operators.application.BatchManagementHook", no_hook)
    with pytest.raises(InvalidInputError, match=message):
        _operator(**kwargs).execute({})


def test_operator_rejects_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is empty"):
        _operator(source=str(tmp_path)).execute({})


def test_operator_templated_fields() -> None:
    assert {"application_id", "version", "source", "display_name"} <= set(
        BatchPublishApplicationPackageOperator.template_fields
    )


# -- the management hook's configuration ----------------------------------------------------------------


def _connection_env(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "azbatch", **fields}))


def test_shared_key_connections_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection_env(
        monkeypatch,
        "arm_key",
        host="https://acct.westeurope.batch.azure.com",
        login="acct",
        password="a2V5",
        extra={"subscription_id": "sub", "resource_group": "rg"},
    )
    with pytest.raises(ConnectionConfigError, match="managed through ARM, which needs Entra ID"):
        BatchManagementHook("arm_key").get_credential()


def test_endpoint_scope_and_account_come_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection_env(
        monkeypatch,
        "arm_sp",
        host="https://acct.westeurope.batch.azure.com",
        login="acct",
        extra={
            "tenant_id": "t",
            "client_id": "c",
            "client_secret": "s",
            "subscription_id": "sub",
            "resource_group": "rg",
            "management_endpoint": "https://management.usgovcloudapi.net/",
        },
    )
    hook = BatchManagementHook("arm_sp")
    assert hook.management_endpoint == "https://management.usgovcloudapi.net"
    assert hook.credential_scope == "https://management.usgovcloudapi.net/.default"
    assert (hook.subscription_id, hook.resource_group, hook.account_name) == ("sub", "rg", "acct")
    assert type(hook.get_credential()).__name__ == "ClientSecretCredential"
    assert hook.client._config.credential_scopes == ["https://management.usgovcloudapi.net/.default"]


def test_default_endpoint_and_missing_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    _connection_env(monkeypatch, "arm_bare", host="https://acct.westeurope.batch.azure.com", login="acct")
    hook = BatchManagementHook("arm_bare")
    assert hook.management_endpoint == DEFAULT_MANAGEMENT_ENDPOINT
    with pytest.raises(ConnectionConfigError, match="Set the extra 'subscription_id'"):
        _ = hook.subscription_id
    with pytest.raises(ConnectionConfigError, match="Set the extra 'resource_group'"):
        _ = hook.resource_group


def test_connection_object_round_trip() -> None:
    # The connection type's UI fields include the management extras.
    from airflow_batch_provider.get_provider_info import get_provider_info

    batch = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == "azbatch")
    assert {"management_endpoint", "management_ca_bundle", "subscription_id", "resource_group"} <= set(
        batch["conn-fields"]
    )
    assert Connection(conn_id="x", conn_type="azbatch").conn_type == "azbatch"
