"""The committed request schema, its generator and the table of older api-versions' differences."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.request_bodies import (
    OLDER_VERSIONS,
    VERSION_DIFFERENCES,
    find_operation,
    operations,
    request_schema,
    validate_body,
)

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT.parent / "shared" / "specs" / "BatchService-2025-06-01.json"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_request_schema", ROOT / "scripts" / "generate_request_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not SPEC.exists(), reason="the REST specification is not beside the repository")
def test_committed_schema_is_what_the_generator_makes_from_the_spec() -> None:
    assert _generator().reduce_spec(json.loads(SPEC.read_text())) == request_schema()


@pytest.mark.skipif(not SPEC.exists(), reason="the REST specification is not beside the repository")
def test_every_body_parameter_of_the_spec_is_mapped() -> None:
    spec = json.loads(SPEC.read_text())
    with_body = {
        op["operationId"]
        for methods in spec["paths"].values()
        for op in methods.values()
        if isinstance(op, dict) and any(p.get("in") == "body" for p in op.get("parameters", []))
    }
    assert with_body == {op.operation_id for op in operations() if op.body is not None}


def test_routes_map_to_their_operation_literal_segments_first() -> None:
    assert find_operation("POST", "/pools/p1/resize").operation_id == "Pools_ResizePool"  # type: ignore[union-attr]
    assert find_operation("POST", "/jobs/j/addtaskcollection").operation_id == "Tasks_CreateTaskCollection"  # type: ignore[union-attr]
    assert find_operation("POST", "/nowhere") is None


def test_older_versions_check_the_properties_they_still_had() -> None:
    create_pool = find_operation("POST", "/pools")
    assert create_pool is not None
    body = {"id": "p", "vmSize": "standard_d2s_v3", "certificateReferences": [{"thumbprint": 5}]}
    assert validate_body(create_pool, json.loads(json.dumps(body)), "2025-06-01")["id"] == "p"
    for version in OLDER_VERSIONS:
        with pytest.raises(BatchError) as excinfo:
            validate_body(create_pool, json.loads(json.dumps(body)), version)
        assert excinfo.value.values["PropertyName"] == "certificateReferences[0]/thumbprint"


def test_every_version_difference_names_a_definition_of_the_schema() -> None:
    definitions = request_schema()["definitions"]
    assert all(diff.definition in definitions and diff.source for diff in VERSION_DIFFERENCES)
