"""Publish a Batch application package: the management-plane route for getting programs onto nodes.

:class:`BatchPublishApplicationPackageOperator` zips a directory (or takes a zip), publishes it as a
version of a Batch application through Azure Resource Manager and returns the package reference for
``applicationPackageReferences`` of a pool or task. Tasks find the package's directory in
``$AZ_BATCH_APP_PACKAGE_<application>_<version>`` (Linux; periods and hyphens become underscores),
or ``$AZ_BATCH_APP_PACKAGE_<application>`` when they reference the default version.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_batch_provider.batch.application_packages import (
    PackageFile,
    build_deterministic_zip,
    existing_zip,
    validate_application_id,
    validate_version,
)
from airflow_batch_provider.batch.node_environment import linux_variable_name
from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.hooks.batch_management import BatchManagementHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class BatchPublishApplicationPackageOperator(BaseOperator):
    """Publish a directory or a zip as version ``version`` of Batch application ``application_id``.

    A directory is zipped deterministically (sorted entries, fixed timestamps and permissions), so the
    same files always make the same bytes. Publishing is idempotent: when the version already holds a
    zip with the same SHA-256 nothing is uploaded. Other content under an existing version is an error
    unless ``overwrite`` is true. The content hash is recorded as the package's ``contentSha256`` tag
    and as the blob's ``content_sha256`` metadata, which works the same on Azure and in the emulator.

    :param application_id: Application name: 1-64 letters, digits, hyphens, underscores (templated).
    :param version: Version: 1-64 letters, digits, hyphens, underscores, periods; not starting with a
        period (templated).
    :param source: A local directory to zip, or an existing ``.zip`` file (templated).
    :param set_default: Make this version the application's default version.
    :param overwrite: Replace different content already published under this version.
    :param display_name: Display name of the application (templated); set when creating or changed.
    :param azbatch_conn_id: An ``azbatch`` connection with Entra ID credentials and the extras
        ``subscription_id`` and ``resource_group`` (and ``management_endpoint`` off the public cloud).
    :return: ``{"applicationId": ..., "version": ...}``, ready for ``application_package_references``.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "version",
        "source",
        "display_name",
        "azbatch_conn_id",
    )
    ui_color = "#e7f1fb"

    def __init__(
        self,
        *,
        application_id: str,
        version: str,
        source: str | os.PathLike[str],
        set_default: bool = False,
        overwrite: bool = False,
        display_name: str | None = None,
        azbatch_conn_id: str = BatchManagementHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.version = version
        self.source = source
        self.set_default = set_default
        self.overwrite = overwrite
        self.display_name = display_name
        self.azbatch_conn_id = azbatch_conn_id

    def _validate(self) -> Path:
        validate_application_id(self.application_id)
        validate_version(self.version)
        if self.application_id != self.application_id.lower():
            # Microsoft documents that Linux nodes keep the id's case in the variable name, but users
            # have reported lower-cased names: a lower-case id gives the same name either way.
            self.log.warning(
                "Application id %r has upper-case letters; prefer a lower-case id so that "
                "$AZ_BATCH_APP_PACKAGE_<id>_<version> is the same whichever case Linux nodes use.",
                self.application_id,
            )
        source = Path(os.fspath(self.source)).expanduser()
        if not source.exists():
            raise InvalidInputError(
                f"source {str(source)!r} does not exist; give a directory or a .zip file."
            )
        if source.is_dir():
            if not any(source.iterdir()):
                raise InvalidInputError(
                    f"source directory {str(source)!r} is empty; there is nothing to publish."
                )
        elif not source.is_file():
            raise InvalidInputError(f"source {str(source)!r} is neither a directory nor a file.")
        return source

    def execute(self, context: Context) -> dict[str, str]:
        source = self._validate()
        hook = BatchManagementHook(self.azbatch_conn_id)
        with tempfile.TemporaryDirectory(prefix="batch-app-package-") as scratch:
            package: PackageFile
            if source.is_dir():
                package = build_deterministic_zip(source, Path(scratch) / f"{self.application_id}.zip")
                self.log.info("Zipped %s into %d bytes (SHA-256 %s)", source, package.size, package.sha256)
            else:
                package = existing_zip(source)
            try:
                result = hook.publish_package(
                    self.application_id,
                    self.version,
                    package,
                    overwrite=self.overwrite,
                    set_default=self.set_default,
                    display_name=self.display_name,
                )
            finally:
                hook.close()
        self.log.info(
            "Application %r version %r: %s. Tasks on Linux nodes find it in $%s%s.",
            result.application_id,
            result.version,
            result.action,
            linux_variable_name(result.application_id, result.version),
            f" (and ${linux_variable_name(result.application_id)} as the default version)"
            if result.is_default
            else "",
        )
        return result.reference
