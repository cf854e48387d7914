"""What every route shares: reading bodies and query options, and shaping the service's responses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request, Response

from airflow_batch_provider.emulator import bounded_json
from airflow_batch_provider.emulator.api_versions import LATEST, shape, upgrade
from airflow_batch_provider.emulator.errors import BatchError, invalid_body
from airflow_batch_provider.emulator.models.account import BatchAccount
from airflow_batch_provider.emulator.models.base import Resource
from airflow_batch_provider.emulator.odata import ListQuery, apply_select
from airflow_batch_provider.emulator.serialization import format_http_date

JSON_MEDIA_TYPE = "application/json;odata=minimalmetadata"


def get_account(request: Request) -> BatchAccount:
    account: BatchAccount = request.app.state.account
    return account


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, already checked against the service's schema.

    ``authenticate`` validated it (``request_bodies``); bodies of operations outside the REST
    specification are parsed here within the same bounds. 400 ``InvalidRequestBody`` when not an object.
    """
    body = getattr(request.state, "json_body", None)
    if body is None:
        raw = await request.body()
        body = bounded_json.loads(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise invalid_body("The body must be a JSON object.")
    return upgrade(body, api_version(request))


def api_version(request: Request) -> str:
    """The api-version the request names (checked by the app before any route runs)."""
    return request.query_params.get("api-version") or LATEST


def versioned(request: Request, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as the request's api-version names its properties."""
    return shape(document, api_version(request))


def metadata_url(request: Request, fragment: str) -> str:
    return f"{base_url(request)}/$metadata#{fragment}"


def _dump(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def resource_headers(resource: Resource | None, url: str | None = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if resource is not None:
        headers["ETag"] = resource.etag
        headers["Last-Modified"] = format_http_date(resource.last_modified)
    if url is not None:
        headers["DataServiceId"] = url
    return headers


def entity_response(
    request: Request, resource: Resource, document: dict[str, Any], fragment: str
) -> Response:
    """200 with one resource (``$select`` applied), its ETag and Last-Modified."""
    body = {
        "odata.metadata": metadata_url(request, fragment),
        **apply_select(versioned(request, document), query(request).get("$select")),
    }
    return Response(_dump(body), 200, resource_headers(resource), media_type=JSON_MEDIA_TYPE)


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(_dump(body), status, media_type=JSON_MEDIA_TYPE)


def list_response(request: Request, documents: Sequence[dict[str, Any]], fragment: str) -> Response:
    """200 with one page of a list: ``$filter``, ``$select``, ``maxresults`` and an absolute next link.

    Items are shaped for the request's api-version, and the next link keeps that version.
    """
    options = ListQuery.from_params(query(request))
    list_url = f"{base_url(request)}{request.url.path}"
    version = api_version(request)
    shaped = [shape(document, version) for document in documents]
    body = options.page(shaped, list_url, version, metadata_url(request, fragment))
    return json_response(body)


def created(resource: Resource, url: str) -> Response:
    headers = resource_headers(resource, url)
    headers["Location"] = url
    return Response(status_code=201, headers=headers)


def accepted(resource: Resource | None, url: str) -> Response:
    return Response(status_code=202, headers=resource_headers(resource, url))


def ok(resource: Resource | None, url: str | None = None, status: int = 200) -> Response:
    return Response(status_code=status, headers=resource_headers(resource, url))


def error_response(error: BatchError, request: Request) -> Response:
    if error.status == 304:
        return Response(status_code=304, headers=error.headers)
    request_id = getattr(request.state, "request_id", None)
    body = error.to_dict(base_url(request), request_id)
    return Response(_dump(body), error.status, error.headers, media_type=JSON_MEDIA_TYPE)
