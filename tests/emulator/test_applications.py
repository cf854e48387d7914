"""Application packages served from a local directory: listing, validation, extraction on nodes."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import error_of, pool_options, sh, unique, wait_for_idle_nodes, wait_for_task


def _package(root: Path, application: str, version: str, text: str) -> None:
    directory = root / application
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(directory / f"{version}.zip", "w") as archive:
        archive.writestr("hello.txt", text)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchClient]:
    root = tmp_path_factory.mktemp("applications")
    _package(root, "tool", "1.0", "tool one")
    _package(root, "multi", "1", "multi one")
    _package(root, "multi", "2", "multi two")
    (root / "multi" / "default").write_text("2")
    with BatchEmulatorServer(applications_dir=root) as server:
        yield BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key))


def test_applications_are_listed(app_client: BatchClient) -> None:
    applications = {app.id: app.versions for app in app_client.list_applications()}
    assert applications == {"multi": ["1", "2"], "tool": ["1.0"]}
    assert app_client.get_application("TOOL").versions == ["1.0"]
    with pytest.raises(ResourceNotFoundError) as excinfo:
        app_client.get_application("nothing")
    assert error_of(excinfo) == (404, "ApplicationNotFound")


def test_packages_reach_tasks(app_client: BatchClient) -> None:
    pool_id, job_id = unique("pool"), unique("job")
    app_client.create_pool(
        pool_options(
            pool_id,
            application_package_references=[m.BatchApplicationPackageReference(application_id="tool")],
        )
    )
    wait_for_idle_nodes(app_client, pool_id, 1)
    app_client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    script = 'cat "$AZ_BATCH_APP_PACKAGE_tool/hello.txt"; echo; cat "$AZ_BATCH_APP_PACKAGE_multi_1/hello.txt"'
    app_client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="uses",
            command_line=sh(script),
            application_package_references=[
                m.BatchApplicationPackageReference(application_id="multi", version="1")
            ],
        ),
    )
    task = wait_for_task(app_client, job_id, "uses")
    assert task.execution_info.result == "success", task.execution_info
    assert b"".join(app_client.download_task_file(job_id, "uses", "stdout.txt")) == b"tool one\nmulti one"


@pytest.mark.parametrize(
    "reference",
    [
        m.BatchApplicationPackageReference(application_id="nothing"),
        m.BatchApplicationPackageReference(application_id="tool", version="9.9"),
    ],
)
def test_unknown_packages_are_refused(
    app_client: BatchClient, reference: m.BatchApplicationPackageReference
) -> None:
    job_id = unique("job")
    app_client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="p")))
    with pytest.raises(HttpResponseError) as excinfo:
        app_client.create_task(
            job_id,
            m.BatchTaskCreateOptions(id="t", command_line="true", application_package_references=[reference]),
        )
    assert error_of(excinfo) == (409, "InvalidApplicationPackageReferences")
    with pytest.raises(HttpResponseError) as excinfo:
        app_client.create_pool(pool_options(unique("pool"), application_package_references=[reference]))
    assert error_of(excinfo) == (409, "InvalidApplicationPackageReferences")
