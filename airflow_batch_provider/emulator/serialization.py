"""Wire formats the service uses: ISO 8601 datetimes, RFC 1123 dates and ETags.

Durations are parsed by :mod:`airflow_batch_provider.batch.durations` (shared with the operators);
:func:`checked_duration` is the emulator's one conversion of a duration it received.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as _format_http_date
from email.utils import parsedate_to_datetime

from airflow_batch_provider.batch.durations import parse_duration

#: The longest ISO 8601 duration text the emulator parses (the service's unbounded value has 26).
MAX_DURATION_LENGTH = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_datetime(value: datetime) -> str:
    """``2025-06-01T12:00:00.1234567Z``: UTC with seven fractional digits, like the service."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def format_http_date(value: datetime) -> str:
    """RFC 1123, for ``Last-Modified`` and ``ocp-creation-time`` headers."""
    return _format_http_date(value.astimezone(timezone.utc), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_etag_lock = threading.Lock()
_last_etag = 0


def new_etag() -> str:
    """A fresh, strictly increasing opaque ETag such as ``0x8DDB2F1A3C4D5E6``."""
    global _last_etag
    with _etag_lock:
        ticks = (utcnow() - _FILETIME_EPOCH) // timedelta(microseconds=1) * 10
        value = max(ticks + 0x700000000000000, _last_etag + 1)
        _last_etag = value
    return f"0x{value:X}"


def checked_duration(value: str) -> timedelta:
    """A received ISO 8601 duration as a ``timedelta``; ``ValueError`` naming the problem otherwise.

    Bounded: text longer than :data:`MAX_DURATION_LENGTH` and durations past ``timedelta``'s range
    (``P99999999999999999999D``) are refused with ``ValueError``, never ``OverflowError``.
    """
    if len(value) > MAX_DURATION_LENGTH:
        raise ValueError(f"a duration has at most {MAX_DURATION_LENGTH} characters")
    return parse_duration(value)
