"""Turning rendered templates into Batch ids that the service accepts and that stay unique."""

from __future__ import annotations

import re

import pytest

from airflow_batch_provider.batch.ids import is_valid_batch_id, make_batch_id, task_id_for, to_batch_id
from airflow_batch_provider.exceptions import InvalidInputError

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_valid_ids_are_kept_unchanged() -> None:
    assert make_batch_id("etl-run_1") == "etl-run_1"
    assert make_batch_id("A" * 64) == "A" * 64


def test_run_ids_become_valid_and_keep_their_readable_part() -> None:
    run_id = "my_dag-manual__2026-01-01T00:00:00.123456+00:00"
    out = make_batch_id(run_id)
    assert VALID.match(out)
    assert out.startswith("my_dag-manual__2026-01-01T00-00-00-123456-00-00-")
    assert make_batch_id(run_id) == out  # deterministic: a retry computes the same id


def test_inputs_differing_only_in_forbidden_characters_get_different_ids() -> None:
    assert make_batch_id("a:b") != make_batch_id("a.b")
    assert make_batch_id("a b") != make_batch_id("a-b")  # "a-b" is valid and kept; "a b" gets a hash


def test_long_values_are_truncated_with_a_hash_and_stay_unique() -> None:
    first = make_batch_id("x" * 100 + "1")
    second = make_batch_id("x" * 100 + "2")
    assert len(first) == 64 and len(second) == 64
    assert VALID.match(first) and first != second


def test_max_length_is_honoured() -> None:
    out = make_batch_id("dag-with-a-long-name/and/slashes", max_length=20)
    assert len(out) <= 20 and VALID.match(out)


def test_empty_value_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        make_batch_id("   ")


def test_only_forbidden_characters_still_give_an_id() -> None:
    out = make_batch_id("!!!")
    assert VALID.match(out)


def test_task_id_for_joins_prefix_and_local_id() -> None:
    assert task_id_for("run1", "00001") == "run1-00001"
    assert is_valid_batch_id(task_id_for("p" * 60, "local-id"))


@pytest.mark.parametrize("value", ["x\n", "job-1\n", "a" * 63 + "\n"])
def test_a_trailing_newline_is_not_a_valid_id(value: str) -> None:
    # Regression: ``^...$`` with re.match accepted "x\n", so tasks "x" and "x\n" could coexist.
    assert not is_valid_batch_id(value)
    converted = make_batch_id(value)
    assert converted != value and VALID.fullmatch(converted)
    assert converted != make_batch_id(value.rstrip("\n"))


def test_an_id_argument_converts_once_naming_its_field() -> None:
    assert to_batch_id("etl-run_1", "job_id") == "etl-run_1"
    assert to_batch_id(42, "job_id") == "42"
    for empty in (None, "", "   ", True):
        with pytest.raises(InvalidInputError, match=r"job_id is empty.*non-empty"):
            to_batch_id(empty, "job_id")
