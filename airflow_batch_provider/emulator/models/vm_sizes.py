"""Azure VM size names, read the way the service reads them, and the cores each counts against quota.

The service accepts any real size name, so the emulator parses the naming grammar instead of keeping
a list: ``<Tier>_<Family><vCPUs>[-<constrained vCPUs>]<additive features>[_<accelerator>][_v<version>]``,
for example ``Standard_D2s_v3``, ``standard_d2_v2``, ``Standard_NC24ads_A100_v4``,
``Standard_E64-16ds_v4``, ``Standard_A1`` or ``Basic_A0`` (case does not matter).

Cores for quota: in current names the number after the family is the vCPU count (a constrained size
such as ``E64-16ds_v4`` still counts its full 64). The first-generation families (A without a version,
D/DS v1 and v2, G/GS) number their models instead; :data:`LEGACY_MODEL_CORES` maps those. Fallback:
a size whose number gives no vCPUs (``A0``, a shared core) counts as 1 core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Family prefixes of Azure VM sizes (the letters before the vCPU number), lower case.
FAMILIES = frozenset(
    {
        "a", "b", "d", "dc", "ds", "e", "eb", "ec", "f", "fs", "fx", "g", "gs", "h", "hb", "hc", "hx",
        "l", "ls", "m", "mc", "nc", "ncc", "nd", "ng", "np", "nv",
    }
)  # fmt: skip
#: Additive feature letters (a AMD, b block storage, c confidential, d local disk, e/n/o variants,
#: i isolated, l low memory, m memory intensive, p ARM, r RDMA, s premium storage, t tiny memory).
FEATURE_LETTERS = frozenset("abcdeilmnoprst")
TIERS = ("standard", "basic")

#: Cores of first-generation sizes, whose number is a model number rather than a vCPU count:
#: (family, model number) -> vCPUs. Applies to ``A`` without a version, ``D``/``DS`` v1 and v2, ``G``/``GS``.
_A_SERIES = {0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 2, 6: 4, 7: 8, 8: 8, 9: 16, 10: 8, 11: 16}
_D_SERIES = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 11: 2, 12: 4, 13: 8, 14: 16, 15: 20}
_G_SERIES = {1: 2, 2: 4, 3: 8, 4: 16, 5: 32}
LEGACY_MODEL_CORES: dict[tuple[str, int], int] = {
    **{("a", number): cores for number, cores in _A_SERIES.items()},
    **{(family, number): cores for family in ("d", "ds") for number, cores in _D_SERIES.items()},
    **{(family, number): cores for family in ("g", "gs") for number, cores in _G_SERIES.items()},
}

_SIZE = re.compile(
    r"^(?P<tier>[a-z]+)_(?P<family>[a-z]+)(?P<number>\d+)(?:-(?P<constrained>\d+))?(?P<features>[a-z]*)"
    r"(?P<extras>(?:_[a-z0-9]+)*?)(?:_v(?P<version>\d+))?(?:_promo)?$"
)


@dataclass(frozen=True)
class VmSize:
    """A parsed size name: its family, model number, features, version and cores for quota."""

    name: str
    family: str
    number: int
    features: str
    version: int | None
    cores: int


def parse_vm_size(name: str) -> VmSize | None:
    """The parsed size, or ``None`` when ``name`` does not follow the Azure VM size grammar."""
    match = _SIZE.match(name.strip().lower())
    if match is None or match["tier"] not in TIERS or match["family"] not in FAMILIES:
        return None
    if not set(match["features"]) <= FEATURE_LETTERS:
        return None
    extras = [part for part in match["extras"].split("_") if part]
    if any(re.fullmatch(r"v\d+", part) for part in extras):  # a version only at the end
        return None
    family, number = match["family"], int(match["number"])
    version = int(match["version"]) if match["version"] else None
    return VmSize(name, family, number, match["features"], version, _cores(family, number, version))


def _cores(family: str, number: int, version: int | None) -> int:
    legacy = (family == "a" and version is None) or (family in {"d", "ds"} and (version or 1) <= 2)
    legacy = legacy or family in {"g", "gs"}
    if legacy and (family, number) in LEGACY_MODEL_CORES:
        return LEGACY_MODEL_CORES[(family, number)]
    return max(number, 1)
