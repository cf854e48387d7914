"""One place that turns an Airflow connection into Azure credentials, for Batch and Blob alike.

The authentication mode is either named explicitly in the connection extra ``auth_type`` or inferred
from the fields that are set, in this fixed order of precedence:

1. ``connection_string`` (Blob only)
2. ``sas_token`` (Blob only)
3. account key (the connection password)
4. service principal: ``client_secret`` with ``tenant_id`` and ``client_id``
5. workload identity: ``workload_identity: true`` or ``federated_token_file``
6. managed identity: ``managed_identity: true`` or ``managed_identity_client_id``
7. ``DefaultAzureCredential`` when nothing above is set

Two or more secrets of different modes on one connection are a contradiction and raise
:class:`~airflow_batch_provider.exceptions.ConnectionConfigError` unless ``auth_type`` picks one.
Every secret read from a connection is registered with Airflow's secrets masker at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

from airflow_batch_provider.exceptions import ConnectionConfigError
from airflow_batch_provider.hooks.connection_fields import AuthMode
from airflow_batch_provider.utils.secrets import mask, mask_connection_string, mask_sas

Service = Literal["batch", "blob"]

_BLOB_ONLY_MODES = frozenset({AuthMode.CONNECTION_STRING, AuthMode.SAS_TOKEN})
_TRUE_STRINGS = {"1", "true", "yes", "on"}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE_STRINGS


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """Split a storage connection string into its parts, keyed by lower-cased name."""
    values: dict[str, str] = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            values[name.strip().lower()] = value.strip()
    return values


@dataclass(frozen=True)
class AzureConnectionSettings:
    """The fields of an ``azbatch`` or ``azblob`` connection, normalised and with secrets masked.

    :param conn_id: The connection id.
    :param service: ``batch`` or ``blob``.
    :param endpoint: The account URL.
    :param account_name: The account name.
    :param account_key: The account key (shared key authentication).
    :param connection_string: A storage connection string.
    :param sas_token: A storage SAS token.
    :param tenant_id: The Entra ID tenant of a service principal or workload identity.
    :param client_id: The service principal's (or workload identity's) client id.
    :param client_secret: The service principal's secret.
    :param managed_identity: Authenticate with a managed identity.
    :param managed_identity_client_id: The client id of a user-assigned managed identity.
    :param workload_identity: Authenticate with a workload identity (federated token).
    :param federated_token_file: The workload identity's token file.
    :param authority_host: The Entra ID authority (a sovereign or private cloud's).
    :param authority_ca_bundle: A CA file to trust for ``authority_host``.
    :param auth_type: The authentication mode, when set explicitly.
    :param extras: The connection's other extra fields.
    """

    conn_id: str
    service: Service
    endpoint: str | None = None
    account_name: str | None = None
    account_key: str | None = field(default=None, repr=False)
    connection_string: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    managed_identity: bool = False
    managed_identity_client_id: str | None = None
    workload_identity: bool = False
    federated_token_file: str | None = None
    authority_host: str | None = None
    #: A CA file to trust for ``authority_host`` (a private cloud's, or the local emulator's).
    authority_ca_bundle: str | None = None
    auth_type: AuthMode | None = None
    extras: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_fields(
        cls,
        *,
        conn_id: str,
        service: Service,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | str | None = None,
    ) -> AzureConnectionSettings:
        """Build settings from the standard connection fields and the extra JSON."""
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except json.JSONDecodeError as err:
                raise ConnectionConfigError(
                    f"Connection {conn_id!r}: the extra field is not valid JSON ({err.msg}). "
                    "Fix the JSON in the connection's extra."
                ) from None
        extras: dict[str, Any] = {}
        for key, value in dict(extra or {}).items():
            # The UI stores custom fields as extra__<type>__<name>; accept both spellings.
            short = key.split("__")[-1] if key.startswith("extra__") else key
            if value not in (None, ""):
                extras[short] = value

        raw_auth_type = extras.get("auth_type")
        auth_type: AuthMode | None = None
        if raw_auth_type:
            try:
                auth_type = AuthMode(str(raw_auth_type).strip().lower())
            except ValueError:
                choices = ", ".join(mode.value for mode in AuthMode)
                raise ConnectionConfigError(
                    f"Connection {conn_id!r}: auth_type {raw_auth_type!r} is not known. "
                    f"Use one of: {choices}; or remove auth_type to infer it from the fields that are set."
                ) from None

        settings = cls(
            conn_id=conn_id,
            service=service,
            endpoint=(host or extras.get("endpoint") or extras.get("account_url") or None),
            account_name=login or extras.get("account_name") or None,
            account_key=password or extras.get("account_key") or None,
            connection_string=extras.get("connection_string"),
            sas_token=extras.get("sas_token"),
            tenant_id=extras.get("tenant_id"),
            client_id=extras.get("client_id"),
            client_secret=extras.get("client_secret"),
            managed_identity=_as_bool(extras.get("managed_identity", False)),
            managed_identity_client_id=extras.get("managed_identity_client_id"),
            workload_identity=_as_bool(extras.get("workload_identity", False)),
            federated_token_file=extras.get("federated_token_file"),
            authority_host=extras.get("authority_host"),
            authority_ca_bundle=extras.get("authority_ca_bundle"),
            auth_type=auth_type,
            extras=extras,
        )
        mask(settings.account_key)
        mask(settings.client_secret)
        mask_sas(settings.sas_token)
        mask_connection_string(settings.connection_string, settings.connection_string_parts)
        return settings

    def resolve_mode(self) -> AuthMode:
        """Return the authentication mode, or raise a clear error when fields are missing or clash."""
        mode = self.auth_type or self._infer_mode()
        self._validate(mode)
        return mode

    # -- inference and validation -------------------------------------------------------------------

    def _secret_modes(self) -> list[tuple[AuthMode, str]]:
        present = []
        if self.connection_string:
            present.append((AuthMode.CONNECTION_STRING, "connection_string"))
        if self.sas_token:
            present.append((AuthMode.SAS_TOKEN, "sas_token"))
        if self.account_key:
            present.append((AuthMode.SHARED_KEY, "password (account key)"))
        if self.client_secret:
            present.append((AuthMode.SERVICE_PRINCIPAL, "client_secret"))
        return present

    def _infer_mode(self) -> AuthMode:
        secrets = self._secret_modes()
        if len(secrets) > 1:
            names = " and ".join(name for _, name in secrets)
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} sets {names}, which are different ways to authenticate. "
                "Keep only one, or set the extra auth_type to the mode you want."
            )
        if secrets:
            return secrets[0][0]
        if self.workload_identity or self.federated_token_file:
            return AuthMode.WORKLOAD_IDENTITY
        if self.managed_identity or self.managed_identity_client_id:
            return AuthMode.MANAGED_IDENTITY
        return AuthMode.DEFAULT

    def _validate(self, mode: AuthMode) -> None:
        where = f"Connection {self.conn_id!r} (auth_type {mode.value})"
        if self.service == "batch" and mode in _BLOB_ONLY_MODES:
            raise ConnectionConfigError(
                f"{where}: Azure Batch does not accept a {mode.value.replace('_', ' ')}. "
                "Use the account key (password) or an Entra ID mode on the azbatch connection."
            )
        if mode is AuthMode.CONNECTION_STRING:
            if not self.connection_string:
                raise ConnectionConfigError(f"{where}: set the extra connection_string.")
            return
        if self.service == "batch" and not self.endpoint:
            raise ConnectionConfigError(
                f"{where}: the Batch account URL is missing. Put it in the host field, for example "
                "https://<account>.<region>.batch.azure.com."
            )
        if self.service == "blob" and not (self.endpoint or self.account_name):
            raise ConnectionConfigError(
                f"{where}: set the storage account name (login) or the account URL (host)."
            )
        if mode is AuthMode.SAS_TOKEN and not self.sas_token:
            raise ConnectionConfigError(f"{where}: set the extra sas_token.")
        if mode is AuthMode.SHARED_KEY:
            if not self.account_key:
                raise ConnectionConfigError(f"{where}: put the account key in the password field.")
            if not self.resolved_account_name:
                raise ConnectionConfigError(
                    f"{where}: the account name is needed to sign requests. Put it in the login field."
                )
        if mode is AuthMode.SERVICE_PRINCIPAL:
            missing = [
                name
                for name, value in (
                    ("tenant_id", self.tenant_id),
                    ("client_id", self.client_id),
                    ("client_secret", self.client_secret),
                )
                if not value
            ]
            if missing:
                raise ConnectionConfigError(
                    f"{where}: a service principal needs tenant_id, client_id and client_secret; "
                    f"missing: {', '.join(missing)}."
                )
        if mode is AuthMode.WORKLOAD_IDENTITY:
            token_file = self.federated_token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
            missing = [
                name
                for name, value in (
                    ("tenant_id", self.tenant_id or os.environ.get("AZURE_TENANT_ID")),
                    ("client_id", self.client_id or os.environ.get("AZURE_CLIENT_ID")),
                    ("federated_token_file", token_file),
                )
                if not value
            ]
            if missing:
                raise ConnectionConfigError(
                    f"{where}: workload identity needs {', '.join(missing)}; set them in the connection "
                    "extra or through the AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_FEDERATED_TOKEN_FILE "
                    "environment variables."
                )

    # -- derived values -----------------------------------------------------------------------------

    @property
    def connection_string_parts(self) -> dict[str, str]:
        """The parts of the connection string, keyed by lower-cased name (empty without one)."""
        return parse_connection_string(self.connection_string) if self.connection_string else {}

    @property
    def resolved_account_name(self) -> str | None:
        """The account name, from the login field or else from the first label of an Azure host."""
        if self.account_name:
            return self.account_name
        if self.connection_string_parts.get("accountname"):
            return self.connection_string_parts["accountname"]
        if self.endpoint:
            parts = urlsplit(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
            host = parts.hostname or ""
            if host.endswith((".batch.azure.com", ".core.windows.net")) or ".batch." in host:
                return host.split(".")[0]
            path = parts.path.strip("/")
            if path:  # path-style emulator URL, http://127.0.0.1:10000/devstoreaccount1
                return path.split("/")[0]
        return None

    @property
    def blob_account_url(self) -> str:
        """The Blob endpoint, from the host field or built from the account name."""
        if self.endpoint:
            url = self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}"
            return url.rstrip("/")
        if self.connection_string and not self.account_name:
            parts = self.connection_string_parts
            if parts.get("blobendpoint"):
                return parts["blobendpoint"].rstrip("/")
            protocol = parts.get("defaultendpointsprotocol") or "https"
            suffix = parts.get("endpointsuffix") or "core.windows.net"
            return f"{protocol}://{self.resolved_account_name}.blob.{suffix}"
        return f"https://{self.account_name}.blob.core.windows.net"

    @property
    def batch_endpoint(self) -> str:
        """The Batch account URL; a connection without one raises ``ConnectionConfigError``."""
        if not self.endpoint:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: the Batch account URL is missing. Put it in the host "
                "field, for example https://<account>.<region>.batch.azure.com."
            )
        url = self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}"
        return url.rstrip("/")

    # -- credential objects -------------------------------------------------------------------------

    def credential(self) -> Any:
        """A synchronous credential for the SDK clients (``None`` for a connection string)."""
        return self._build_credential(asynchronous=False)

    def async_credential(self) -> Any:
        """An ``azure.identity.aio`` credential for the async clients (``None`` for a connection string)."""
        return self._build_credential(asynchronous=True)

    def _build_credential(self, *, asynchronous: bool) -> Any:
        mode = self.resolve_mode()
        if mode is AuthMode.CONNECTION_STRING:
            return None
        if mode is AuthMode.SHARED_KEY:
            assert self.account_key is not None
            return AzureNamedKeyCredential(str(self.resolved_account_name), self.account_key)
        if mode is AuthMode.SAS_TOKEN:
            assert self.sas_token is not None
            return AzureSasCredential(self.sas_token.lstrip("?"))
        return self._entra_credential(mode, asynchronous=asynchronous)

    def _entra_credential(self, mode: AuthMode, *, asynchronous: bool) -> Any:
        """An ``azure.identity`` credential (its ``aio`` twin when asynchronous) for an Entra ID mode."""
        if asynchronous:
            from azure.identity import aio as identity
        else:
            import azure.identity as identity  # type: ignore[no-redef]

        options = self._authority_options()
        if self.authority_ca_bundle:
            options["connection_verify"] = self.authority_ca_bundle
        if mode is AuthMode.SERVICE_PRINCIPAL:
            return identity.ClientSecretCredential(
                tenant_id=str(self.tenant_id),
                client_id=str(self.client_id),
                client_secret=str(self.client_secret),
                **options,
            )
        if mode is AuthMode.MANAGED_IDENTITY:
            # A user-assigned identity is used whenever its client id is set, whatever else is.
            return identity.ManagedIdentityCredential(client_id=self.managed_identity_client_id)
        if mode is AuthMode.WORKLOAD_IDENTITY:
            return identity.WorkloadIdentityCredential(
                tenant_id=self.tenant_id or os.environ.get("AZURE_TENANT_ID"),
                client_id=self.client_id or os.environ.get("AZURE_CLIENT_ID"),
                token_file_path=self.federated_token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE"),
                **options,
            )
        return identity.DefaultAzureCredential(**self._default_credential_options())

    def _authority_options(self) -> dict[str, Any]:
        """The Entra ID authority to log in at, if set (no instance discovery outside Microsoft's clouds)."""
        if not self.authority_host:
            return {}
        options: dict[str, Any] = {"authority": self.authority_host}
        if not _known_to_microsoft(self.authority_host):
            # Azure Stack, a private cloud or the local emulator: there is no instance metadata
            # for it at login.microsoftonline.com, which MSAL would otherwise ask.
            options["disable_instance_discovery"] = True
        return options

    def _default_credential_options(self) -> dict[str, Any]:
        """``DefaultAzureCredential``'s options from the identities the connection names."""
        options: dict[str, Any] = {}
        if self.managed_identity_client_id:
            options["managed_identity_client_id"] = self.managed_identity_client_id
        if self.client_id:
            options["workload_identity_client_id"] = self.client_id
        if self.tenant_id:
            options["workload_identity_tenant_id"] = self.tenant_id
        return options | self._authority_options()


#: Entra ID's public and sovereign cloud authorities, which MSAL validates with instance discovery.
MICROSOFT_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
    "login.microsoftonline.de",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
)


def _known_to_microsoft(authority_host: str) -> bool:
    host = urlsplit(authority_host if "//" in authority_host else f"https://{authority_host}").hostname or ""
    return host.lower() in MICROSOFT_AUTHORITY_HOSTS
