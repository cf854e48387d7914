"""Hook for the Batch management plane (Azure Resource Manager): applications and application packages.

Application packages are not part of the Batch data plane: they are created, uploaded and activated
through Resource Manager with ``azure.mgmt.batch.BatchManagementClient``. This hook reads the same
``azbatch`` connection as :class:`~airflow_batch_provider.hooks.batch.BatchHook`: the login (or the host)
names the Batch account, the extras ``subscription_id`` and ``resource_group`` locate it, and
``management_endpoint`` (default ``https://management.azure.com``) selects the Resource Manager
endpoint, for sovereign clouds, Azure Stack or the local emulator; the token scope follows it.
``management_ca_bundle`` names a CA file to trust for that endpoint (the emulator's generated CA).

Resource Manager only accepts Entra ID tokens: a connection that authenticates with the account key
cannot manage application packages.

Publishing is idempotent. The SHA-256 of the published zip is recorded twice: as the package's tag
``contentSha256`` (Resource Manager, readable with the same credential) and as the metadata
``content_sha256`` of the uploaded blob (for packages published by other tools that set it).
Publishing the same bytes again finds the hash and uploads nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from airflow_batch_provider.batch.application_packages import PackageFile, package_reference
from airflow_batch_provider.config import USER_AGENT
from airflow_batch_provider.exceptions import (
    ApplicationPackageConflictError,
    BatchProviderError,
    ConnectionConfigError,
)
from airflow_batch_provider.hooks.base import AZBATCH_DEFAULT_CONN_ID, AzureBaseHook
from airflow_batch_provider.utils.secrets import mask_sas, strip_query

if TYPE_CHECKING:  # Resource Manager's SDK is imported with the first client, not with the hook
    from azure.mgmt.batch import BatchManagementClient

log = logging.getLogger(__name__)

DEFAULT_MANAGEMENT_ENDPOINT = "https://management.azure.com"
#: Package tag holding the hex SHA-256 of the published zip.
CONTENT_HASH_TAG = "contentSha256"
#: Blob metadata key holding the same hash (metadata keys must be C# identifiers).
CONTENT_HASH_METADATA = "content_sha256"

PublishAction = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class PublishResult:
    """What publishing did (``created``, ``updated`` or ``unchanged``) and the reference to use.

    :param application_id: The application.
    :param version: The published version.
    :param action: ``created``, ``updated`` or ``unchanged``.
    :param sha256: SHA-256 of the published zip.
    :param is_default: Whether the version is the application's default.
    """

    application_id: str
    version: str
    action: PublishAction
    sha256: str
    is_default: bool

    @property
    def reference(self) -> dict[str, str]:
        return package_reference(self.application_id, self.version)


def _error_text(err: HttpResponseError) -> str:
    error = getattr(err, "error", None)
    code = getattr(error, "code", None) or getattr(err, "status_code", None)
    message = getattr(error, "message", None) or err.reason or str(err)
    return f"{code}: {message}"


class BatchManagementHook(AzureBaseHook):
    """Manage a Batch account's applications and application packages through Resource Manager.

    :param azbatch_conn_id: An ``azbatch`` connection with Entra ID credentials and the extras
        ``subscription_id`` and ``resource_group``.
    :param retry_total: Retries of a failed Resource Manager request.
    """

    conn_type = "azbatch"
    conn_name_attr: ClassVar[str] = "azbatch_conn_id"
    default_conn_name: ClassVar[str] = AZBATCH_DEFAULT_CONN_ID
    hook_name = "Azure Batch management (batch provider)"
    service = "batch"

    def __init__(self, azbatch_conn_id: str | None = None, *, retry_total: int = 5, **kwargs: Any) -> None:
        super().__init__(conn_id=azbatch_conn_id or self.default_conn_name, **kwargs)
        self.azbatch_conn_id = self.conn_id
        self.retry_total = retry_total

    # -- connection fields --------------------------------------------------------------------------

    def _extra(self, name: str) -> str | None:
        value = self.settings.extras.get(name)
        return str(value).strip() if value not in (None, "") else None

    @property
    def management_endpoint(self) -> str:
        endpoint = self._extra("management_endpoint") or DEFAULT_MANAGEMENT_ENDPOINT
        return endpoint.rstrip("/")

    @property
    def credential_scope(self) -> str:
        """The token scope of the management endpoint (``<endpoint>/.default``)."""
        return f"{self.management_endpoint}/.default"

    def _required(self, name: str, label: str) -> str:
        value = self._extra(name)
        if not value:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: application packages are managed through Azure Resource "
                f"Manager, which needs the Batch account's {label}. Set the extra {name!r}."
            )
        return value

    @property
    def subscription_id(self) -> str:
        return self._required("subscription_id", "subscription id")

    @property
    def resource_group(self) -> str:
        return self._required("resource_group", "resource group")

    @property
    def account_name(self) -> str:
        name = self.settings.resolved_account_name
        if not name:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: the Batch account name is needed for Resource Manager calls; "
                "put it in the login field."
            )
        return name

    def get_credential(self) -> Any:
        """The connection's Entra ID credential; shared-key connections are refused with the reason."""
        mode = self.settings.resolve_mode()
        if not mode.uses_entra_id:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} authenticates with {mode.value.replace('_', ' ')}, but "
                "application packages are managed through ARM, which needs Entra ID: use a service "
                "principal, a managed identity, workload identity or DefaultAzureCredential (remove the "
                "account key, or set auth_type), and grant it a role on the Batch account such as "
                "Contributor."
            )
        return self.settings.credential()

    # -- client -------------------------------------------------------------------------------------

    @cached_property
    def client(self) -> BatchManagementClient:
        """``azure.mgmt.batch.BatchManagementClient`` for the connection's subscription and endpoint."""
        options: dict[str, Any] = {
            "base_url": self.management_endpoint,
            "credential_scopes": [self.credential_scope],
            "user_agent": USER_AGENT,
            "retry_total": self.retry_total,
        }
        ca_bundle = self._extra("management_ca_bundle")
        if ca_bundle:
            options["connection_verify"] = ca_bundle
        from azure.mgmt.batch import BatchManagementClient

        return BatchManagementClient(self.get_credential(), self.subscription_id, **options)

    def get_conn(self) -> BatchManagementClient:
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    def test_connection(self) -> tuple[bool, str]:
        try:
            next(
                iter(self.client.application.list(self.resource_group, self.account_name, maxresults=1)), None
            )
        except (HttpResponseError, BatchProviderError) as err:
            text = _error_text(err) if isinstance(err, HttpResponseError) else str(err)
            return False, f"{type(err).__name__}: {text}"
        return True, "Resource Manager access to the Batch account's applications works."

    def _where(self) -> tuple[str, str]:
        return self.resource_group, self.account_name

    # -- applications -------------------------------------------------------------------------------

    def get_application(self, application_id: str) -> dict[str, Any] | None:
        """The application as Resource Manager returns it, or None when it does not exist."""
        try:
            return dict(self.client.application.get(*self._where(), application_id).as_dict())
        except ResourceNotFoundError:
            return None

    def list_applications(self) -> list[dict[str, Any]]:
        return [dict(app.as_dict()) for app in self.client.application.list(*self._where())]

    def create_application(
        self, application_id: str, *, display_name: str | None = None, allow_updates: bool = True
    ) -> dict[str, Any]:
        """Create (or replace) an application."""
        properties = _mgmt_models().ApplicationProperties(
            display_name=display_name, allow_updates=allow_updates
        )
        body = _mgmt_models().Application(properties=properties)
        return dict(self.client.application.create(*self._where(), application_id, body).as_dict())

    def update_application(
        self,
        application_id: str,
        *,
        display_name: str | None = None,
        allow_updates: bool | None = None,
        default_version: str | None = None,
    ) -> dict[str, Any]:
        """Change the given properties of an application (PATCH): display name, updates, default version."""
        properties: dict[str, Any] = {}
        if display_name is not None:
            properties["displayName"] = display_name
        if allow_updates is not None:
            properties["allowUpdates"] = allow_updates
        if default_version is not None:
            properties["defaultVersion"] = default_version
        result = self.client.application.update(*self._where(), application_id, {"properties": properties})
        return dict(result.as_dict())

    def delete_application(self, application_id: str) -> None:
        self.client.application.delete(*self._where(), application_id)

    # -- packages -----------------------------------------------------------------------------------

    def get_package(self, application_id: str, version: str) -> dict[str, Any] | None:
        """The package version (with a fresh ``storageUrl``), or None when it does not exist."""
        try:
            package = self.client.application_package.get(*self._where(), application_id, version)
        except ResourceNotFoundError:
            return None
        return self._registered(dict(package.as_dict()))

    def create_package(
        self, application_id: str, version: str, *, tags: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Create the version record (state ``Pending``); its ``storageUrl`` is where the zip goes."""
        body = _mgmt_models().ApplicationPackage(tags=tags) if tags else None
        package = self.client.application_package.create(*self._where(), application_id, version, body)
        return self._registered(dict(package.as_dict()))

    def activate_package(
        self, application_id: str, version: str, package_format: str = "zip"
    ) -> dict[str, Any]:
        parameters = _mgmt_models().ActivateApplicationPackageParameters(format=package_format)
        package = self.client.application_package.activate(
            *self._where(), application_id, version, parameters
        )
        return self._registered(dict(package.as_dict()))

    def delete_package(self, application_id: str, version: str) -> None:
        self.client.application_package.delete(*self._where(), application_id, version)

    @staticmethod
    def _registered(package: dict[str, Any]) -> dict[str, Any]:
        """Mask the SAS of the package's storage URL before anything can log it."""
        url = (package.get("properties") or {}).get("storageUrl")
        if url and urlsplit(url).query:
            mask_sas(urlsplit(url).query)
        return package

    # -- the package blob ---------------------------------------------------------------------------

    def _blob_client(self, storage_url: str) -> Any:
        """A client for the package blob: the URL's own SAS when it has one, else the Entra credential.

        Resource Manager returns a SAS URL when the auto-storage account uses keys and a bare URL when it
        uses the Batch account's managed identity; then the caller's identity needs blob data access.
        """
        from azure.storage.blob import BlobClient

        has_sas = "sig" in parse_qs(urlsplit(storage_url).query)
        credential = None if has_sas else self.get_credential()
        return BlobClient.from_blob_url(storage_url, credential=credential, retry_total=self.retry_total)

    def upload_package(self, storage_url: str, package: PackageFile, *, max_concurrency: int = 4) -> None:
        """Upload the zip to the package's storage URL, recording its hash in the blob's metadata."""
        with self._blob_client(storage_url) as blob, open(package.path, "rb") as data:
            blob.upload_blob(
                data,
                length=package.size,
                overwrite=True,
                metadata={CONTENT_HASH_METADATA: package.sha256},
                max_concurrency=max_concurrency,
            )
        log.info("Uploaded %s (%d bytes) to %s", package.path.name, package.size, strip_query(storage_url))

    def package_blob_hash(self, storage_url: str) -> str | None:
        """The hash recorded in the package blob's metadata; None when absent or unreadable."""
        try:
            with self._blob_client(storage_url) as blob:
                metadata = blob.get_blob_properties().metadata or {}
        except HttpResponseError as err:
            log.info("Could not read the package blob's metadata (%s)", _error_text(err))
            return None
        value = {key.lower(): value for key, value in metadata.items()}.get(CONTENT_HASH_METADATA)
        return str(value) if value else None

    def published_hash(self, package: dict[str, Any]) -> str | None:
        """The content hash of an existing package: its tag first, then its blob's metadata."""
        tagged = (package.get("tags") or {}).get(CONTENT_HASH_TAG)
        if tagged:
            return str(tagged)
        url = (package.get("properties") or {}).get("storageUrl")
        return self.package_blob_hash(url) if url else None

    # -- publishing ---------------------------------------------------------------------------------

    def publish_package(
        self,
        application_id: str,
        version: str,
        package: PackageFile,
        *,
        overwrite: bool = False,
        set_default: bool = False,
        display_name: str | None = None,
    ) -> PublishResult:
        """Create the application if needed, then upload and activate ``package`` as ``version``.

        Idempotent: an active version whose recorded hash equals the zip's is left alone (nothing is
        uploaded). An active version with other (or unknown) content raises
        :class:`ApplicationPackageConflictError` unless ``overwrite`` is true, which needs the
        application's ``allowUpdates``. A ``Pending`` version (an earlier, interrupted publish) is
        completed. ``set_default`` makes this version the application's default.
        """
        try:
            return self._publish(application_id, version, package, overwrite, set_default, display_name)
        except HttpResponseError as err:
            raise BatchProviderError(
                f"Publishing version {version!r} of application {application_id!r} failed: {_error_text(err)}"
            ) from err

    def _publish(
        self,
        application_id: str,
        version: str,
        package: PackageFile,
        overwrite: bool,
        set_default: bool,
        display_name: str | None,
    ) -> PublishResult:
        application = self.get_application(application_id)
        if application is None:
            log.info("Creating application %r", application_id)
            application = self.create_application(application_id, display_name=display_name)
        elif (
            display_name is not None
            and (application.get("properties") or {}).get("displayName") != display_name
        ):
            application = self.update_application(application_id, display_name=display_name)
        properties = application.get("properties") or {}

        action: PublishAction = "created"
        existing = self.get_package(application_id, version)
        if existing is not None and (existing.get("properties") or {}).get("state") == "Active":
            published = self.published_hash(existing)
            if published == package.sha256:
                action = "unchanged"
            elif not overwrite:
                found = f"content with SHA-256 {published}" if published else "content of unknown hash"
                raise ApplicationPackageConflictError(
                    f"Version {version!r} of application {application_id!r} already holds {found}, not "
                    f"{package.sha256}. Publish under a new version, or pass overwrite=True to replace it "
                    "(tasks already running keep the old content; nodes that installed it keep it)."
                )
            elif properties.get("allowUpdates") is False:
                raise ApplicationPackageConflictError(
                    f"Application {application_id!r} does not allow updates (allowUpdates is false), so "
                    f"version {version!r} cannot be overwritten. Publish a new version, or allow updates."
                )
            else:
                action = "updated"

        if action == "unchanged":
            log.info(
                "Version %r of application %r already holds this content (SHA-256 %s); nothing uploaded.",
                version,
                application_id,
                package.sha256,
            )
        else:
            record = self.create_package(application_id, version, tags={CONTENT_HASH_TAG: package.sha256})
            storage_url = (record.get("properties") or {}).get("storageUrl")
            if not storage_url:
                raise BatchProviderError(
                    f"Resource Manager returned no storage URL for version {version!r} of "
                    f"{application_id!r}; "
                    "check that the Batch account has an auto-storage account."
                )
            self.upload_package(storage_url, package)
            self.activate_package(application_id, version)
            log.info("Activated version %r of application %r (%s).", version, application_id, action)

        is_default = properties.get("defaultVersion") == version
        if set_default and not is_default:
            self.update_application(application_id, default_version=version)
            is_default = True
        return PublishResult(application_id, version, action, package.sha256, is_default)


def _mgmt_models() -> Any:
    """``azure.mgmt.batch.models``, imported on first use."""
    from azure.mgmt.batch import models

    return models
