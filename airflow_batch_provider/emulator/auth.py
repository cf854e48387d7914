"""Shared Key authentication, verified the way the Batch service verifies it.

The client signs ``HMAC-SHA256(base64decode(key), string_to_sign)`` where the string to sign is the
method, eleven standard headers, every ``ocp-*`` header, ``/<account><path as sent>`` and the sorted
query parameters. A request whose signature does not match, or whose ``ocp-date`` is missing or more
than 15 minutes off, fails with 403 ``AuthenticationFailed`` before anything else happens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from airflow_batch_provider.emulator.errors import BatchError, authentication_failed
from airflow_batch_provider.emulator.serialization import parse_http_date, utcnow

if TYPE_CHECKING:
    from starlette.requests import Request

#: How far the request's ``ocp-date`` may be from the emulator's clock.
MAX_CLOCK_SKEW = timedelta(minutes=15)

SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def string_to_sign(
    method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], account_name: str
) -> str:
    """Build the canonical string a Shared Key signature covers."""
    values = {name.lower(): value for name, value in headers.items() if value}
    method = method.upper()
    if method not in ("GET", "HEAD"):
        values.setdefault("content-length", "0")
    elif values.get("content-length") == "0":
        # A transport may add an empty body's length to a GET after the client signed it.
        values.pop("content-length")
    lines = [method, *(values.get(name, "") for name in SIGNED_HEADERS)]
    lines += [f"{name}:{values[name]}" for name in sorted(name for name in values if "ocp-" in name)]
    canonical = "\n".join(lines) + "\n" + f"/{account_name}{raw_path}"
    # Like Azure Storage's Shared Key: a repeated name signs all its values, sorted and comma-joined,
    # so a value appended after signing changes the string and fails the check.
    query = parse_qs(raw_query, keep_blank_values=False)
    for name in sorted(query):
        value = ",".join(sorted(query[name]))
        if value:
            canonical += f"\n{name}:{value}"
    return canonical


def sign(key: str, canonical: str) -> str:
    digest = hmac.new(base64.b64decode(key), canonical.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization_header(
    method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], account_name: str, key: str
) -> str:
    """The ``Authorization`` value a correct client sends (used by tests that sign raw requests)."""
    canonical = string_to_sign(method, raw_path, raw_query, headers, account_name)
    return f"SharedKey {account_name}:{sign(key, canonical)}"


def verify_received(request: Request, account_name: str, account_key: str) -> None:
    """:func:`verify_request` for a request as the server received it: path still percent-encoded.

    Only the headers are needed (the signature covers ``Content-Length``, not the body), so this runs
    before a byte of the body is read.
    """
    raw_path: bytes = request.scope.get("raw_path") or str(request.scope["path"]).encode("utf-8")
    verify_request(
        request.method,
        raw_path.decode("latin-1"),
        request.scope.get("query_string", b"").decode("latin-1"),
        request.headers,
        account_name,
        account_key,
    )


def verify_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    account_name: str,
    account_key: str,
) -> None:
    """Raise :class:`BatchError` (403) unless the request carries a valid Shared Key signature."""
    authorization = headers.get("authorization")
    if not authorization:
        raise authentication_failed("The Authorization header was not found in the request.")
    scheme, _, credentials = authorization.partition(" ")
    name, _, signature = credentials.strip().rpartition(":")
    if scheme != "SharedKey" or not name or not signature:
        raise authentication_failed(
            "The Authorization header is not in a valid format: expected 'SharedKey <account>:<signature>'."
        )
    if name != account_name:
        raise authentication_failed(f"The account name '{name}' in the Authorization header is not known.")
    ocp_date = headers.get("ocp-date") or headers.get("date")
    if not ocp_date:
        raise authentication_failed("The request has no ocp-date (or Date) header.")
    sent_at = parse_http_date(ocp_date)
    if sent_at is None:
        raise authentication_failed(f"The ocp-date header '{ocp_date}' is not an RFC 1123 date.")
    now = utcnow()
    if abs(now - sent_at) > MAX_CLOCK_SKEW:
        raise authentication_failed(
            f"Request date header too old or too far in the future: '{ocp_date}'. "
            f"The server time is '{now.strftime('%a, %d %b %Y %H:%M:%S GMT')}' and at most 15 minutes of "
            "clock skew are allowed."
        )
    canonical = string_to_sign(method, raw_path, raw_query, headers, account_name)
    expected = sign(account_key, canonical)
    if not hmac.compare_digest(expected, signature):
        raise authentication_failed(
            f"The MAC signature found in the HTTP request '{signature}' is not the same as any computed "
            f"signature. Server used following string to sign: '{canonical}'."
        )


def verify_content_md5(headers: Mapping[str, str], body: bytes) -> None:
    """400 ``Md5Mismatch`` when the body does not match the ``Content-MD5`` the client sent."""
    content_md5 = headers.get("content-md5")
    if content_md5 and base64.b64encode(hashlib.md5(body).digest()).decode("ascii") != content_md5:
        raise BatchError(
            400,
            "Md5Mismatch",
            "The MD5 value specified in the request did not match the MD5 value calculated by the server.",
            {"UserSpecifiedMd5": content_md5},
        )
