"""Every request body checked against the service's schema, in one place, before any model sees it.

The schema is ``request_schema.json`` beside this module: the REST specification's operations and the
definitions their bodies reach (``scripts/generate_request_schema.py`` rebuilds it). For a request,
:func:`read_body` picks the operation by method and path, refuses a body over the route's size limit
with 413 ``RequestBodyTooLarge`` without reading it whole, parses it within bounds
(:mod:`~airflow_batch_provider.emulator.bounded_json`), applies the leniency the service has
(numeric strings for numbers, ``"true"``/``"false"`` for booleans, enum values in any case, omitted
node counts) and validates it with ``jsonschema``. The first problem is answered in the service's
shape, naming the property: 400 ``InvalidPropertyValue`` or ``MissingRequiredProperty``. Models then
see the parsed, coerced body through ``routes.common.read_json``.

A task collection (up to 100 tasks) is first checked by a compiled ``fastjsonschema`` check of the
same schema (int32 and int64 formats as bounds), a few microseconds per task; only a body it refuses
goes through ``jsonschema``, which finds the outermost problem and names it. So ``jsonschema`` stays
the judge of every refusal; the fast check may only refuse more, never accept more.

Older api-versions send slightly different bodies: moved properties are first put where 2025-06-01
has them (``api_versions.upgrade``), and :data:`VERSION_DIFFERENCES` lists what else differs.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import fastjsonschema
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from starlette.concurrency import run_in_threadpool

from airflow_batch_provider.emulator import bounded_json
from airflow_batch_provider.emulator.api_versions import LATEST, SUPPORTED_VERSIONS, upgrade
from airflow_batch_provider.emulator.errors import BatchError, invalid_property, missing_property
from airflow_batch_provider.emulator.serialization import checked_duration

if TYPE_CHECKING:
    from starlette.requests import Request

#: The largest body of any operation: the service documents 1 MB for a task and for a task collection
#: and no other limit, and a pool, job or schedule body is a few KB, so 1 MB bounds every body.
MAX_BODY_BYTES = 1024 * 1024
#: Per-operation limits (operationId: bytes), where the service documents one.
BODY_LIMITS: dict[str, int] = {
    "Tasks_CreateTask": 1024 * 1024,
    "Tasks_CreateTaskCollection": 1024 * 1024,
    "Tasks_ReplaceTask": 1024 * 1024,
}

#: Operations whose bodies get the compiled check first: a collection's validation grows with its
#: tasks. Compiling costs 0.1-0.7 s per operation, which a single small body never earns back.
FAST_CHECKED = frozenset({"Tasks_CreateTaskCollection"})

#: Bodies larger than this are parsed and validated in a worker thread.
OFF_LOOP_BYTES = 16 * 1024

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,19}")
_NUMBER_TEXT = re.compile(r"[+-]?[0-9]{1,19}(?:\.[0-9]{1,19})?(?:[eE][+-]?[0-9]{1,3})?")


@dataclass(frozen=True)
class VersionDifference:
    """How one property of an older api-version's body differs from the committed (2025-06-01) schema.

    ``schema`` replaces the property's schema in ``definition`` (``None`` removes the property, so
    anything is accepted for it); ``required`` replaces the definition's required list when given.
    ``source`` says where in that version's specification the fact is.
    """

    versions: frozenset[str]
    definition: str
    property: str
    schema: dict[str, Any] | None
    source: str
    required: tuple[str, ...] | None = None


#: The api-version of the committed schema, and the older ones the service still serves.
CURRENT_VERSION = LATEST
OLDER_VERSIONS = frozenset(SUPPORTED_VERSIONS) - {LATEST}

_CERTIFICATE_REFERENCES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "thumbprint": {"type": "string"},
            "thumbprintAlgorithm": {"type": "string"},
            "storeLocation": {"type": "string"},
            "storeName": {"type": "string"},
            "visibility": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["thumbprint", "thumbprintAlgorithm"],
    },
}

#: The facts, read from ``specification/batch/data-plane/Batch/stable/<version>/BatchService.json`` in
#: Azure/azure-rest-api-specs. A property an older version has and 2025-06-01 dropped needs an entry
#: only to keep its type checked: unknown properties are otherwise accepted (and ignored).
VERSION_DIFFERENCES: tuple[VersionDifference, ...] = tuple(
    VersionDifference(
        versions=OLDER_VERSIONS,
        definition=definition,
        property="certificateReferences",
        schema=_CERTIFICATE_REFERENCES,
        source=f"{older}.certificateReferences: array of CertificateReference (thumbprint, "
        "thumbprintAlgorithm required); account certificates are gone from 2025-06-01",
    )
    for definition, older in (
        ("BatchPoolCreateOptions", "PoolAddParameter"),
        ("BatchPoolSpecification", "PoolSpecification"),
        ("BatchPoolUpdateOptions", "PoolPatchParameter"),
        ("BatchPoolReplaceOptions", "PoolUpdatePropertiesParameter"),
    )
)


@dataclass(frozen=True)
class Operation:
    """One REST operation of the specification, and the definition its body must match."""

    operation_id: str
    method: str
    pattern: re.Pattern[str]
    body: dict[str, Any] | None
    body_required: bool

    @property
    def max_body_bytes(self) -> int:
        return BODY_LIMITS.get(self.operation_id, MAX_BODY_BYTES)


@cache
def request_schema() -> dict[str, Any]:
    """The committed Swagger 2.0 subset (operations and request-body definitions)."""
    text = files("airflow_batch_provider.emulator").joinpath("request_schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def operations() -> tuple[Operation, ...]:
    found = []
    for path, methods in request_schema()["paths"].items():
        pattern = re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)))
        for method, operation in methods.items():
            body = next((p for p in operation["parameters"] if p["in"] == "body"), None)
            found.append(
                Operation(
                    operation["operationId"],
                    method.upper(),
                    pattern,
                    body["schema"] if body else None,
                    bool(body and body.get("required")),
                )
            )
    # Literal segments first, so /pools/{poolId}/resize is not taken for /pools/{poolId}/{x}.
    found.sort(key=lambda operation: operation.pattern.pattern.count("[^/]+"))
    return tuple(found)


def find_operation(method: str, path: str) -> Operation | None:
    method = method.upper()
    return next(
        (op for op in operations() if op.method == method and op.pattern.fullmatch(path)),
        None,
    )


@cache
def _definitions(api_version: str) -> dict[str, Any]:
    definitions: dict[str, Any] = request_schema()["definitions"]
    differences = [diff for diff in VERSION_DIFFERENCES if api_version in diff.versions]
    if not differences:
        return definitions
    definitions = copy.deepcopy(definitions)
    for diff in differences:
        target = definitions[diff.definition]
        if diff.schema is None:
            target.get("properties", {}).pop(diff.property, None)
        else:
            target.setdefault("properties", {})[diff.property] = diff.schema
        if diff.required is not None:
            target["required"] = list(diff.required)
    return definitions


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("duration", raises=ValueError)
def _is_duration(value: object) -> bool:
    return not isinstance(value, str) or bool(checked_duration(value) is not None)


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    from airflow_batch_provider.emulator.odata import parse_datetime

    if isinstance(value, str) and parse_datetime(value) is None:
        raise ValueError("The value must be an ISO 8601 date and time.")
    return True


def _int_range(name: str) -> Callable[[object], bool]:
    low, high = _INT_RANGES[name]

    def check(value: object) -> bool:
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise ValueError(f"The value must be between {low} and {high}.")
        return True

    return check


for _name in _INT_RANGES:
    _FORMATS.checks(_name, raises=ValueError)(_int_range(_name))


@cache
def _validator(reference: str, api_version: str) -> Draft4Validator:
    schema = {"$ref": reference, "definitions": _definitions(api_version)}
    return Draft4Validator(schema, format_checker=_FORMATS)


def _accepts(check: Callable[[object], bool]) -> Callable[[object], bool]:
    def accepts(value: object) -> bool:
        try:
            return bool(check(value))
        except ValueError:
            return False

    return accepts


def _with_integer_bounds(node: Any) -> Any:
    """The schema with each int32/int64 format also stated as ``minimum``/``maximum``.

    ``fastjsonschema`` checks formats of strings only, so a range format of a number becomes bounds
    (the tighter of the format's and the schema's own).
    """
    if isinstance(node, list):
        return [_with_integer_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _with_integer_bounds(value) for key, value in node.items()}
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _INT_RANGES:
        low, high = _INT_RANGES[fmt]
        result["minimum"] = max(node.get("minimum", low), low)
        result["maximum"] = min(node.get("maximum", high), high)
    return result


def _schema_formats(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*map(_schema_formats, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["format"]} if isinstance(node.get("format"), str) else set()
    return found.union(*map(_schema_formats, node.values()))


@cache
def _fast_check(reference: str, api_version: str) -> Callable[[Any], Any]:
    """A compiled check that accepts exactly the bodies ``_validator`` accepts without any error.

    Formats ``_FORMATS`` does not check are accepted as ``jsonschema`` accepts them; defaults are
    never filled in (the body is not changed).
    """
    definitions = _with_integer_bounds(_definitions(api_version))
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "$ref": reference,
        "definitions": definitions,
    }
    formats: dict[str, Callable[[object], bool]] = dict.fromkeys(_schema_formats(definitions), lambda _: True)
    for name in ("duration", "date-time"):
        formats[name] = _accepts(_FORMATS.checkers[name][0])
    check: Callable[[Any], Any] = fastjsonschema.compile(schema, formats=formats, use_default=False)
    return check


def conforms(reference: str, api_version: str, body: Any) -> bool:
    """Whether ``body`` matches the definition at ``reference``: the fast check of :func:`validate_body`."""
    try:
        _fast_check(reference, api_version)(body)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


# ---- leniency: what the service accepts beyond the schema, applied before validation


class _Coercer:
    """Rewrites lenient inputs into the schema's types, guided by the schema (in place)."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.definitions[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def coerce(self, value: Any, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        for part in schema.get("allOf", ()):
            value = self.coerce(value, part)
        if isinstance(value, str):
            return _coerce_text(value, schema)
        if isinstance(value, dict):
            _default_node_counts(value, schema)
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for name, child in value.items():
                child_schema = properties.get(name, extra if isinstance(extra, dict) else None)
                if child_schema is not None:
                    value[name] = self.coerce(child, child_schema)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            value[:] = [self.coerce(item, schema["items"]) for item in value]
        return value


def _coerce_text(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    text = value.strip()
    if kind == "integer" and _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if kind == "number" and _NUMBER_TEXT.fullmatch(text):
        return float(text)
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "enum" in schema:
        # The service takes enum values in any case and answers them in its own casing.
        canonical = {str(option).lower(): option for option in schema["enum"]}
        return canonical.get(value.lower(), value)
    return value


def _default_node_counts(value: dict[str, Any], schema: dict[str, Any]) -> None:
    """A pool (or auto-pool) that sets neither node count and no autoscale gets 0 of each."""
    properties = schema.get("properties", {})
    if "targetDedicatedNodes" not in properties or "vmSize" not in properties:
        return
    if str(value.get("enableAutoScale")).lower() == "true":
        return
    if value.get("targetDedicatedNodes") is None and value.get("targetLowPriorityNodes") is None:
        value["targetDedicatedNodes"] = 0
        value["targetLowPriorityNodes"] = 0


# ---- the service's error for a schema violation


def property_path(parts: Iterable[str | int]) -> str:
    """``startTask/resourceFiles[0]/filePath``: how the service names a property in its errors."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f"/{part}" if path else part
    return path


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 256 else text[:253] + "..."


_ARTICLES = {
    "object": "a JSON object",
    "array": "a JSON array",
    "integer": "an integer",
    "string": "a string",
}


def _reason(error: ValidationError) -> str:
    if error.validator == "type":
        expected = error.validator_value
        return f"The value must be {_ARTICLES.get(expected, f'a {expected}')}."
    if error.validator == "enum":
        return f"The value must be one of: {', '.join(map(str, error.validator_value))}."
    if error.validator == "format" and error.cause is not None:
        return str(error.cause).rstrip(".") + "."
    if error.validator == "format":
        return f"The value must be a valid {error.validator_value}."
    if error.validator in ("minimum", "maximum"):
        bound = "at least" if error.validator == "minimum" else "at most"
        return f"The value must be {bound} {error.validator_value}."
    return error.message


def _to_batch_error(error: ValidationError) -> BatchError:
    path = property_path(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next(name for name in error.validator_value if name not in error.instance)
        return missing_property(property_path([*error.absolute_path, missing]))
    return invalid_property(path, _shown(error.instance), _reason(error))


def _relevant(errors: Iterable[ValidationError]) -> list[ValidationError]:
    # A property set to ``null`` is "not given", as the service's deserializer treats it; a null item
    # of an array is a wrong value.
    return [
        error
        for error in errors
        if not (error.validator == "type" and error.instance is None and not _in_array(error))
    ]


def _in_array(error: ValidationError) -> bool:
    return bool(error.path) and isinstance(error.path[-1], int)


def validate_body(operation: Operation, body: Any, api_version: str) -> Any:
    """Coerce ``body`` as the service's leniency allows and validate it; the service's 400 otherwise."""
    if operation.body is None:
        return body
    # Any other version shares the committed schema (and the caches stay bounded by the table).
    api_version = api_version if api_version in OLDER_VERSIONS else CURRENT_VERSION
    definitions = _definitions(api_version)
    body = _Coercer(definitions).coerce(body, operation.body)
    if operation.operation_id in FAST_CHECKED and conforms(operation.body["$ref"], api_version, body):
        return body
    validator = _validator(operation.body["$ref"], api_version)
    errors = _relevant(validator.iter_errors(body))
    if errors:
        # The outermost problem first, as the service's deserializer meets it.
        raise min((_to_batch_error(error) for error in errors), key=_depth)
    return body


def _depth(error: BatchError) -> int:
    name = error.values.get("PropertyName", "")
    return name.count("/") + name.count("[")


# ---- reading the body


def _too_large(limit: int) -> BatchError:
    return BatchError(
        413,
        "RequestBodyTooLarge",
        "The request body is too large and exceeds the maximum permissible limit.",
        {"MaxLimit": str(limit)},
    )


async def read_raw(request: Request, limit: int) -> bytes:
    """The body, read up to ``limit`` bytes; 413 ``RequestBodyTooLarge`` past it (never read whole)."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    # Later readers (routes, Content-MD5) get the same bytes from ``request.body()``.
    request._body = raw
    return raw


async def read_body(request: Request, api_version: str) -> None:
    """Read, parse and validate the request's body once; the result is ``request.state.json_body``.

    Bodies of operations outside the specification (the emulator's own endpoints) are only bounded
    in size; their routes parse them.
    """
    operation = find_operation(request.method, request.url.path)
    limit = operation.max_body_bytes if operation else MAX_BODY_BYTES
    raw = await read_raw(request, limit)
    if operation is None or operation.body is None:
        return
    if not raw.strip() and not operation.body_required:
        return
    if len(raw) > OFF_LOOP_BYTES:
        # A large body (a 100-task collection) takes tens of milliseconds: not on the API's loop.
        request.state.json_body = await run_in_threadpool(parse_and_validate, operation, raw, api_version)
    else:
        request.state.json_body = parse_and_validate(operation, raw, api_version)


def parse_and_validate(operation: Operation, raw: bytes, api_version: str) -> Any:
    # An empty required body is an empty object: its required properties are then named as missing.
    body = bounded_json.loads(raw) if raw.strip() else {}
    if isinstance(body, dict):
        # Properties an older version has elsewhere are checked where the models read them.
        body = upgrade(body, api_version)
    return validate_body(operation, body, api_version)
