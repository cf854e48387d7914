"""Batch application packages on the client side: name rules, deterministic zips, content hashes.

An application package is a ``.zip`` the Batch service extracts on compute nodes. To publish the same
content twice without uploading it twice, the zip built from a directory must be byte-for-byte stable:
:func:`build_deterministic_zip` sorts the entries, fixes every timestamp and normalises permissions, so
the same files always give the same bytes and therefore the same :func:`sha256_file` digest.

Name rules are the ones the Batch management API documents: an application name has 1 to 64 letters,
digits, hyphens and underscores; a version has 1 to 64 letters, digits, hyphens, underscores and
periods, and does not start with a period.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_batch_provider.exceptions import InvalidInputError

MAX_NAME_LENGTH = 64
_APPLICATION_ID = re.compile(r"[A-Za-z0-9_-]+")
_VERSION = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
#: The timestamp of every entry (the earliest a zip can hold), so rebuilding never changes the bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1024 * 1024


def validate_application_id(value: object, field: str = "application_id") -> str:
    """Return ``value`` if it is a valid Batch application name, else raise a message that says why."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{field} must be a non-empty string, got {value!r}.")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field} {value!r} is {len(value)} characters long; application names have at most "
            f"{MAX_NAME_LENGTH}."
        )
    if not _APPLICATION_ID.fullmatch(value):
        bad = sorted({char for char in value if not re.match(r"[A-Za-z0-9_-]", char)})
        raise InvalidInputError(
            f"{field} {value!r} contains {''.join(bad)!r}; application names may only contain letters, "
            "digits, hyphens and underscores."
        )
    return value


def validate_version(value: object, field: str = "version") -> str:
    """Return ``value`` if it is a valid application package version, else raise a clear message."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{field} must be a non-empty string, got {value!r}.")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field} {value!r} is {len(value)} characters long; versions have at most {MAX_NAME_LENGTH}."
        )
    if value.startswith("."):
        raise InvalidInputError(f"{field} {value!r} starts with a period, which versions may not do.")
    if not _VERSION.fullmatch(value):
        bad = sorted({char for char in value if not re.match(r"[A-Za-z0-9_.-]", char)})
        raise InvalidInputError(
            f"{field} {value!r} contains {''.join(bad)!r}; versions may only contain letters, digits, "
            "hyphens, underscores and periods."
        )
    return value


def package_reference(application_id: str, version: str | None = None) -> dict[str, str]:
    """The ``applicationPackageReferences`` entry for a package, in the service's JSON shape."""
    reference = {"applicationId": application_id}
    if version is not None:
        reference["version"] = version
    return reference


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class PackageFile:
    """A zip ready to publish: where it is and the hex SHA-256 of its bytes."""

    path: Path
    sha256: str
    size: int


def _entries(directory: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) for every file and directory below ``directory``, sorted by name.

    Symbolic links are followed when they point at files; links to directories are not descended
    (they could loop), which matches what ``zip`` does without ``--symlinks``.
    """
    found: list[tuple[str, Path]] = []
    for root, dirnames, filenames in os.walk(directory):
        root_path = Path(root)
        dirnames[:] = [name for name in dirnames if not (root_path / name).is_symlink()]
        for name in dirnames:
            path = root_path / name
            found.append((path.relative_to(directory).as_posix() + "/", path))
        for name in filenames:
            path = root_path / name
            if path.is_file():
                found.append((path.relative_to(directory).as_posix(), path))
    yield from sorted(found, key=lambda item: item[0])


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.create_system = 3  # Unix, so extractors restore the permission bits below
    if name.endswith("/"):
        info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
    else:
        # Keep only whether the file is executable: umask and owner differences must not change the bytes.
        permissions = 0o755 if mode & 0o111 else 0o644
        info.external_attr = (stat.S_IFREG | permissions) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_deterministic_zip(
    source_dir: str | os.PathLike[str], target: str | os.PathLike[str]
) -> PackageFile:
    """Zip the contents of ``source_dir`` into ``target`` so that equal content gives equal bytes.

    Entries are sorted, every timestamp is 1980-01-01 00:00, permissions are reduced to 644/755 and the
    compression level is fixed; the directory itself is not an entry, its contents sit at the top of
    the archive (which is where Batch expects them, next to ``AZ_BATCH_APP_PACKAGE_*``).
    """
    source = Path(source_dir)
    if not source.is_dir():
        raise InvalidInputError(f"{source} is not a directory.")
    target_path = Path(target)
    with zipfile.ZipFile(target_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in _entries(source):
            info = _zip_info(name, path.stat().st_mode)
            if name.endswith("/"):
                archive.writestr(info, b"")
                continue
            with open(path, "rb") as reader, archive.open(info, "w") as writer:
                for chunk in iter(lambda: reader.read(_CHUNK), b""):
                    writer.write(chunk)
    return PackageFile(target_path, sha256_file(target_path), target_path.stat().st_size)


def existing_zip(path: str | os.PathLike[str]) -> PackageFile:
    """Check that ``path`` is a zip archive and return it with its hash; its bytes are published as is."""
    zip_path = Path(path)
    if not zip_path.is_file():
        raise InvalidInputError(f"{zip_path} is not a file.")
    if not zipfile.is_zipfile(zip_path):
        raise InvalidInputError(
            f"{zip_path} is not a zip archive; Batch application packages must be .zip files."
        )
    return PackageFile(zip_path, sha256_file(zip_path), zip_path.stat().st_size)
