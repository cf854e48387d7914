"""One conversion for every duration a user passes: seconds, ``timedelta`` or ISO 8601."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_batch_provider.batch.durations import (
    UNBOUNDED_DURATION,
    parse_duration,
    to_iso_duration,
    to_seconds,
    to_timedelta,
)
from airflow_batch_provider.exceptions import InvalidInputError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(minutes=5), timedelta(minutes=5)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        ("600", timedelta(minutes=10)),  # a rendered template
        ("PT2H", timedelta(hours=2)),
        (" P1DT30M ", timedelta(days=1, minutes=30)),
        (None, None),
        ("", None),
    ],
)
def test_every_form_of_duration_converts(value: object, expected: timedelta | None) -> None:
    assert to_timedelta(value, "wait_timeout") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (-1, "cannot be negative"),
        ("-PT1H", "cannot be negative"),
        (timedelta(seconds=-1), "cannot be negative"),
        (1e300, "too long"),
        (10**400, "finite"),
        ("1e309", "finite"),
        ("P99999999999999999999D", "too long"),
        ("PT99999999999999999999H", "too long"),
        ("1 hour", "not an ISO 8601 duration"),
        ("PT1H\n5M", "not an ISO 8601 duration"),
        (True, "not a duration"),
        ([60], "not a duration"),
    ],
)
def test_bad_durations_name_the_field_and_the_fix(value: object, phrase: str) -> None:
    # Regression: NaN, infinite and overflowing values raised raw ValueError/OverflowError.
    with pytest.raises(InvalidInputError, match=phrase) as info:
        to_timedelta(value, "wait_timeout")  # type: ignore[arg-type]
    assert "wait_timeout" in str(info.value)
    assert "timedelta" in str(info.value) or "at most" in str(info.value)


def test_iso_durations_keep_their_text_and_numbers_are_formatted() -> None:
    assert to_iso_duration("PT5M", "max_wall_clock_time") == "PT5M"
    assert to_iso_duration("3600", "max_wall_clock_time") == "PT1H"
    assert to_iso_duration(timedelta(days=11_000_000), "x") == UNBOUNDED_DURATION
    assert to_seconds(timedelta(minutes=2), "poll_interval") == 120.0


def test_a_maximum_is_enforced_with_the_field_name() -> None:
    with pytest.raises(InvalidInputError, match=r"sas_ttl .* too long"):
        to_timedelta(timedelta(days=4000), "sas_ttl", maximum=timedelta(days=3650))


def test_parsing_an_overflowing_iso_duration_raises_value_error_only() -> None:
    # The emulator answers ValueError with a 400; an OverflowError became a 500.
    with pytest.raises(ValueError, match="too long"):
        parse_duration("P99999999999999999999D")
