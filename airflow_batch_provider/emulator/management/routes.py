"""Resource Manager routes for Batch applications and application packages (the azure-mgmt-batch subset).

Paths, methods and status codes are the ones ``azure.mgmt.batch`` 19 calls and accepts: PUT/GET/PATCH/
DELETE of ``.../applications/{app}``, GET of the list, PUT/GET/DELETE of ``.../versions/{version}``, GET
of the versions list and POST ``.../versions/{version}/activate``. Lists page with ``maxresults`` and
an absolute ``nextLink``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.management.models import (
    Application,
    ApplicationBackend,
    ApplicationPackage,
    ManagementError,
    format_time,
)
from airflow_batch_provider.emulator.request_bodies import MAX_BODY_BYTES, read_raw

ACCOUNT_PATH = (
    "/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
    "/providers/Microsoft.Batch/batchAccounts/{account_name}"
)
router = APIRouter(prefix=ACCOUNT_PATH)


def backend_of(request: Request) -> ApplicationBackend:
    backend: ApplicationBackend = request.app.state.applications
    return backend


def _backend_for(
    request: Request, subscription_id: str, resource_group: str, account_name: str
) -> ApplicationBackend:
    backend = backend_of(request)
    if account_name.lower() != backend.account_name.lower():
        raise ManagementError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Batch/batchAccounts/{account_name}' under resource group "
            f"'{resource_group}' was not found.",
        )
    return backend


def _account_id(subscription_id: str, resource_group: str, account_name: str) -> str:
    return ACCOUNT_PATH.format(
        subscription_id=subscription_id, resource_group=resource_group, account_name=account_name
    )


def application_document(application: Application, account_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"allowUpdates": application.allow_updates}
    if application.display_name is not None:
        properties["displayName"] = application.display_name
    if application.default_version is not None:
        properties["defaultVersion"] = application.default_version
    document: dict[str, Any] = {
        "id": f"{account_id}/applications/{application.name}",
        "name": application.name,
        "type": "Microsoft.Batch/batchAccounts/applications",
        "etag": application.etag,
        "properties": properties,
    }
    if application.tags:
        document["tags"] = dict(application.tags)
    return document


def package_document(
    backend: ApplicationBackend, application: Application, package: ApplicationPackage, account_id: str
) -> dict[str, Any]:
    storage_url, expiry = backend.storage_url(application, package)
    properties: dict[str, Any] = {
        "state": package.state,
        "storageUrl": storage_url,
        "storageUrlExpiry": format_time(expiry),
    }
    if package.format is not None:
        properties["format"] = package.format
    if package.last_activation_time is not None:
        properties["lastActivationTime"] = format_time(package.last_activation_time)
    document: dict[str, Any] = {
        "id": f"{account_id}/applications/{application.name}/versions/{package.version}",
        "name": package.version,
        "type": "Microsoft.Batch/batchAccounts/applications/versions",
        "etag": package.etag,
        "properties": properties,
    }
    if package.tags:
        document["tags"] = dict(package.tags)
    return document


def _json(body: Any, status: int = 200, etag: str | None = None) -> Response:
    headers = {"ETag": etag} if etag else None
    return Response(json.dumps(body), status, headers, media_type="application/json; charset=utf-8")


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of the request, read up to the data plane's 1 MB (413 past it, never read whole)."""
    try:
        raw = await read_raw(request, MAX_BODY_BYTES)
    except BatchError as error:
        raise ManagementError(
            error.status,
            "RequestBodyTooLarge",
            f"The request content is larger than {MAX_BODY_BYTES} bytes; an application or package "
            "body is a few hundred bytes: send only its properties.",
        ) from error
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManagementError(
            400, "InvalidRequestContent", f"The request content is not valid JSON: {err}"
        ) from err
    if not isinstance(body, dict):
        raise ManagementError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    """One page of a list: ``maxresults`` items from ``$skiptoken`` on, with an absolute ``nextLink``."""
    params = request.query_params
    try:
        start = int(params.get("$skiptoken") or 0)
        size = int(params.get("maxresults") or 0) or len(items) or 1
    except ValueError as err:
        raise ManagementError(400, "InvalidParameter", "maxresults must be an integer.") from err
    if size < 1:
        raise ManagementError(400, "InvalidParameter", "maxresults must be at least 1.")
    body: dict[str, Any] = {"value": items[start : start + size]}
    if start + size < len(items):
        next_url = request.url.include_query_params(**{"$skiptoken": str(start + size)})
        body["nextLink"] = str(next_url)
    return _json(body)


# ---- applications


@router.get("/applications")
async def list_applications(
    request: Request, subscription_id: str, resource_group: str, account_name: str
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    account_id = _account_id(subscription_id, resource_group, account_name)
    return _page(request, [application_document(app, account_id) for app in backend.all()])


@router.put("/applications/{application_name}")
async def create_application(
    request: Request, subscription_id: str, resource_group: str, account_name: str, application_name: str
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    application = backend.put_application(application_name, await _body(request))
    document = application_document(application, _account_id(subscription_id, resource_group, account_name))
    return _json(document, etag=application.etag)


@router.get("/applications/{application_name}")
async def get_application(
    request: Request, subscription_id: str, resource_group: str, account_name: str, application_name: str
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    application = backend.get(application_name)
    document = application_document(application, _account_id(subscription_id, resource_group, account_name))
    return _json(document, etag=application.etag)


@router.patch("/applications/{application_name}")
async def update_application(
    request: Request, subscription_id: str, resource_group: str, account_name: str, application_name: str
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    application = backend.patch_application(application_name, await _body(request))
    document = application_document(application, _account_id(subscription_id, resource_group, account_name))
    return _json(document, etag=application.etag)


@router.delete("/applications/{application_name}")
async def delete_application(
    request: Request, subscription_id: str, resource_group: str, account_name: str, application_name: str
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    return Response(status_code=200 if backend.delete_application(application_name) else 204)


# ---- versions


@router.get("/applications/{application_name}/versions")
async def list_packages(
    request: Request, subscription_id: str, resource_group: str, account_name: str, application_name: str
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    application = backend.get(application_name)
    account_id = _account_id(subscription_id, resource_group, account_name)
    packages = sorted(application.packages.values(), key=lambda package: package.version.lower())
    return _page(request, [package_document(backend, application, p, account_id) for p in packages])


@router.put("/applications/{application_name}/versions/{version_name}")
async def create_package(
    request: Request,
    subscription_id: str,
    resource_group: str,
    account_name: str,
    application_name: str,
    version_name: str,
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    package = await backend.put_package(application_name, version_name, await _body(request))
    application = backend.get(application_name)
    account_id = _account_id(subscription_id, resource_group, account_name)
    return _json(package_document(backend, application, package, account_id), etag=package.etag)


@router.get("/applications/{application_name}/versions/{version_name}")
async def get_package(
    request: Request,
    subscription_id: str,
    resource_group: str,
    account_name: str,
    application_name: str,
    version_name: str,
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    application, package = backend.get_package(application_name, version_name)
    account_id = _account_id(subscription_id, resource_group, account_name)
    return _json(package_document(backend, application, package, account_id), etag=package.etag)


@router.delete("/applications/{application_name}/versions/{version_name}")
async def delete_package(
    request: Request,
    subscription_id: str,
    resource_group: str,
    account_name: str,
    application_name: str,
    version_name: str,
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    deleted = await backend.delete_package(application_name, version_name)
    return Response(status_code=200 if deleted else 204)


@router.post("/applications/{application_name}/versions/{version_name}/activate")
async def activate_package(
    request: Request,
    subscription_id: str,
    resource_group: str,
    account_name: str,
    application_name: str,
    version_name: str,
) -> Response:
    backend = _backend_for(request, subscription_id, resource_group, account_name)
    package = await backend.activate(application_name, version_name, await _body(request))
    application = backend.get(application_name)
    account_id = _account_id(subscription_id, resource_group, account_name)
    return _json(package_document(backend, application, package, account_id), etag=package.etag)
