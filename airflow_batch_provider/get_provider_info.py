"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_batch_provider import __version__
from airflow_batch_provider.config import provider_info_section
from airflow_batch_provider.hooks.connection_fields import BATCH_AUTH_MODES, credential_conn_fields

PACKAGE = "airflow_batch_provider"


def _connection_types() -> list[dict[str, Any]]:
    batch_fields = credential_conn_fields(BATCH_AUTH_MODES)
    batch_fields["ca_bundle"] = {
        "label": "Batch CA bundle",
        "description": "Optional. Path of a CA certificate file to trust for the Batch account URL "
        "(the local emulator's HTTPS endpoint).",
        "schema": {"type": ["string", "null"]},
    }
    batch_fields["subscription_id"] = {
        "label": "Subscription ID",
        "description": "Subscription of the Batch account: for portal links; needed for application "
        "packages.",
        "schema": {"type": ["string", "null"]},
    }
    batch_fields["resource_group"] = {
        "label": "Resource group",
        "description": "Resource group of the Batch account: for portal links; needed for application "
        "packages.",
        "schema": {"type": ["string", "null"]},
    }
    batch_fields["management_endpoint"] = {
        "label": "Resource Manager endpoint",
        "description": "Optional. Azure Resource Manager URL for application packages; "
        "default https://management.azure.com. The token scope follows it.",
        "schema": {"type": ["string", "null"]},
    }
    batch_fields["management_ca_bundle"] = {
        "label": "Resource Manager CA bundle",
        "description": "Optional. Path of a CA certificate file to trust for the Resource Manager endpoint "
        "(Azure Stack, or the local emulator's generated CA).",
        "schema": {"type": ["string", "null"]},
    }
    blob_fields = credential_conn_fields()
    blob_fields["connection_string"] = {
        "label": "Connection string",
        "description": "Storage account connection string. Takes precedence over every other field.",
        "schema": {"type": ["string", "null"], "format": "password"},
    }
    blob_fields["sas_token"] = {
        "label": "SAS token",
        "description": "Account or container SAS token (without the leading '?').",
        "schema": {"type": ["string", "null"], "format": "password"},
    }
    return [
        {
            "connection-type": "azbatch",
            "hook-class-name": f"{PACKAGE}.hooks.batch.BatchHook",
            "hook-name": "Azure Batch (batch provider)",
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "port"],
                "relabeling": {
                    "host": "Batch account URL",
                    "login": "Batch account name",
                    "password": "Batch account key",
                },
                "placeholders": {
                    "host": "https://<account>.<region>.batch.azure.com",
                    "login": "Batch account name (needed with an account key)",
                    "password": "Account key; leave empty for Entra ID",
                },
            },
            "conn-fields": batch_fields,
        },
        {
            "connection-type": "azblob",
            "hook-class-name": f"{PACKAGE}.hooks.blob.BlobStorageHook",
            "hook-name": "Azure Blob Storage (batch provider)",
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "port"],
                "relabeling": {
                    "host": "Blob account URL",
                    "login": "Storage account name",
                    "password": "Storage account key",
                },
                "placeholders": {
                    "host": "https://<account>.blob.core.windows.net (optional)",
                    "login": "Storage account name",
                    "password": "Account key; leave empty for SAS or Entra ID",
                },
            },
            "conn-fields": blob_fields,
        },
    ]


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-batch-provider",
        "name": "Azure Batch (airflow-batch-provider)",
        "description": "Azure Batch workflows as Airflow tasks: storage, pools, jobs, tasks, monitoring.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Azure Batch (airflow-batch-provider)",
                "external-doc-url": "https://learn.microsoft.com/azure/batch/",
                "tags": ["azure"],
            }
        ],
        "operators": [
            {
                "integration-name": "Azure Batch (airflow-batch-provider)",
                "python-modules": [
                    f"{PACKAGE}.operators.storage",
                    f"{PACKAGE}.operators.pool",
                    f"{PACKAGE}.operators.job",
                    f"{PACKAGE}.operators.tasks",
                    f"{PACKAGE}.operators.output",
                    f"{PACKAGE}.operators.application",
                    f"{PACKAGE}.operators.run_job",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Azure Batch (airflow-batch-provider)",
                "python-modules": [f"{PACKAGE}.sensors.job", f"{PACKAGE}.sensors.pool"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Azure Batch (airflow-batch-provider)",
                "python-modules": [
                    f"{PACKAGE}.hooks.batch",
                    f"{PACKAGE}.hooks.blob",
                    f"{PACKAGE}.hooks.batch_management",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Azure Batch (airflow-batch-provider)",
                "python-modules": [
                    f"{PACKAGE}.triggers.job",
                    f"{PACKAGE}.triggers.pool",
                    f"{PACKAGE}.triggers.cleanup",
                ],
            }
        ],
        "filesystems": [f"{PACKAGE}.fs.blob"],
        "asset-uris": [
            {
                "schemes": ["azblob"],
                "handler": f"{PACKAGE}.assets.normalize_asset_uri",
                "to_openlineage_converter": f"{PACKAGE}.lineage.asset_to_openlineage",
            }
        ],
        "config": provider_info_section(),
        "connection-types": _connection_types(),
        "extra-links": [
            f"{PACKAGE}.links.portal.BatchPoolLink",
            f"{PACKAGE}.links.portal.BatchJobLink",
        ],
    }
