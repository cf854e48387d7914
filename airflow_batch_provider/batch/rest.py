"""The service's JSON shape: SDK models and Python-style dicts (``vm_size``) become REST dicts
(``vmSize``) that can be templated, merged, compared, validated and sent the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_batch_provider.batch.durations import to_iso_duration

#: Keys whose values are free-form user dicts: their own keys must stay as written.
_FREE_FORM_KEYS = frozenset({"resourceTags", "settings", "protectedSettings", "tags"})

#: Fields the service types as ISO 8601 durations; a number given for one of them means seconds.
_DURATION_KEYS = frozenset(
    {"maxWallClockTime", "retentionTime", "resizeTimeout", "autoScaleEvaluationInterval"}
)


def camel_case(key: str) -> str:
    """``max_wall_clock_time`` -> ``maxWallClockTime``; keys without underscores are kept."""
    if "_" not in key or key.startswith("_"):
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_rest(value: Any) -> Any:
    """Convert SDK models, Python-style dicts, durations and datetimes into the REST JSON shape."""
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict) and not isinstance(value, Mapping | type):
        return to_rest(as_dict())
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = camel_case(str(key))
            if name in _FREE_FORM_KEYS:
                result[name] = copy.deepcopy(item)
            elif name in _DURATION_KEYS and isinstance(item, int | float) and not isinstance(item, bool):
                result[name] = to_iso_duration(item, name)
            else:
                result[name] = to_rest(item)
        return result
    if isinstance(value, list | tuple):
        return [to_rest(item) for item in value]
    if isinstance(value, timedelta):
        return to_iso_duration(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; nested dicts merge, everything else replaces."""
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def drop_none(value: Any) -> Any:
    """Remove ``None`` values from dicts, recursively (the service rejects explicit nulls in places)."""
    if isinstance(value, Mapping):
        return {key: drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_none(item) for item in value]
    return value


def metadata_list(metadata: Mapping[str, Any] | list[Any] | None) -> list[dict[str, str]] | None:
    """``{"owner": "x"}`` or ``[{"name":..,"value":..}]`` -> the service's name/value list."""
    if metadata is None:
        return None
    if isinstance(metadata, Mapping):
        return [{"name": str(key), "value": str(value)} for key, value in metadata.items()]
    return [to_rest(item) for item in metadata]


def environment_list(env: Mapping[str, Any] | list[Any] | None) -> list[dict[str, str]] | None:
    """``{"VAR": "x"}`` or ``[{"name":..,"value":..}]`` -> ``environmentSettings``."""
    if env is None:
        return None
    if isinstance(env, Mapping):
        return [
            {"name": str(key), "value": "" if value is None else str(value)} for key, value in env.items()
        ]
    return [to_rest(item) for item in env]


def lower_text(value: Any) -> str:
    """A value as the spec comparisons see it: stripped, lower-case text (``""`` only for ``None``)."""
    return "" if value is None else str(value).strip().lower()
