"""Wire formats the service uses: ISO 8601 datetimes, RFC 1123 dates and ETags.

Durations live in :mod:`airflow_batch_provider.batch.durations`, shared with the operators.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as _format_http_date
from email.utils import parsedate_to_datetime


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
