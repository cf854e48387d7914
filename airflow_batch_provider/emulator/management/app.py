"""The emulated Azure Resource Manager endpoint: an ASGI app serving the Batch application routes.

Every request must carry ``Authorization: Bearer <token>`` (401 ``AuthenticationFailed`` otherwise)
with a token of the emulator's own Entra ID endpoint (:mod:`~airflow_batch_provider.emulator.identity`):
signed by it, unexpired, for Resource Manager (``https://management.azure.com/``) or this endpoint's
URL; any other token gets Resource Manager's 401 (``InvalidAuthenticationToken``,
``ExpiredAuthenticationToken``, ``InvalidAuthenticationTokenAudience``). Then the ``api-version``
azure-mgmt-batch 19 sends. Errors use Resource Manager's shape, ``{"error": {"code", "message"}}``.

``app.state.request_log`` records ``(method, path)`` of every request, for tests that check what a
client did (or did not) call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_batch_provider.emulator.identity import MANAGEMENT_AUDIENCES, TokenIssuer, TokenRejected
from airflow_batch_provider.emulator.management.models import (
    MANAGEMENT_API_VERSION,
    ApplicationBackend,
    ManagementError,
)
from airflow_batch_provider.emulator.management.routes import router

log = logging.getLogger(__name__)

#: Resource Manager's error code for each reason a token is refused.
_TOKEN_ERROR_CODES = {
    "expired": "ExpiredAuthenticationToken",
    "audience": "InvalidAuthenticationTokenAudience",
    "issuer": "InvalidAuthenticationTokenTenant",
}


def _error_response(error: ManagementError) -> Response:
    from airflow_batch_provider.emulator.management.routes import _json

    response = _json(error.to_dict(), error.status)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


async def check_request(request: Request) -> None:
    """Bearer token present, then a supported ``api-version``."""
    request.app.state.request_log.append((request.method, request.url.path))
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ManagementError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or is not a bearer token.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    own_url = str(request.base_url).rstrip("/")
    issuer: TokenIssuer = request.app.state.token_issuer
    try:
        issuer.check(token.strip(), (*MANAGEMENT_AUDIENCES, own_url, own_url + "/"))
    except TokenRejected as rejected:
        raise ManagementError(
            401,
            _TOKEN_ERROR_CODES.get(rejected.reason, "InvalidAuthenticationToken"),
            rejected.detail,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{rejected.reason}"'
            },
        ) from None
    version = request.query_params.get("api-version")
    if not version:
        raise ManagementError(
            400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
        )
    if version != MANAGEMENT_API_VERSION:
        raise ManagementError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{MANAGEMENT_API_VERSION}'.",
        )


async def _management_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ManagementError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    try:
        await check_request(request)
    except ManagementError as error:
        return _error_response(error)
    if exc.status_code == 405:
        return _error_response(
            ManagementError(405, "MethodNotAllowed", f"The method '{request.method}' is not allowed here.")
        )
    return _error_response(
        ManagementError(
            404,
            "NotFound",
            f"The emulator does not serve '{request.url.path}': only Batch applications and application "
            "packages are emulated on the management endpoint.",
        )
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("the management endpoint failed on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(ManagementError(500, "InternalServerError", "An internal error occurred."))


def create_management_app(backend: ApplicationBackend, token_issuer: TokenIssuer) -> FastAPI:
    """The management-plane app over ``backend`` (the same object the data plane reads).

    It accepts the bearer tokens ``token_issuer`` signed (the emulator's Entra ID endpoint).
    """
    app = FastAPI(
        title="Azure Resource Manager emulator (Batch applications)",
        dependencies=[Depends(check_request)],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.applications = backend
    app.state.token_issuer = token_issuer
    app.state.request_log = []
    app.include_router(router)
    app.add_exception_handler(ManagementError, _management_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.middleware("http")
    async def arm_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        request_id = str(uuid.uuid4())
        response.headers["x-ms-request-id"] = request_id
        response.headers["x-ms-correlation-request-id"] = request_id
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            response.headers["x-ms-client-request-id"] = client_request_id
        return response

    return app
