"""Durations: ISO 8601 as Azure Batch writes them (``PT15M``, ``P1DT2H``, its "unbounded" value), and
the one validated conversion of every duration a user passes (seconds, ``timedelta`` or ISO 8601).

Plain code with no Airflow in it, shared by the operators and the local emulator.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

#: The service's "no limit" duration (``TimeSpan.MaxValue``).
UNBOUNDED_DURATION = "P10675199DT2H48M5.4775807S"
UNBOUNDED = timedelta.max
#: Any duration this long or longer is the service's "no limit".
UNBOUNDED_DAYS = 10675199

#: A duration input: a ``timedelta``, a number of seconds, or a string (seconds or ISO 8601).
DurationInput = timedelta | float | int | str

_DURATION = re.compile(
    r"(?P<sign>-)?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_HOW = "Pass a timedelta, a number of seconds or an ISO 8601 duration such as 'PT2H'."


def _invalid(message: str) -> Exception:
    """The provider's ``InvalidInputError``, imported on first use: the emulator imports this module
    and must not load Airflow."""
    from airflow_batch_provider.exceptions import InvalidInputError

    return InvalidInputError(message)


def parse_duration(value: str) -> timedelta:
    """Parse an ISO 8601 duration (``PT1H``, ``P7D``, the service's unbounded value); raise ValueError.

    A duration too long for a ``timedelta`` raises ``ValueError`` too, never ``OverflowError``.
    """
    if value == UNBOUNDED_DURATION:
        return UNBOUNDED
    text = value.strip()
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT", "-P", "-PT") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    parts = {name: float(amount) for name, amount in match.groupdict().items() if amount and name != "sign"}
    try:
        delta = timedelta(
            weeks=parts.get("weeks", 0),
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        )
    except OverflowError:
        raise ValueError(f"ISO 8601 duration too long: {value[:40]!r}") from None
    return -delta if match.group("sign") else delta


def format_duration(value: timedelta) -> str:
    """Render a duration the way the service does (``PT15M``, ``P1DT2H``, the unbounded value)."""
    if value >= timedelta(days=UNBOUNDED_DAYS):
        return UNBOUNDED_DURATION
    total_microseconds = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    days, rest = divmod(total_microseconds, 86400 * 1_000_000)
    hours, rest = divmod(rest, 3600 * 1_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    out = "P"
    if days:
        out += f"{days}D"
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if seconds or micros:
        time_part += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    if time_part:
        out += "T" + time_part
    return out if out != "P" else "PT0S"


def _from_seconds(seconds: float, value: object, field: str) -> timedelta:
    if math.isnan(seconds) or math.isinf(seconds):
        raise _invalid(f"{field} must be a finite number of seconds, got {value!r}. {_HOW}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise _invalid(
            f"{field} {value!r} is too long: a duration is at most {timedelta.max.days:,} days. "
            f"{_HOW} For no limit, leave {field} unset."
        ) from None


def _from_text(text: str, value: object, field: str) -> timedelta:
    if text.upper().startswith(("P", "-P")):
        try:
            return parse_duration(text)
        except ValueError as err:
            reason = "too long" if "too long" in str(err) else "not an ISO 8601 duration"
            raise _invalid(f"{field} {value!r} is {reason}. {_HOW}") from None
    try:
        seconds = float(text)
    except ValueError:
        raise _invalid(f"{field} {value!r} is not an ISO 8601 duration. {_HOW}") from None
    return _from_seconds(seconds, value, field)


def to_timedelta(
    value: DurationInput | None, field: str = "duration", *, maximum: timedelta | None = None
) -> timedelta | None:
    """The one conversion of a user's duration: a ``timedelta``, or ``None`` when unset (``None``/``""``).

    Accepts a ``timedelta``, a number of seconds, or a string holding seconds (a rendered template) or
    an ISO 8601 duration. Anything else, and NaN, infinite, negative or overflowing values (or values
    above ``maximum``), raise
    :class:`~airflow_batch_provider.exceptions.InvalidInputError` naming ``field`` and the fix.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, str):
        delta = _from_text(value.strip(), value, field)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        delta = _from_seconds(seconds, value, field)
    else:
        raise _invalid(f"{field} {value!r} is not a duration. {_HOW}")
    if delta < timedelta(0):
        raise _invalid(f"{field} cannot be negative ({value!r}). {_HOW}")
    if maximum is not None and delta > maximum:
        raise _invalid(f"{field} {value!r} is too long: at most {maximum} is allowed here.")
    return delta


def to_seconds(value: DurationInput | None, field: str = "duration") -> float | None:
    """:func:`to_timedelta` in seconds (``None`` when unset)."""
    delta = to_timedelta(value, field)
    return None if delta is None else delta.total_seconds()


def to_iso_duration(value: DurationInput | None, field: str = "duration") -> str | None:
    """A user's duration as ISO 8601 (``PT1H30M``); an ISO string is kept as written.

    Validated as :func:`to_timedelta` does; ``None`` when unset.
    """
    delta = to_timedelta(value, field)
    if delta is None:
        return None
    if isinstance(value, str) and value.strip().upper().startswith("P"):
        return value.strip()
    return format_duration(delta)


def parse_iso_duration(value: str | None) -> timedelta | None:
    """A duration the service reported; ``None`` for empty, malformed or its "no limit" value."""
    if not value:
        return None
    try:
        result = parse_duration(value)
    except ValueError:
        return None
    if result >= timedelta(days=UNBOUNDED_DAYS):
        return None
    return result


__all__ = [
    "UNBOUNDED",
    "UNBOUNDED_DAYS",
    "UNBOUNDED_DURATION",
    "DurationInput",
    "format_duration",
    "parse_duration",
    "parse_iso_duration",
    "to_iso_duration",
    "to_seconds",
    "to_timedelta",
]
