"""Application packages as the data plane sees them: ``GET /applications`` and package references.

Where packages come from is pluggable (:class:`ApplicationSource`). Built in is
:class:`DirectoryApplications`, a local directory laid out as ``<applicationId>/<version>.zip``
whose default version is named in ``<applicationId>/default`` (a text file) or is the only version.
The management-plane emulator can supply its own source, so packages uploaded and activated
through Resource Manager reach nodes the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

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

    ``resolve`` raises :class:`PackageReferenceError`, with a message for the client, when a
    reference cannot be satisfied (unknown application or version, no default version, not active).
    """

    def summaries(self) -> list[dict[str, Any]]: ...

    def summary(self, name: str) -> dict[str, Any] | None: ...

    def resolve(self, reference: dict[str, Any]) -> ResolvedPackage: ...


class PackageReferenceError(Exception):
    """A package reference that cannot be satisfied (missing application or version, no default
    version, or a version not active); the message is what the client is told."""


Package = TypeVar("Package", bound=ResolvedPackage, covariant=True)


class ApplicationShelf(Protocol[Package]):
    """One application as a source holds it: what :func:`resolve` needs to pick a package."""

    @property
    def name(self) -> str: ...

    @property
    def default_version(self) -> str | None: ...

    def package(self, version: str) -> Package:
        """The usable package of ``version``; :class:`PackageReferenceError` if there is none."""
        ...


def resolve(reference: dict[str, Any], find: Callable[[str], ApplicationShelf[Package] | None]) -> Package:
    """The package an ``applicationPackageReferences`` entry names, among the applications ``find`` knows.

    ``applicationId`` may be the application name or its Resource Manager id (pools use the latter);
    without ``version`` the application's default version is meant.
    """
    raw_id = str(reference.get("applicationId") or "")
    name = raw_id.rstrip("/").rsplit("/applications/", 1)[-1]
    application = find(name) if name else None
    if application is None:
        raise PackageReferenceError(f"The application '{raw_id}' does not exist.")
    version = reference.get("version") or application.default_version
    if not version:
        raise PackageReferenceError(
            f"The reference to application '{application.name}' has no version and the application "
            "has no default version: name one."
        )
    return application.package(str(version))


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
        return resolve(reference, self._shelf)

    def _shelf(self, name: str) -> _DirectoryShelf | None:
        directory = self._directories().get(name.lower())
        return _DirectoryShelf(directory, self._versions(directory)) if directory else None


class _DirectoryShelf:
    """One ``<applicationId>`` directory: its versions are its zips."""

    def __init__(self, directory: Path, versions: list[str]) -> None:
        self.directory = directory
        self.name = directory.name
        self.versions = versions
        self.default_version = DirectoryApplications._default_version(directory, versions)

    def package(self, version: str) -> ResolvedPackage:
        if version not in self.versions:
            raise PackageReferenceError(f"Version '{version}' of application '{self.name}' does not exist.")
        return _DirectoryPackage(self.name, version, self.directory / f"{version}.zip")


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
            except PackageReferenceError as err:
                raise invalid_references(str(err)) from err
        return resolved
