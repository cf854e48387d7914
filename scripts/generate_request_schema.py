"""Rebuild the emulator's request schema from the Batch REST specification.

The emulator validates every request body against the service's own schema, but the product cannot
read the specification at run time, so a reduced copy is committed inside the emulator package
(``airflow_batch_provider/emulator/request_schema.json``). This script regenerates that copy::

    python scripts/generate_request_schema.py ../shared/specs/BatchService-2025-06-01.json

The output is itself a small Swagger 2.0 document, so the API fuzzer can drive it too. It keeps:

* every operation of ``paths`` (implemented by the emulator or not) with its path and query
  parameters and its ``in: body`` parameter, shared ``parameters`` inlined; header parameters,
  responses and examples are dropped;
* only the definitions a request body reaches, each reduced to the keywords that validate a value
  (``type``, ``properties``, ``required``, ``items``, ``enum``, ``format``, bounds such as ``maximum``,
  ``additionalProperties``, ``allOf``, ``$ref``); descriptions, ``x-ms-*`` extensions and read-only
  properties (which clients never send) are removed.

Differences of older api-versions are not regenerated here: they are a short, documented table in
``airflow_batch_provider/emulator/request_bodies.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "airflow_batch_provider" / "emulator" / "request_schema.json"
SCHEMA_KEYWORDS = (
    "type",
    "format",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "items",
    "additionalProperties",
    "allOf",
)
PARAMETER_KEYWORDS = (
    "name",
    "in",
    "required",
    "type",
    "format",
    "enum",
    "minimum",
    "maximum",
    "items",
    "collectionFormat",
)
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head")


def reduce_schema(schema: dict[str, Any], reached: set[str]) -> dict[str, Any]:
    """The validating part of one schema; records the definitions it refers to in ``reached``."""
    if "$ref" in schema:
        reached.add(schema["$ref"].rsplit("/", 1)[-1])
        return {"$ref": schema["$ref"]}
    reduced: dict[str, Any] = {}
    for keyword in SCHEMA_KEYWORDS:
        if keyword not in schema:
            continue
        value = schema[keyword]
        if keyword in ("items", "additionalProperties") and isinstance(value, dict):
            value = reduce_schema(value, reached)
        elif keyword == "allOf":
            value = [reduce_schema(part, reached) for part in value]
        reduced[keyword] = value
    writable = {
        name: prop for name, prop in (schema.get("properties") or {}).items() if not prop.get("readOnly")
    }
    if writable:
        reduced["properties"] = {name: reduce_schema(prop, reached) for name, prop in writable.items()}
    required = [name for name in schema.get("required", []) if name in writable]
    if required:
        reduced["required"] = required
    return reduced


def reduce_parameter(parameter: dict[str, Any], reached: set[str]) -> dict[str, Any] | None:
    if parameter.get("in") == "header":
        return None
    reduced = {key: parameter[key] for key in PARAMETER_KEYWORDS if key in parameter}
    if parameter.get("in") == "body":
        reduced["schema"] = reduce_schema(parameter["schema"], reached)
    return reduced


def reduce_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The Swagger 2.0 subset the emulator validates request bodies with."""
    shared = spec.get("parameters", {})
    reached: set[str] = set()
    paths: dict[str, Any] = {}
    for path, operations in spec["paths"].items():
        for method in HTTP_METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            parameters = []
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = shared[parameter["$ref"].rsplit("/", 1)[-1]]
                reduced = reduce_parameter(parameter, reached)
                if reduced is not None:
                    parameters.append(reduced)
            paths.setdefault(path, {})[method] = {
                "operationId": operation["operationId"],
                "parameters": parameters,
                "responses": {"default": {"description": "The service's answer."}},
            }
    definitions: dict[str, Any] = {}
    pending = set(reached)
    while pending:
        name = pending.pop()
        found: set[str] = set()
        definitions[name] = reduce_schema(spec["definitions"][name], found)
        pending |= found - definitions.keys()
    return {
        "swagger": "2.0",
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": paths,
        "definitions": dict(sorted(definitions.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the Batch REST specification (Swagger 2.0 JSON)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT.name} in the emulator")
    args = parser.parse_args()
    reduced = reduce_spec(json.loads(args.spec.read_text(encoding="utf-8")))
    args.output.write_text(json.dumps(reduced, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(reduced['paths'])} paths, {len(reduced['definitions'])} definitions)")


if __name__ == "__main__":
    main()
