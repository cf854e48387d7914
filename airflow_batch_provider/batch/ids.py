"""Turn any string, typically a rendered template such as ``{{ dag.dag_id }}-{{ run_id }}``, into a Batch id.

Batch ids (pools, jobs, tasks) allow letters, digits, hyphens and underscores, at most 64 characters.
:func:`make_batch_id` keeps a valid id unchanged and otherwise replaces the forbidden characters and
appends a short hash of the *original* string, so two different inputs never collapse into one id.
"""

from __future__ import annotations

import hashlib
import re

from airflow_batch_provider.exceptions import InvalidInputError

#: The longest id the Batch service accepts.
MAX_BATCH_ID_LENGTH = 64
#: Length of the hash suffix added when an id had to be changed.
HASH_LENGTH = 8

_INVALID = re.compile(r"[^A-Za-z0-9_-]+")
_VALID = re.compile(r"[A-Za-z0-9_-]+")


def short_hash(value: str, length: int = HASH_LENGTH) -> str:
    """A stable hexadecimal digest of ``value`` (not a secret, just a disambiguator)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def is_valid_batch_id(value: str, max_length: int = MAX_BATCH_ID_LENGTH) -> bool:
    """Whether ``value`` is already a valid Batch id of at most ``max_length`` characters."""
    return bool(value) and len(value) <= max_length and bool(_VALID.fullmatch(value))


def make_batch_id(value: str, max_length: int = MAX_BATCH_ID_LENGTH) -> str:
    """Return a valid Batch id for ``value``, deterministic and unique per input.

    A valid id that fits is returned unchanged. Otherwise every run of forbidden characters becomes a
    hyphen, the result is cut to fit and ``-<8 hex digits of sha256(value)>`` is appended.

    >>> make_batch_id("etl-run_1")
    'etl-run_1'
    >>> make_batch_id("etl-manual__2026-01-01T00:00:00+00:00")  # doctest: +ELLIPSIS
    'etl-manual__2026-01-01T00-00-00-00-00-...'
    """
    if not isinstance(value, str):
        value = str(value)
    if max_length < HASH_LENGTH + 2 or max_length > MAX_BATCH_ID_LENGTH:
        raise InvalidInputError(
            f"max_length must be between {HASH_LENGTH + 2} and {MAX_BATCH_ID_LENGTH}, got {max_length}."
        )
    if not value.strip():
        raise InvalidInputError("Cannot build a Batch id from an empty string; pass a non-empty value.")
    if is_valid_batch_id(value, max_length):
        return value
    cleaned = _INVALID.sub("-", value).strip("-") or "id"
    suffix = short_hash(value)
    head = cleaned[: max_length - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else suffix


def to_batch_id(value: object, field: str) -> str:
    """The one conversion of an id argument (pool, job, task prefix): :func:`make_batch_id` of it.

    ``None``, booleans and blank strings raise
    :class:`~airflow_batch_provider.exceptions.InvalidInputError` naming ``field`` and the fix.
    """
    if value is None or isinstance(value, bool) or not str(value).strip():
        raise InvalidInputError(
            f"{field} is empty ({value!r}); pass a non-empty id such as 'etl-{{{{ ds_nodash }}}}' "
            "(any string is made a valid Batch id)."
        )
    return make_batch_id(str(value))


def task_id_for(prefix: str, local_id: str) -> str:
    """The Batch task id for one task of a collection: ``<prefix>-<local id>``, made valid."""
    if not prefix:
        return make_batch_id(local_id)
    return make_batch_id(f"{prefix}-{local_id}")


__all__ = [
    "HASH_LENGTH",
    "MAX_BATCH_ID_LENGTH",
    "is_valid_batch_id",
    "make_batch_id",
    "short_hash",
    "task_id_for",
    "to_batch_id",
]
