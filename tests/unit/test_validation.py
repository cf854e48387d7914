"""Input validation helpers: container names and blob prefixes."""

from __future__ import annotations

import pytest

from airflow_batch_provider.batch.validation import normalize_blob_prefix, validate_container_name
from airflow_batch_provider.exceptions import InvalidInputError


@pytest.mark.parametrize(
    "name",
    ["abc", "inputs", "run-2026-01-01", "a1b", "0-9", "a" * 63, "$root", "$web", "$logs"],
)
def test_valid_container_names(name: str) -> None:
    assert validate_container_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason", "suggestion"),
    [
        ("ab", "it has 2 characters, not 3 to 63", None),
        ("a" * 64, "it has 64 characters, not 3 to 63", "a" * 63),
        ("Inputs", "it contains 'I'", "inputs"),
        ("my_data", "it contains '_'", "my-data"),
        ("my data.v2", "it contains ' ', '.'", "my-data-v2"),
        ("a--b", "it contains consecutive hyphens", "a-b"),
        ("-abc", "it starts or ends with a hyphen", "abc"),
        ("abc-", "it starts or ends with a hyphen", "abc"),
        ("", "it has 0 characters", None),
    ],
)
def test_invalid_container_names_explain_the_rule(name: str, reason: str, suggestion: str | None) -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_container_name(name, field="output_container")
    message = str(error.value)
    assert message.startswith(f"output_container {name!r} is not a valid Blob container name")
    assert reason in message
    assert "lower-case letters, digits and single hyphens" in message
    if suggestion:
        assert f"For example: {suggestion!r}" in message
    else:
        assert "For example" not in message


def test_default_field_name_and_type_check() -> None:
    with pytest.raises(InvalidInputError, match=r"^container 'A' is not"):
        validate_container_name("A")
    with pytest.raises(InvalidInputError, match="container must be a string"):
        validate_container_name(None)  # type: ignore[arg-type]


def test_invalid_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_container_name("no")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (None, ""),
        ("", ""),
        ("/", ""),
        ("inputs", "inputs/"),
        ("inputs/", "inputs/"),
        ("/inputs//run-1/", "inputs/run-1/"),
        ("a\\b", "a/b/"),
    ],
)
def test_prefix_normalisation(prefix: str | None, expected: str) -> None:
    assert normalize_blob_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["../x", "a/./b", "a/.."])
def test_prefix_dot_segments_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^blob_prefix .* contains a '\.' or '\.\.' segment"):
        normalize_blob_prefix(prefix, field="blob_prefix")


def test_prefix_too_long() -> None:
    with pytest.raises(InvalidInputError, match="limited to 1024"):
        normalize_blob_prefix("p" * 1024)
