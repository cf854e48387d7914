"""The Batch REST api-versions the emulator serves, and how a response differs between them.

The emulator keeps every resource in the shape of the newest version (:data:`LATEST`) and shapes a
response for the version a request names: properties a version does not have are left out (newer
ones, and ones the newest version dropped), and properties that moved or changed type are put back as
that version has them. Request bodies from older versions are read into the newest shape
(:func:`upgrade`). The facts come from the service's versioning notes and the stable REST
specifications (``Batch/stable/<version>`` and ``Azure.Batch/stable/2025-06-01`` in
azure-rest-api-specs); only properties the emulator can return are listed. Versions before
2023-05-01.17.0 (cloud service pools, lifetime statistics) are not emulated.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Every version the emulator accepts, oldest first: those the service still serves.
SUPPORTED_VERSIONS = (
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
)
#: The version the emulator's resources are stored in (the one azure-batch 15.x sends).
LATEST = SUPPORTED_VERSIONS[-1]

_ORDER = {version: index for index, version in enumerate(SUPPORTED_VERSIONS)}


def is_supported(version: str) -> bool:
    return version in _ORDER


def _before(version: str, since: str) -> bool:
    return _ORDER[version] < _ORDER[since]


@dataclass(frozen=True)
class Added:
    """A property first returned by ``since``: left out for older versions.

    ``path`` is the end of the property's path (list items skipped), so ``("osDisk", "caching")``
    matches an OS disk's caching wherever an OS disk appears (a pool, an auto-pool specification).
    """

    since: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Moved:
    """A property that ``since`` moved from ``old`` to ``new``, both relative to objects at ``parent``."""

    since: str
    parent: tuple[str, ...]
    new: tuple[str, ...]
    old: tuple[str, ...]


@dataclass(frozen=True)
class AsString:
    """An int64 that ``since`` sends as a JSON string (``"1813"``); older versions get a number."""

    since: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Removed:
    """A resource's top-level property that ``since`` dropped: only older versions get it back."""

    since: str
    name: str


Change = Added | Moved | AsString | Removed

CHANGES: tuple[Change, ...] = (
    # 2023-11-01.18.0: OS disk options, security profiles, service artifacts.
    Added("2023-11-01.18.0", ("osDisk", "caching")),
    Added("2023-11-01.18.0", ("osDisk", "diskSizeGB")),
    Added("2023-11-01.18.0", ("osDisk", "managedDisk")),
    Added("2023-11-01.18.0", ("osDisk", "writeAcceleratorEnabled")),
    Added("2023-11-01.18.0", ("virtualMachineConfiguration", "securityProfile")),
    Added("2023-11-01.18.0", ("virtualMachineConfiguration", "serviceArtifactReference")),
    Added("2023-11-01.18.0", ("virtualMachineInfo", "scaleSetVmResourceId")),
    Added("2023-11-01.18.0", ("resourceTags",)),
    # 2024-02-01.19.0: pool upgrade policies.
    Added("2024-02-01.19.0", ("upgradePolicy",)),
    Added("2024-02-01.19.0", ("upgradingOS",)),
    # 2024-07-01.20.0: node deallocation, gallery images, confidential disks, container bind mounts.
    Added("2024-07-01.20.0", ("deallocated",)),
    Added("2024-07-01.20.0", ("deallocating",)),
    Added("2024-07-01.20.0", ("imageReference", "communityGalleryImageId")),
    Added("2024-07-01.20.0", ("imageReference", "sharedGalleryImageId")),
    Added("2024-07-01.20.0", ("managedDisk", "securityProfile")),
    Added("2024-07-01.20.0", ("containerSettings", "containerHostBatchBindMounts")),
    # 2025-06-01: IPv6, IP tags, job-level FIFO, customer-managed keys, metadata security protocol.
    Added("2025-06-01", ("ipv6Address",)),
    Added("2025-06-01", ("ipv6RemoteLoginIPAddress",)),
    Added("2025-06-01", ("ipv6RemoteLoginPort",)),
    Added("2025-06-01", ("publicIPAddressConfiguration", "ipFamilies")),
    Added("2025-06-01", ("publicIPAddressConfiguration", "ipTags")),
    Added("2025-06-01", ("taskSchedulingPolicy", "jobDefaultOrder")),
    Added("2025-06-01", ("diskEncryptionConfiguration", "customerManagedKey")),
    Added("2025-06-01", ("managedDisk", "diskEncryptionSet")),
    Added("2025-06-01", ("securityProfile", "proxyAgentSettings")),
    Added("2025-06-01", ("networkConfiguration", "skipWithdrawFromVNet")),
    AsString("2025-06-01", ("properties", "contentLength")),
    Removed("2025-06-01", "resourceTags"),
    Removed("2025-06-01", "targetNodeCommunicationMode"),
    Moved(
        "2025-06-01",
        parent=("dataDisks",),
        new=("managedDisk", "storageAccountType"),
        old=("storageAccountType",),
    ),
)


_REMOVED = tuple(change for change in CHANGES if isinstance(change, Removed))


def shape(document: dict[str, Any], version: str) -> dict[str, Any]:
    """``document`` (in the :data:`LATEST` shape) as ``version`` names it; the input is not changed."""
    if not is_supported(version):
        return document
    dropped = {change.name for change in _REMOVED if not _before(version, change.since)}
    if version == LATEST:
        # Only the dropped properties differ: keep the common case free of copies.
        if dropped.isdisjoint(document):
            return document
        return {key: value for key, value in document.items() if key not in dropped}
    shaped = {key: copy.deepcopy(value) for key, value in document.items() if key not in dropped}
    for change in CHANGES:
        if isinstance(change, Removed) or not _before(version, change.since):
            continue
        if isinstance(change, Added):
            for parent in _objects_at(shaped, change.path[:-1]):
                parent.pop(change.path[-1], None)
        elif isinstance(change, AsString):
            for parent in _objects_at(shaped, change.path[:-1]):
                value = parent.get(change.path[-1])
                if isinstance(value, str) and value.isdigit():
                    parent[change.path[-1]] = int(value)
        else:
            for parent in _objects_at(shaped, change.parent):
                _move(parent, change.new, change.old)
    return shaped


def upgrade(body: dict[str, Any], version: str) -> dict[str, Any]:
    """A request ``body`` sent with ``version``, with moved properties where :data:`LATEST` has them.

    The models only know the newest shape; this keeps what an older client sends readable by newer
    clients (a data disk's ``storageAccountType``, say). ``body`` itself is changed and returned.
    """
    if not is_supported(version):
        return body
    for change in CHANGES:
        if isinstance(change, Moved) and _before(version, change.since):
            for parent in _objects_at(body, change.parent):
                _move(parent, change.old, change.new)
    return body


def _objects_at(document: Any, suffix: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every object in ``document`` whose path (list items skipped) ends with ``suffix``."""
    yield from _walk(document, (), suffix)


def _walk(value: Any, path: tuple[str, ...], suffix: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _walk(item, path, suffix)
        return
    if not isinstance(value, dict):
        return
    if path[len(path) - len(suffix) :] == suffix:
        yield value
    for key, item in list(value.items()):
        yield from _walk(item, (*path, key), suffix)


def _move(parent: dict[str, Any], source: tuple[str, ...], target: tuple[str, ...]) -> None:
    """Move ``parent``'s value at ``source`` to ``target``, dropping objects the move leaves empty."""
    holders = [parent]
    for key in source[:-1]:
        child = holders[-1].get(key)
        if not isinstance(child, dict):
            return
        holders.append(child)
    if source[-1] not in holders[-1]:
        return
    value = holders[-1].pop(source[-1])
    for holder, key in zip(reversed(holders[:-1]), reversed(source[:-1]), strict=True):
        if not holder[key]:
            del holder[key]
    destination = parent
    for key in target[:-1]:
        child = destination.setdefault(key, {})
        if not isinstance(child, dict):
            return
        destination = child
    destination.setdefault(target[-1], value)
