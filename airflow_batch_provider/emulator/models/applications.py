"""Application packages as the data plane sees them: ``GET /applications`` and package references.

Where packages come from is pluggable (:class:`ApplicationSource`). Built in is
:class:`DirectoryApplications`, a local directory laid out as ``<applicationId>/<version>.zip``
whose default version is named in ``<applicationId>/default`` (a text file) or is the only version.
The management-plane emulator can supply its own source, so packages uploaded and activated
through Resource Manager reach nodes the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from airflow_batch_provider.emulator.errors import BatchError, resource_not_found


class ResolvedPackage(Protocol):
    """What a source resolves a reference to."""

    @property
    def application_id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def zip_path(self) -> Path: ...


class ApplicationSource(Protocol):
    """Where application packages come from.

    ``resolve`` raises any exception, with a message for the client, when a reference cannot be
    satisfied (unknown application or version, no default version, version not active).
    """

    def summaries(self) -> list[dict[str, Any]]: ...

    def summary(self, name: str) -> dict[str, Any] | None: ...

    def resolve(self, reference: dict[str, Any]) -> ResolvedPackage: ...


class PackageReferenceError(Exception):
    """A package reference a :class:`DirectoryApplications` cannot satisfy."""


class _DirectoryPackage:
    def __init__(self, application_id: str, version: str, zip_path: Path) -> None:
        self.application_id = application_id
        self.version = version
        self.zip_path = zip_path


class DirectoryApplications:
    """Packages read from ``<root>/<applicationId>/<version>.zip`` (none when ``root`` is None)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _directories(self) -> dict[str, Path]:
        if self.root is None or not self.root.is_dir():
            return {}
        return {path.name.lower(): path for path in sorted(self.root.iterdir()) if path.is_dir()}

    @staticmethod
    def _versions(directory: Path) -> list[str]:
        return sorted(path.stem for path in directory.glob("*.zip"))

    @staticmethod
    def _default_version(directory: Path, versions: list[str]) -> str | None:
        marker = directory / "default"
        if marker.is_file():
            chosen = marker.read_text().strip()
            return chosen if chosen in versions else None
        return versions[0] if len(versions) == 1 else None

    def summaries(self) -> list[dict[str, Any]]:
        return [
            {"id": directory.name, "displayName": directory.name, "versions": self._versions(directory)}
            for directory in self._directories().values()
        ]

    def summary(self, name: str) -> dict[str, Any] | None:
        return next((item for item in self.summaries() if item["id"].lower() == name.lower()), None)

    def resolve(self, reference: dict[str, Any]) -> ResolvedPackage:
        raw_id = str(reference.get("applicationId") or "")
        # Pools may name the application by its Resource Manager id.
        name = raw_id.rstrip("/").rsplit("/applications/", 1)[-1]
        directory = self._directories().get(name.lower())
        if directory is None:
            raise PackageReferenceError(f"The application '{raw_id}' does not exist.")
        versions = self._versions(directory)
        requested = reference.get("version")
        version = str(requested) if requested else self._default_version(directory, versions)
        if version is None:
            raise PackageReferenceError(
                f"The application '{directory.name}' has no default version; name one."
            )
        if version not in versions:
            raise PackageReferenceError(
                f"Version '{version}' of application '{directory.name}' does not exist."
            )
        return _DirectoryPackage(directory.name, version, directory / f"{version}.zip")


def invalid_references(detail: str) -> BatchError:
    return BatchError(
        409,
        "InvalidApplicationPackageReferences",
        "One or more application package references could not be satisfied.",
        {"Reason": detail},
    )


class ApplicationCatalog:
    """The account's applications through its :class:`ApplicationSource`, with the service's errors."""

    def __init__(self, source: ApplicationSource) -> None:
        self.source = source

    def all(self) -> list[dict[str, Any]]:
        return self.source.summaries()

    def get(self, application_id: str) -> dict[str, Any]:
        summary = self.source.summary(application_id)
        if summary is None:
            raise resource_not_found("application")
        return summary

    def validate(self, references: Any) -> list[tuple[dict[str, Any], ResolvedPackage]]:
        """Resolve a pool's or task's references; 409 ``InvalidApplicationPackageReferences`` if one fails."""
        if not references:
            return []
        resolved = []
        for reference in references:
            try:
                resolved.append((reference, self.source.resolve(reference)))
            except BatchError:
                raise
            except Exception as err:  # the source's own "cannot satisfy" error, whatever its type
                raise invalid_references(str(err)) from err
        return resolved
