"""ISO 8601 durations as Azure Batch writes them (``PT15M``, ``P1DT2H``, and its "unbounded" value).

Plain code with no dependencies, shared by the operators and the local emulator.
"""

from __future__ import annotations

import re
from datetime import timedelta

#: The service's "no limit" duration (``TimeSpan.MaxValue``).
UNBOUNDED_DURATION = "P10675199DT2H48M5.4775807S"
UNBOUNDED = timedelta.max

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str) -> timedelta:
    """Parse an ISO 8601 duration (``PT1H``, ``P7D``, the service's unbounded value); raise ValueError."""
    if value == UNBOUNDED_DURATION:
        return UNBOUNDED
    match = _DURATION.match(value.strip())
    if not match or value.strip() in ("P", "PT") or value.strip().endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    parts = {name: float(amount) for name, amount in match.groupdict().items() if amount and name != "sign"}
    delta = timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )
    return -delta if match.group("sign") else delta


def format_duration(value: timedelta) -> str:
    """Render a duration the way the service does (``PT15M``, ``P1DT2H``, the unbounded value)."""
    if value >= timedelta(days=10675199):
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
