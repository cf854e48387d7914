"""Property-based fuzz of the provider's input checks and its id and duration conversions.

Whatever a user passes, each either returns a valid value or raises the provider's
:class:`~airflow_batch_provider.exceptions.InvalidInputError` (naming the field), never anything else.
The runs are derandomized (a fixed seed) and bounded, so CI sees the same examples every time.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_batch_provider.batch.application_packages import validate_application_id, validate_version
from airflow_batch_provider.batch.durations import (
    format_duration,
    parse_duration,
    to_iso_duration,
    to_seconds,
    to_timedelta,
)
from airflow_batch_provider.batch.ids import (
    MAX_BATCH_ID_LENGTH,
    is_valid_batch_id,
    make_batch_id,
    to_batch_id,
)
from airflow_batch_provider.batch.validation import (
    normalize_blob_prefix,
    validate_batch_id,
    validate_container_name,
    validate_non_negative_int,
    validate_output_destinations,
    validate_task_collection,
)
from airflow_batch_provider.exceptions import InvalidInputError

#: The service's id rule, written out independently of the code under test.
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

FUZZ = settings(
    derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

#: Text that stresses id and name checks: control characters, newlines, separators, non-ASCII, and
#: near-valid ids (``re.search`` semantics also yield a valid id with a trailing newline).
_tricky_text = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.sampled_from("aZ09-_./\\:\n\r\t \x00é$"),
            st.characters(codec="utf-8", exclude_categories=["Cs"]),
        ),
        max_size=80,
    ),
    st.from_regex(r"^[a-z0-9][a-z0-9_.-]{0,70}$"),
)
#: Anything a template or a DAG author might hand an operator argument.
_any_input = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    _tricky_text,
    st.from_regex(r"-?P(\d{1,25}[WD])?(T(\d{1,25}(\.\d{1,3})?[HMS]){0,3})?", fullmatch=True),
    st.timedeltas(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _valid_or_provider_error(check: Callable[[], Any]) -> Any:
    """Run ``check``; a provider error is fine, any other exception fails the property."""
    try:
        return check()
    except InvalidInputError as err:
        assert str(err), "an error must say what is wrong"
        return None


@FUZZ
@given(_any_input)
def test_duration_conversion_returns_a_duration_or_names_the_field(value: Any) -> None:
    delta = _valid_or_provider_error(lambda: to_timedelta(value, "wait_timeout"))
    if delta is not None:
        assert isinstance(delta, timedelta) and delta >= timedelta(0)
    seconds = _valid_or_provider_error(lambda: to_seconds(value, "wait_timeout"))
    if seconds is not None:
        assert math.isfinite(seconds) and seconds >= 0
    _valid_or_provider_error(lambda: to_iso_duration(value, "wait_timeout"))
    try:
        to_timedelta(value, "wait_timeout")
    except InvalidInputError as err:
        assert "wait_timeout" in str(err)


@FUZZ
@given(st.timedeltas(min_value=timedelta(0)))
def test_formatted_durations_parse_back(delta: timedelta) -> None:
    text = to_iso_duration(delta, "max_wall_clock_time")
    assert text is not None
    if delta < timedelta(days=10675199):
        assert parse_duration(text) == delta
        assert to_timedelta(text, "max_wall_clock_time") == delta
    assert format_duration(delta) == text


@FUZZ
@given(_tricky_text)
def test_iso_parser_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):  # anything else fails the property
        parse_duration(text)


@FUZZ
@given(_any_input)
def test_id_conversion_returns_a_valid_id_or_names_the_field(value: Any) -> None:
    converted = _valid_or_provider_error(lambda: to_batch_id(value, "job_id"))
    if converted is not None:
        assert BATCH_ID.fullmatch(converted)
        assert validate_batch_id(converted, "job") == converted


@FUZZ
@given(_tricky_text.filter(lambda text: text.strip() != ""))
def test_generated_ids_are_valid_and_round_trip(value: str) -> None:
    converted = make_batch_id(value)
    assert BATCH_ID.fullmatch(converted) and len(converted) <= MAX_BATCH_ID_LENGTH
    assert make_batch_id(converted) == converted  # a valid id is kept as it is
    assert validate_batch_id(converted) == converted
    assert (converted == value) == bool(BATCH_ID.fullmatch(value)) == is_valid_batch_id(value)


@FUZZ
@given(_any_input)
def test_name_and_number_validators_return_the_value_or_raise_the_provider_error(value: Any) -> None:
    for check in (
        lambda: validate_batch_id(value, "pool"),
        lambda: validate_container_name(value, "container"),
        lambda: normalize_blob_prefix(value, "prefix"),
        lambda: validate_non_negative_int(value, "max_start_task_reboots"),
        lambda: validate_application_id(value),
        lambda: validate_version(value),
    ):
        _valid_or_provider_error(check)
    if _valid_or_provider_error(lambda: validate_batch_id(value)) is not None:
        assert BATCH_ID.fullmatch(value)


_output_file = st.fixed_dictionaries(
    {
        "filePattern": st.sampled_from(["a/result.json", "b/result.json", "*/x", "a/*.json", "../std*.txt"]),
        "destination": st.fixed_dictionaries(
            {
                "container": st.fixed_dictionaries(
                    {
                        "containerUrl": st.sampled_from(["https://a/c?sig=S", "https://a/d"]),
                        "path": st.sampled_from(["", "t", "t/result.json", "t/logs"]),
                    }
                )
            }
        ),
    }
)
_task = st.fixed_dictionaries(
    {"id": _any_input, "commandLine": _any_input},
    optional={
        "requiredSlots": _any_input,
        "outputFiles": st.one_of(
            st.lists(_output_file, max_size=4), st.lists(_any_input, max_size=2), _any_input
        ),
    },
)


@FUZZ
@given(st.lists(_task, max_size=4), st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
def test_task_collection_check_raises_only_the_provider_error(tasks: list[Any], slots: int | None) -> None:
    _valid_or_provider_error(lambda: validate_task_collection(tasks, task_slots_per_node=slots))
    for task in tasks:
        _valid_or_provider_error(lambda task=task: validate_output_destinations(task))
