"""The fast check of request bodies accepts exactly what ``jsonschema`` accepts, so no refusal is lost."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_batch_provider.emulator import request_bodies
from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.request_bodies import (
    CURRENT_VERSION,
    OLDER_VERSIONS,
    conforms,
    find_operation,
    validate_body,
)

INT32 = (-(2**31), 2**31 - 1)
#: The bodies of the operations that get the fast check (``FAST_CHECKED``), and one task alone.
DEFINITIONS = ("BatchTaskGroup", "BatchTaskCreateOptions")

_DURATIONS = ["PT1M", "P1DT2H", "PT0S", "PT", "P-1D", "1 minute"]
_DATETIMES = ["2026-12-04T19:00:00Z", "2026-12-04T19:00:00.5+01:00", "2026-13-01T00:00:00Z", "yesterday"]
#: A value of any JSON type: what a wrong property holds.
_ANY = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.just({})
    | st.just([])
)


def _definitions() -> dict[str, Any]:
    return request_bodies.request_schema()["definitions"]  # type: ignore[no-any-return]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _definitions()[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _shaped(schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    """Values of the schema's type, near its edges (bounds, formats), some just past them."""
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "object":
        properties = schema.get("properties", {}) if depth < 3 else {}
        required = [name for name in schema.get("required", []) if name in properties]
        return st.fixed_dictionaries(
            {name: _values(properties[name], depth + 1) for name in required},
            optional={
                name: _values(child, depth + 1) for name, child in properties.items() if name not in required
            },
        )
    if kind == "array" and isinstance(schema.get("items"), dict) and depth < 3:
        return st.lists(_values(schema["items"], depth + 1), max_size=2)
    if kind == "integer":
        edges = [INT32[0] - 1, INT32[0], INT32[1], INT32[1] + 1, 2**63, -1, 0, 1]
        edges += [
            schema[bound] + step for bound in ("minimum", "maximum") if bound in schema for step in (-1, 0, 1)
        ]
        return st.sampled_from(edges) | st.integers(min_value=-100, max_value=100)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    if schema.get("format") == "duration":
        return st.sampled_from(_DURATIONS)
    if schema.get("format") == "date-time":
        return st.sampled_from(_DATETIMES)
    return st.text(max_size=6)


def _values(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for ``schema``: mostly of its shape, now and then of any other type (or a null)."""
    schema = _resolve(schema)
    return st.deferred(
        lambda: st.integers(0, 24).flatmap(lambda k: _ANY if k == 0 else _shaped(schema, depth))
    )


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(map(_has_null, value.values()))
    if isinstance(value, list):
        return any(map(_has_null, value))
    return False


@st.composite
def _cases(draw: st.DrawFn) -> tuple[str, str, Any]:
    name = draw(st.sampled_from(DEFINITIONS))
    version = draw(st.sampled_from(sorted(OLDER_VERSIONS | {CURRENT_VERSION})))
    body = draw(_values({"$ref": f"#/definitions/{name}"}))
    return f"#/definitions/{name}", version, body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_the_fast_check_agrees_with_jsonschema(case: tuple[str, str, Any]) -> None:
    reference, version, body = case
    errors = request_bodies._relevant(request_bodies._validator(reference, version).iter_errors(body))
    if conforms(reference, version, body):
        assert errors == [], f"the fast check accepted a body jsonschema refuses: {errors[0].message}"
    elif not _has_null(body):
        # A null is "not given" to the service; only there may the fast check refuse what is valid.
        assert errors, "the fast check refused a valid body (it would only be slow, but should not)"


def _collection(count: int) -> dict[str, Any]:
    return {"value": [{"id": f"t{index:05d}", "commandLine": "/bin/true"} for index in range(count)]}


def test_a_valid_task_collection_is_accepted_without_the_slow_validator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operation = find_operation("POST", "/jobs/job-1/addtaskcollection")
    assert operation is not None

    def slow_validator(*args: object) -> None:
        raise AssertionError("a valid body went through jsonschema")

    monkeypatch.setattr(request_bodies, "_validator", slow_validator)
    assert validate_body(operation, _collection(100), CURRENT_VERSION) == _collection(100)


@pytest.mark.parametrize(
    ("task", "property_name"),
    [
        ({"id": "t1", "commandLine": "x", "constraints": {"maxTaskRetryCount": 2**31}}, "maxTaskRetryCount"),
        ({"id": "t1", "commandLine": "x", "constraints": {"maxWallClockTime": "PT"}}, "maxWallClockTime"),
        ({"id": "t1"}, "commandLine"),
    ],
)
def test_a_refused_task_in_a_collection_is_named_by_jsonschema(
    task: dict[str, Any], property_name: str
) -> None:
    operation = find_operation("POST", "/jobs/job-1/addtaskcollection")
    assert operation is not None
    body = {"value": [*_collection(99)["value"], task]}
    with pytest.raises(BatchError) as excinfo:
        validate_body(operation, body, CURRENT_VERSION)
    assert excinfo.value.status == 400
    assert excinfo.value.values["PropertyName"].startswith("value[99]")
    assert excinfo.value.values["PropertyName"].endswith(property_name)
