"""The fields of ``azbatch`` and ``azblob`` connections, as plain data.

Airflow's provider discovery reads these through ``get_provider_info``, so this module imports
nothing from Airflow or from the rest of the provider.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any


class AuthMode(str, enum.Enum):
    """How a connection authenticates to Azure."""

    SHARED_KEY = "shared_key"
    CONNECTION_STRING = "connection_string"
    SAS_TOKEN = "sas_token"
    SERVICE_PRINCIPAL = "service_principal"
    MANAGED_IDENTITY = "managed_identity"
    WORKLOAD_IDENTITY = "workload_identity"
    DEFAULT = "default_azure_credential"

    @property
    def uses_entra_id(self) -> bool:
        return self not in (AuthMode.SHARED_KEY, AuthMode.CONNECTION_STRING, AuthMode.SAS_TOKEN)


#: What a Batch account accepts: it has no connection strings or SAS tokens (those are Storage's).
BATCH_AUTH_MODES: tuple[AuthMode, ...] = tuple(
    mode for mode in AuthMode if mode not in (AuthMode.CONNECTION_STRING, AuthMode.SAS_TOKEN)
)


#: Extra fields a connection of either type may carry, with a label and help text for the UI.
CREDENTIAL_EXTRA_FIELDS: dict[str, tuple[str, str, bool]] = {
    "auth_type": ("Authentication mode", "Optional. Inferred from the other fields when empty.", False),
    "tenant_id": ("Tenant ID", "Entra ID tenant, for a service principal or workload identity.", False),
    "client_id": ("Client ID", "Application (client) id of a service principal or workload identity.", False),
    "client_secret": ("Client secret", "Secret of the service principal.", True),
    "managed_identity_client_id": (
        "Managed identity client ID",
        "Client id of a user-assigned managed identity. Leave empty for the system-assigned one.",
        False,
    ),
    "federated_token_file": (
        "Federated token file",
        "Workload identity token file. Defaults to AZURE_FEDERATED_TOKEN_FILE.",
        False,
    ),
    "authority_host": (
        "Authority host",
        "Entra ID authority for sovereign or private clouds, or the local emulator's HTTPS endpoint.",
        False,
    ),
    "authority_ca_bundle": (
        "Authority CA bundle",
        "Optional. Path of a CA certificate file to trust for the authority host (the local emulator's CA).",
        False,
    ),
}


def credential_conn_fields(modes: Iterable[AuthMode] = tuple(AuthMode)) -> dict[str, dict[str, Any]]:
    """The ``conn-fields`` block both connection types share, in Airflow 3's provider-info form.

    The "Authentication mode" dropdown offers ``modes`` only (no empty choice, which the UI would show
    as the literal ``null``: leaving the field unset still means "inferred").
    """
    modes = tuple(modes)
    fields: dict[str, dict[str, Any]] = {}
    for name, (label, description, sensitive) in CREDENTIAL_EXTRA_FIELDS.items():
        schema: dict[str, Any] = {"type": ["string", "null"]}
        if sensitive:
            schema["format"] = "password"
        if name == "auth_type":
            schema["enum"] = [mode.value for mode in modes]
            description = f"{description} One of {', '.join(mode.value for mode in modes)}."
        fields[name] = {"label": label, "description": description, "schema": schema}
    fields["managed_identity"] = {
        "label": "Use managed identity",
        "description": "Authenticate with the managed identity of the machine running the task.",
        "schema": {"type": ["boolean", "null"]},
    }
    fields["workload_identity"] = {
        "label": "Use workload identity",
        "description": "Authenticate with a Kubernetes workload identity (federated token).",
        "schema": {"type": ["boolean", "null"]},
    }
    return fields
