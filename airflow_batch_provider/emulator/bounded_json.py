"""JSON request bodies parsed within fixed bounds: nesting depth, number length, no NUL in strings.

Python's parser would recurse until the interpreter's limit on a body nested 100,000 deep and turn a
5,000-digit number into a ``ValueError`` deep inside ``int``; here both are the service's 400
``InvalidRequestBody``, decided in time linear in the body's size.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_batch_provider.emulator.errors import invalid_body, invalid_property

#: The deepest nesting a body may have (the deepest Batch body, a job schedule, nests about 12 deep).
MAX_DEPTH = 32
#: The most characters a JSON number may have (an int64 has 20, a double in full at most 25).
MAX_NUMBER_LENGTH = 32


class _BodyNotAccepted(ValueError):
    """A bound was exceeded while parsing."""


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _BodyNotAccepted(f"a number has more than {MAX_NUMBER_LENGTH} characters")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _BodyNotAccepted(f"a number has more than {MAX_NUMBER_LENGTH} characters")
    return float(text)


def _constant(text: str) -> Any:
    raise _BodyNotAccepted(f"{text} is not a JSON value")


def loads(raw: bytes | str) -> Any:
    """Parse a JSON body; 400 ``InvalidRequestBody`` when it is not JSON or exceeds a bound.

    Also 400 ``InvalidPropertyValue`` (naming the property) for a string holding a NUL character,
    which no command line, environment variable or path can carry.
    """
    try:
        value = json.loads(raw, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise invalid_body(f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except _BodyNotAccepted as err:
        raise invalid_body(f"The body is not accepted: {err}.") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise invalid_body(f"The body is not valid JSON: {err}") from None
    check_shape(value)
    return value


def check_shape(value: Any) -> None:
    """Walk ``value`` without recursion: at most :data:`MAX_DEPTH` levels and no NUL in any string."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise invalid_body(f"The body nests deeper than {MAX_DEPTH} levels.")
        if isinstance(item, dict):
            prefix = f"{path}/" if path else ""
            pending.extend((child, f"{prefix}{key}", depth + 1) for key, child in item.items())
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))
        elif isinstance(item, str) and "\x00" in item:
            shown = item.replace("\x00", "\\u0000")[:256]
            raise invalid_property(path, shown, "The value must not contain a NUL character.")
