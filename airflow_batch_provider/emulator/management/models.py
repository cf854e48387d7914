"""Applications and application packages of the emulated Batch account, as Resource Manager sees them.

The state and rules behind ``Microsoft.Batch/batchAccounts/{account}/applications[/{app}/versions/{v}]``:

* a package version is created ``Pending`` with a ``storageUrl`` (a read/write SAS for a blob in the
  auto-storage account, Azurite) where the client uploads the zip, then ``activate`` makes it
  ``Active``: the emulator copies the blob's bytes into its state directory at that moment, so what
  nodes install is what was uploaded when it was activated;
* creating an existing version again reopens it for upload; for an active version that needs the
  application's ``allowUpdates`` (the default is true), else 409; activating a version whose blob was
  never uploaded fails with 409;
* ``defaultVersion`` can only name an existing version; deleting that version clears it;
* an application that still has versions cannot be deleted (delete the versions first).

Names are unique case-insensitively, as Resource Manager names are; the case a client created them
with is kept. The data plane reads the same state through :meth:`ApplicationBackend.summaries` and
:meth:`ApplicationBackend.resolve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_batch_provider.emulator.models.applications import PackageReferenceError, resolve
from airflow_batch_provider.emulator.serialization import new_etag, utcnow

log = logging.getLogger(__name__)

#: The Resource Manager api-version azure-mgmt-batch 19 sends.
MANAGEMENT_API_VERSION = "2025-06-01"
#: How long a package's storage URL (its SAS) stays valid.
STORAGE_URL_LIFETIME = timedelta(hours=4)

_APPLICATION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VERSION_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


class ManagementError(Exception):
    """An error the emulated Resource Manager returns: ``{"error": {"code", "message", "target"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


def _format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _container_name(application: str) -> str:
    """A valid, stable blob container for one application (lower case, hyphens, at most 63 chars)."""
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", application.lower())).strip("-")[:40] or "app"
    digest = hashlib.sha256(application.lower().encode("utf-8")).hexdigest()[:12]
    return f"app-{slug}-{digest}"


@dataclass
class ApplicationPackage:
    """One version of an application."""

    version: str
    state: str = "Pending"
    format: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    etag: str = field(default_factory=new_etag)
    last_activation_time: datetime | None = None
    blob_name: str = ""
    #: The zip as it was when activated (what nodes install) and the SHA-256 of its bytes.
    active_zip: Path | None = None
    active_sha256: str | None = None


@dataclass
class Application:
    """An application: display name, whether versions may be overwritten, the default version."""

    name: str
    display_name: str | None = None
    allow_updates: bool = True
    default_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    etag: str = field(default_factory=new_etag)
    packages: dict[str, ApplicationPackage] = field(default_factory=dict)

    def package(self, version: str) -> ApplicationPackage | None:
        return self.packages.get(version.lower())

    @property
    def container(self) -> str:
        return _container_name(self.name)


@dataclass(frozen=True)
class ResolvedPackage:
    """An activated package a node can install: its application, version and zip."""

    application_id: str
    version: str
    zip_path: Path
    sha256: str


class ApplicationBackend:
    """Applications of one Batch account; mutated only on the emulator's event loop."""

    def __init__(
        self, account_name: str, state_dir: Path, storage_connection_string: str | None = None
    ) -> None:
        self.account_name = account_name
        self.state_dir = Path(state_dir) / "applications"
        self.storage_connection_string = storage_connection_string
        self._applications: dict[str, Application] = {}

    # ---- lookups

    def all(self) -> list[Application]:
        return sorted(self._applications.values(), key=lambda app: app.name.lower())

    def find(self, name: str) -> Application | None:
        return self._applications.get(name.lower())

    def get(self, name: str) -> Application:
        application = self.find(name)
        if application is None:
            raise ManagementError(
                404, "ApplicationNotFound", "The specified application does not exist.", "BatchAccount"
            )
        return application

    def get_package(self, name: str, version: str) -> tuple[Application, ApplicationPackage]:
        application = self.get(name)
        package = application.package(version)
        if package is None:
            raise ManagementError(
                404,
                "ApplicationPackageNotFound",
                "The specified application package does not exist.",
                "BatchAccount",
            )
        return application, package

    # ---- applications

    @staticmethod
    def check_names(name: str, version: str | None = None) -> None:
        if not _APPLICATION_NAME.fullmatch(name):
            raise ManagementError(
                400,
                "InvalidApplicationName",
                f"The application name '{name}' is invalid: use 1 to 64 letters, digits, hyphens and "
                "underscores.",
                "applicationName",
            )
        if version is not None and not _VERSION_NAME.fullmatch(version):
            raise ManagementError(
                400,
                "InvalidApplicationPackageVersion",
                f"The version '{version}' is invalid: use 1 to 64 letters, digits, hyphens, underscores "
                "and periods, not starting with a period.",
                "versionName",
            )

    def put_application(self, name: str, body: dict[str, Any]) -> Application:
        """Create the application, or replace the properties of an existing one (PUT semantics)."""
        self.check_names(name)
        properties = body.get("properties") or {}
        application = self.find(name) or Application(name=name)
        replace = {"displayName": None, "allowUpdates": True, "defaultVersion": None, **properties}
        self._apply(application, replace, body.get("tags") or {})
        self._applications.setdefault(name.lower(), application)
        return application

    def patch_application(self, name: str, body: dict[str, Any]) -> Application:
        """Change only the properties the body names: displayName, allowUpdates, defaultVersion."""
        application = self.get(name)
        self._apply(application, body.get("properties") or {}, body.get("tags"))
        return application

    def _apply(self, application: Application, properties: dict[str, Any], tags: Any) -> None:
        if "defaultVersion" in properties and properties["defaultVersion"] not in (None, ""):
            version = str(properties["defaultVersion"])
            package = application.package(version)
            if package is None:
                raise ManagementError(
                    409,
                    "ApplicationPackageNotFound",
                    f"The default version '{version}' is not a version of application '{application.name}'.",
                    "defaultVersion",
                )
            application.default_version = package.version
        elif "defaultVersion" in properties:
            application.default_version = None
        if "displayName" in properties:
            application.display_name = properties["displayName"] or None
        if "allowUpdates" in properties and properties["allowUpdates"] is not None:
            if not isinstance(properties["allowUpdates"], bool):
                raise ManagementError(
                    400, "InvalidRequestContent", "allowUpdates must be a boolean.", "allowUpdates"
                )
            application.allow_updates = properties["allowUpdates"]
        if isinstance(tags, dict):
            application.tags = {str(key): str(value) for key, value in tags.items()}
        application.etag = new_etag()

    def delete_application(self, name: str) -> bool:
        application = self.find(name)
        if application is None:
            return False
        if application.packages:
            raise ManagementError(
                409,
                "ApplicationPackagesExist",
                f"The application '{application.name}' still has versions; delete them first.",
                "BatchAccount",
            )
        del self._applications[name.lower()]
        shutil.rmtree(self.state_dir / application.name.lower(), ignore_errors=True)
        return True

    # ---- packages

    async def put_package(self, name: str, version: str, body: dict[str, Any]) -> ApplicationPackage:
        """Create a version (``Pending``), or reopen an existing one for upload when updates are allowed."""
        self.check_names(name, version)
        application = self.get(name)
        package = application.package(version)
        if package is not None and package.state == "Active" and not application.allow_updates:
            raise ManagementError(
                409,
                "ApplicationPackageUpdatesNotAllowed",
                f"Version '{package.version}' of application '{application.name}' already exists and the "
                "application does not allow updates (allowUpdates is false).",
                "BatchAccount",
            )
        self._require_storage()
        await asyncio.to_thread(self._create_container, application.container)
        if package is None:
            package = ApplicationPackage(version=version, blob_name=f"{version}.zip")
            application.packages[version.lower()] = package
        tags = body.get("tags")
        if isinstance(tags, dict):
            package.tags = {str(key): str(value) for key, value in tags.items()}
        package.etag = new_etag()
        return package

    async def activate(self, name: str, version: str, body: dict[str, Any]) -> ApplicationPackage:
        """Make a version usable: snapshot its uploaded blob and mark it ``Active``."""
        application, package = self.get_package(name, version)
        package_format = body.get("format")
        if not package_format or not isinstance(package_format, str):
            raise ManagementError(
                400, "InvalidRequestContent", "The request body must name the package format.", "format"
            )
        self._require_storage()
        data = await asyncio.to_thread(self._download, application.container, package.blob_name)
        if data is None:
            raise ManagementError(
                409,
                "ApplicationPackageBlobNotFound",
                f"Nothing was uploaded to the storage URL of version '{package.version}' of application "
                f"'{application.name}'; upload the package before activating it.",
                "BatchAccount",
            )
        digest = hashlib.sha256(data).hexdigest()
        target = self.state_dir / application.name.lower() / package.version.lower() / f"{digest}.zip"
        await asyncio.to_thread(_write_bytes, target, data)
        package.active_zip = target
        package.active_sha256 = digest
        package.state = "Active"
        package.format = package_format
        package.last_activation_time = utcnow()
        package.etag = new_etag()
        return package

    async def delete_package(self, name: str, version: str) -> bool:
        application = self.find(name)
        package = application.package(version) if application is not None else None
        if application is None or package is None:
            return False
        del application.packages[version.lower()]
        if application.default_version and application.default_version.lower() == version.lower():
            application.default_version = None
        if self.storage_connection_string:
            await asyncio.to_thread(self._delete_blob, application.container, package.blob_name)
        shutil.rmtree(self.state_dir / application.name.lower() / version.lower(), ignore_errors=True)
        return True

    # ---- storage (Azurite), through the Blob SDK in a worker thread

    def _require_storage(self) -> None:
        if not self.storage_connection_string:
            raise ManagementError(
                409,
                "AutoStorageNotConfigured",
                "Application packages need an auto-storage account linked to the Batch account; start the "
                "emulator with a storage connection string (Azurite's).",
                "BatchAccount",
            )

    def _service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        assert self.storage_connection_string is not None
        return BlobServiceClient.from_connection_string(self.storage_connection_string, retry_total=2)

    def _create_container(self, container: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        with self._service() as service, contextlib.suppress(ResourceExistsError):
            service.create_container(container)

    def _download(self, container: str, blob: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._service() as service:
            try:
                data: bytes = service.get_blob_client(container, blob).download_blob().readall()
            except ResourceNotFoundError:
                return None
        return data

    def _delete_blob(self, container: str, blob: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._service() as service, contextlib.suppress(ResourceNotFoundError):
            service.get_blob_client(container, blob).delete_blob()

    def storage_url(self, application: Application, package: ApplicationPackage) -> tuple[str, datetime]:
        """A read/write SAS URL of the package's blob and when it expires (Azurite's account key signs it)."""
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        with self._service() as service:
            credential = service.credential
            blob_url = service.get_blob_client(application.container, package.blob_name).url
        expiry = utcnow() + STORAGE_URL_LIFETIME
        sas = generate_blob_sas(
            account_name=credential.account_name,
            container_name=application.container,
            blob_name=package.blob_name,
            account_key=credential.account_key,
            permission=BlobSasPermissions(read=True, write=True, create=True),
            expiry=expiry,
            start=utcnow() - timedelta(minutes=5),
        )
        return f"{blob_url}?{sas}", expiry

    # ---- the data plane's view

    def summaries(self) -> list[dict[str, Any]]:
        """``GET /applications`` items: applications with at least one active version, and those versions."""
        items = []
        for application in self.all():
            versions = sorted(p.version for p in application.packages.values() if p.state == "Active")
            if versions:
                item: dict[str, Any] = {"id": application.name, "versions": versions}
                item["displayName"] = application.display_name or application.name
                items.append(item)
        return items

    def summary(self, name: str) -> dict[str, Any] | None:
        return next((item for item in self.summaries() if item["id"].lower() == name.lower()), None)

    def resolve(self, reference: dict[str, Any]) -> ResolvedPackage:
        """The active package an ``applicationPackageReferences`` entry names.

        Raises :class:`PackageReferenceError` when it cannot be satisfied.
        """
        return resolve(reference, self._shelf)

    def _shelf(self, name: str) -> _ActivePackages | None:
        application = self.find(name)
        return _ActivePackages(application) if application else None


class _ActivePackages:
    """An application as :func:`resolve` sees it: only active packages can be installed."""

    def __init__(self, application: Application) -> None:
        self.application = application
        self.name = application.name
        self.default_version = application.default_version

    def package(self, version: str) -> ResolvedPackage:
        package = self.application.package(version)
        if package is None:
            raise PackageReferenceError(f"Version '{version}' of application '{self.name}' does not exist.")
        if package.state != "Active" or package.active_zip is None or package.active_sha256 is None:
            raise PackageReferenceError(
                f"Version '{package.version}' of application '{self.name}' is not active."
            )
        return ResolvedPackage(self.name, package.version, package.active_zip, package.active_sha256)


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def format_time(value: datetime) -> str:
    """Resource Manager's datetime format (ISO 8601 UTC)."""
    return _format_time(value)
