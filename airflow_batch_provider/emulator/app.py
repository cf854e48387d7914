"""The emulator's ASGI application: the Batch data-plane REST API, served with FastAPI.

Every request is authenticated before anything else runs, with Shared Key or (given a token issuer)
an Entra ID bearer token of the emulator's own token endpoint for ``https://batch.core.windows.net/``;
it must carry an
``api-version`` the emulator speaks (:mod:`~airflow_batch_provider.emulator.api_versions`), and gets
the service's standard response headers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_batch_provider.emulator.api_versions import LATEST, is_supported
from airflow_batch_provider.emulator.auth import verify_content_md5, verify_received
from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.faults import FaultInjectionMiddleware, FaultInjector, FaultPlan
from airflow_batch_provider.emulator.identity import BATCH_AUDIENCE, TokenIssuer, TokenRejected
from airflow_batch_provider.emulator.models.account import BatchAccount, EmulatorSettings
from airflow_batch_provider.emulator.models.applications import ApplicationSource
from airflow_batch_provider.emulator.request_bodies import read_body
from airflow_batch_provider.emulator.routes import ROUTERS
from airflow_batch_provider.emulator.routes.common import base_url, error_response, get_account
from airflow_batch_provider.emulator.scheduler import Executor

log = logging.getLogger(__name__)


class ServiceHeadersMiddleware:
    """Adds ``request-id``, the echoed ``client-request-id`` and ``DataServiceVersion`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        client_request_id = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name.lower() == b"client-request-id"
            ),
            None,
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["request-id"] = request_id
                headers["DataServiceVersion"] = "3.0"
                if client_request_id is not None:
                    headers["client-request-id"] = client_request_id
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def authenticate(request: Request) -> None:
    """Shared Key check from the headers, then ``api-version``, then the body; failures change nothing."""
    version = verify_headers(request)
    # Only a signed request with a version the emulator speaks has its body read: bounded, parsed
    # and validated against the service's schema (request_bodies).
    await read_body(request, version)
    verify_content_md5(request.headers, await request.body())


def verify_bearer(request: Request, token: str) -> None:
    """401 ``AuthenticationFailed`` unless ``token`` is the emulator's own, unexpired, for Batch."""
    issuer: TokenIssuer | None = getattr(request.app.state, "token_issuer", None)
    try:
        if issuer is None:
            raise TokenRejected(
                "invalid",
                "This emulator accepts no Entra ID tokens: start it with --https-port and get tokens from "
                "its token endpoint (authority_host), or sign requests with the account key.",
            )
        issuer.check(token, (BATCH_AUDIENCE,))
    except TokenRejected as rejected:
        raise BatchError(
            401,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is "
            "formed correctly.",
            {"AuthenticationErrorDetail": rejected.detail},
            {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{rejected.reason}"'},
        ) from None


def verify_headers(request: Request) -> str:
    """Shared Key or bearer token check, then ``api-version`` (returned); nothing of the body is read."""
    account = get_account(request)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        verify_bearer(request, token.strip())
    else:
        verify_received(request, account.settings.account_name, account.settings.account_key)
    version = request.query_params.get("api-version")
    if not version:
        raise BatchError(
            400,
            "MissingRequiredQueryParameter",
            "A required query parameter was not specified for this request.",
            {"QueryParameterName": "api-version"},
        )
    if not is_supported(version):
        raise BatchError(
            400,
            "UnsupportedRequestVersion",
            "The specified request version is not supported.",
            {
                "QueryParameterName": "api-version",
                "QueryParameterValue": version,
                "SupportedVersion": LATEST,
            },
        )
    account.base_url = base_url(request)
    return version


async def _batch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BatchError)
    return error_response(exc, request)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("the Batch emulator failed on %s %s", request.method, request.url.path, exc_info=exc)
    error = BatchError(
        500, "InternalError", "The server encountered an internal error. Please retry the request."
    )
    return error_response(error, request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    try:
        # Like the service, authenticate before saying anything about the URL.
        verify_headers(request)
    except BatchError as auth_error:
        return error_response(auth_error, request)
    if exc.status_code == 405:
        error = BatchError(
            405, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb."
        )
    elif exc.status_code == 404:
        error = BatchError(
            400, "InvalidUri", "The requested URI does not represent any resource on the server."
        )
    else:
        error = BatchError(exc.status_code, "InvalidInput", str(exc.detail))
    return error_response(error, request)


def create_app(
    settings: EmulatorSettings | None = None,
    *,
    account: BatchAccount | None = None,
    executor: Executor | None = None,
    applications: ApplicationSource | None = None,
    faults: FaultPlan | None = None,
    token_issuer: TokenIssuer | None = None,
) -> FastAPI:
    """Build the emulator app; ``app.state.account`` is the live account (handy in tests).

    ``applications`` replaces the directory-based application packages (``--applications-dir``),
    e.g. with the management-plane emulator's backend. ``faults`` is the initial fault plan
    (``app.state.faults`` is its live injector, also driven through ``/_emulator/faults``).
    ``token_issuer`` lets requests authenticate with the Entra ID tokens it signs, beside Shared Key.
    """
    account = account or BatchAccount(settings, executor, applications)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await account.start()
        try:
            yield
        finally:
            await account.close()

    app = FastAPI(
        title="Azure Batch emulator",
        lifespan=lifespan,
        dependencies=[Depends(authenticate)],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.account = account
    app.state.token_issuer = token_issuer
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(BatchError, _batch_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.state.faults = FaultInjector(faults)
    app.add_middleware(
        FaultInjectionMiddleware,
        injector=app.state.faults,
        account_name=account.settings.account_name,
        account_key=account.settings.account_key,
    )
    app.add_middleware(ServiceHeadersMiddleware)
    return app
