"""The emulated Resource Manager endpoint for Batch applications, driven by the real azure-mgmt-batch client.

The only stand-in is the Entra ID credential: it signs tokens with the emulator's issuer directly
instead of asking the token endpoint (that round trip is tested in the application-package
integration tests). Everything else is real: HTTPS with the emulator's generated CA, Azurite for the
package blobs, azure-storage-blob for the upload.
"""

from __future__ import annotations

import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as mm
from azure.storage.blob import BlobClient

from airflow_batch_provider.emulator.identity import TokenIssuer
from airflow_batch_provider.emulator.management.app import create_management_app
from airflow_batch_provider.emulator.management.models import ApplicationBackend, PackageReferenceError
from airflow_batch_provider.emulator.management.server import management_config, tls_files
from airflow_batch_provider.emulator.management.tls import ensure_tls_files
from airflow_batch_provider.testing.azurite import AzuriteServer
from airflow_batch_provider.testing.lifecycle import free_port
from tests.support.tokens import IssuedTokenCredential

ACCOUNT = "devbatchaccount1"
RG = "rg"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


#: Signs the tokens the test endpoint accepts.
ISSUER = TokenIssuer()


class Endpoint:
    def __init__(self, url: str, ca_path: Path, backend: ApplicationBackend, app: Any) -> None:
        self.url = url
        self.ca_path = ca_path
        self.backend = backend
        self.app = app

    def client(self) -> BatchManagementClient:
        return BatchManagementClient(
            IssuedTokenCredential(ISSUER),  # type: ignore[arg-type]
            SUBSCRIPTION,
            base_url=self.url,
            credential_scopes=[f"{self.url}/.default"],
            connection_verify=str(self.ca_path),
            retry_total=0,
        )


@pytest.fixture(scope="module")
def endpoint(azurite: AzuriteServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    state = tmp_path_factory.mktemp("management")
    backend = ApplicationBackend(ACCOUNT, state, azurite.connection_string)
    app = create_management_app(backend, ISSUER)
    port = free_port()
    tls = tls_files(state, "127.0.0.1")
    server = uvicorn.Server(management_config(app, "127.0.0.1", port, tls))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the management endpoint did not start"
        time.sleep(0.02)
    yield Endpoint(f"https://127.0.0.1:{port}", tls.ca_path, backend, app)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(endpoint: Endpoint) -> Iterator[BatchManagementClient]:
    with endpoint.client() as management:
        yield management


def _zip(path: Path, text: str) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", text)
    return path.read_bytes()


def _publish(client: BatchManagementClient, app: str, version: str, data: bytes) -> mm.ApplicationPackage:
    client.application.create(RG, ACCOUNT, app)
    package = client.application_package.create(RG, ACCOUNT, app, version)
    assert package.properties is not None and package.properties.storage_url
    BlobClient.from_blob_url(package.properties.storage_url).upload_blob(data, overwrite=True)
    return client.application_package.activate(
        RG, ACCOUNT, app, version, mm.ActivateApplicationPackageParameters(format="zip")
    )


def test_lifecycle_of_an_application(
    client: BatchManagementClient, endpoint: Endpoint, tmp_path: Path
) -> None:
    created = client.application.create(
        RG, ACCOUNT, "lifecycle", mm.Application(properties=mm.ApplicationProperties(display_name="Life"))
    )
    assert created.name == "lifecycle"
    assert created.properties is not None and created.properties.allow_updates is True
    assert created.id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Batch/batchAccounts/"
        f"{ACCOUNT}/applications/lifecycle"
    )
    package = client.application_package.create(RG, ACCOUNT, "lifecycle", "1.0")
    assert package.properties is not None
    assert package.properties.state == "Pending"
    assert package.properties.storage_url and "sig=" in package.properties.storage_url
    assert endpoint.backend.summary("lifecycle") is None  # nothing active yet

    with pytest.raises(HttpResponseError) as excinfo:
        client.application_package.activate(
            RG, ACCOUNT, "lifecycle", "1.0", mm.ActivateApplicationPackageParameters(format="zip")
        )
    assert excinfo.value.error is not None and excinfo.value.error.code == "ApplicationPackageBlobNotFound"

    BlobClient.from_blob_url(package.properties.storage_url).upload_blob(_zip(tmp_path / "p.zip", "one"))
    active = client.application_package.activate(
        RG, ACCOUNT, "lifecycle", "1.0", mm.ActivateApplicationPackageParameters(format="zip")
    )
    assert active.properties is not None
    assert (active.properties.state, active.properties.format) == ("Active", "zip")
    assert active.properties.last_activation_time is not None

    updated = client.application.update(RG, ACCOUNT, "lifecycle", {"properties": {"defaultVersion": "1.0"}})
    assert updated.properties is not None and updated.properties.default_version == "1.0"
    assert updated.properties.display_name == "Life"  # PATCH keeps what it does not name
    assert endpoint.backend.summary("LIFECYCLE") == {
        "id": "lifecycle",
        "displayName": "Life",
        "versions": ["1.0"],
    }
    resolved = endpoint.backend.resolve({"applicationId": "lifecycle"})
    assert resolved.version == "1.0"
    with zipfile.ZipFile(resolved.zip_path) as archive:
        assert archive.read("hello.txt") == b"one"

    with pytest.raises(HttpResponseError) as excinfo:
        client.application.delete(RG, ACCOUNT, "lifecycle")
    assert excinfo.value.error is not None and excinfo.value.error.code == "ApplicationPackagesExist"
    client.application_package.delete(RG, ACCOUNT, "lifecycle", "1.0")
    assert client.application.get(RG, ACCOUNT, "lifecycle").properties.default_version is None  # type: ignore[union-attr]
    client.application.delete(RG, ACCOUNT, "lifecycle")
    with pytest.raises(ResourceNotFoundError):
        client.application.get(RG, ACCOUNT, "lifecycle")


def test_lists_page_with_next_links(client: BatchManagementClient, tmp_path: Path) -> None:
    client.application.create(RG, ACCOUNT, "paged")
    for version in ("1", "2", "3"):
        client.application_package.create(RG, ACCOUNT, "paged", version)
    names = [p.name for p in client.application_package.list(RG, ACCOUNT, "paged", maxresults=2)]
    assert names == ["1", "2", "3"]
    assert "paged" in [app.name for app in client.application.list(RG, ACCOUNT, maxresults=1)]


def test_overwrite_needs_allow_updates(
    client: BatchManagementClient, endpoint: Endpoint, tmp_path: Path
) -> None:
    _publish(client, "locked", "1", _zip(tmp_path / "a.zip", "a"))
    client.application.update(RG, ACCOUNT, "locked", {"properties": {"allowUpdates": False}})
    with pytest.raises(HttpResponseError) as excinfo:
        client.application_package.create(RG, ACCOUNT, "locked", "1")
    assert excinfo.value.status_code == 409
    assert excinfo.value.error is not None
    assert excinfo.value.error.code == "ApplicationPackageUpdatesNotAllowed"
    client.application.update(RG, ACCOUNT, "locked", {"properties": {"allowUpdates": True}})
    _publish(client, "locked", "1", _zip(tmp_path / "b.zip", "b"))
    with zipfile.ZipFile(endpoint.backend.resolve({"applicationId": "locked", "version": "1"}).zip_path) as z:
        assert z.read("hello.txt") == b"b"


def test_default_version_must_exist(client: BatchManagementClient) -> None:
    client.application.create(RG, ACCOUNT, "nodefault")
    with pytest.raises(HttpResponseError) as excinfo:
        client.application.update(RG, ACCOUNT, "nodefault", {"properties": {"defaultVersion": "9"}})
    assert excinfo.value.status_code == 409


def test_references_resolve_like_the_service(
    endpoint: Endpoint, client: BatchManagementClient, tmp_path: Path
) -> None:
    _publish(client, "Resolve-Me", "2.0", _zip(tmp_path / "r.zip", "r"))
    client.application_package.create(RG, ACCOUNT, "Resolve-Me", "3.0")  # pending: not usable
    arm_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Batch/batchAccounts/"
        f"{ACCOUNT}/applications/resolve-me"
    )
    assert (
        endpoint.backend.resolve({"applicationId": arm_id, "version": "2.0"}).application_id == "Resolve-Me"
    )
    for reference, reason in [
        ({"applicationId": "missing"}, "does not exist"),
        ({"applicationId": "resolve-me"}, "no default version"),
        ({"applicationId": "resolve-me", "version": "9"}, "does not exist"),
        ({"applicationId": "resolve-me", "version": "3.0"}, "is not active"),
    ]:
        with pytest.raises(PackageReferenceError, match=reason):
            endpoint.backend.resolve(reference)


def test_names_are_validated(client: BatchManagementClient) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        client.application_package.create(RG, ACCOUNT, "ok", ".bad")
    assert excinfo.value.status_code == 400


def test_bearer_token_api_version_and_account_are_checked(endpoint: Endpoint) -> None:
    base = f"{endpoint.url}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}/providers/Microsoft.Batch"
    url = f"{base}/batchAccounts/{ACCOUNT}/applications"
    no_token = requests.get(
        url, params={"api-version": "2025-06-01"}, verify=str(endpoint.ca_path), timeout=10
    )
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "AuthenticationFailed"
    token = IssuedTokenCredential(ISSUER).get_token(f"{endpoint.url}/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    old = requests.get(
        url, params={"api-version": "2024-07-01"}, headers=headers, verify=str(endpoint.ca_path)
    )
    assert old.json()["error"]["code"] == "InvalidApiVersionParameter"
    other = requests.get(
        f"{base}/batchAccounts/someoneelse/applications",
        params={"api-version": "2025-06-01"},
        headers=headers,
        verify=str(endpoint.ca_path),
        timeout=10,
    )
    assert other.status_code == 404


def test_the_certificate_is_trusted_only_through_the_ca(endpoint: Endpoint) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(endpoint.url, timeout=10)
    context = ssl.create_default_context(cafile=str(endpoint.ca_path))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint.url)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        assert tls.version() is not None


def test_certificates_are_reused_while_valid(tmp_path: Path) -> None:
    first = ensure_tls_files(tmp_path, ("127.0.0.1",))
    ca, cert = first.ca_path.read_bytes(), first.cert_path.read_bytes()
    again = ensure_tls_files(tmp_path, ("127.0.0.1",))
    assert (again.ca_path.read_bytes(), again.cert_path.read_bytes()) == (ca, cert)
    # Another host: a new server certificate from the same CA, so clients keep trusting it.
    other_host = ensure_tls_files(tmp_path, ("batch.example.test",))
    assert other_host.ca_path.read_bytes() == ca
    assert other_host.cert_path.read_bytes() != cert
    assert oct(first.key_path.stat().st_mode & 0o777) == oct(0o600)


def test_cli_refuses_contradictory_management_options(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_batch_provider.emulator.cli import main

    assert main(["--management-port", "1", "--applications-dir", "apps"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["--management-port", "1", "--tls-cert", "cert.pem"]) == 2
    assert "--tls-key" in capsys.readouterr().err


def test_the_harness_serves_both_planes_on_one_loop() -> None:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from airflow_batch_provider.testing.emulator import BatchEmulatorServer

    with BatchEmulatorServer(management=True) as server:
        assert server.management_endpoint.startswith("https://")
        assert server.ca_cert_path.is_file()
        batch = BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key))
        assert list(batch.list_applications()) == []
        with BatchManagementClient(
            IssuedTokenCredential(server.token_issuer),  # type: ignore[arg-type]
            SUBSCRIPTION,
            base_url=server.management_endpoint,
            credential_scopes=[f"{server.management_endpoint}/.default"],
            connection_verify=str(server.ca_cert_path),
        ) as management:
            management.application.create(RG, server.account_name, "harness")
            with pytest.raises(HttpResponseError) as excinfo:  # no auto-storage account configured
                management.application_package.create(RG, server.account_name, "harness", "1")
        assert excinfo.value.error is not None and excinfo.value.error.code == "AutoStorageNotConfigured"
        assert server.management_request_log[0][0] == "PUT"
    with pytest.raises(RuntimeError, match="management=True"):
        _ = BatchEmulatorServer().management_endpoint
