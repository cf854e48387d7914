"""An Entra ID-compatible token endpoint, so Entra ID connections work offline.

A service-principal connection whose ``authority_host`` is the emulator's HTTPS management endpoint
gets its tokens here through azure-identity, unchanged: the endpoint serves what MSAL reads (instance
discovery, the tenant's OpenID configuration) and the client-credentials grant of
``/<tenant>/oauth2/v2.0/token``. Tokens are JWTs signed with a key made at each start (HS256), with the
scope's resource as audience; :meth:`TokenIssuer.check` validates them (signature, expiry, audience,
issuer) for the emulated services, which refuse any other bearer token.

Any client id with a non-empty secret (or client assertion) is accepted: offline there is no
directory of applications.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

#: Requests for these paths go to the identity app; everything else to the app it sits beside.
IDENTITY_PATH = re.compile(
    r"^/(common/discovery/instance|[^/]+/oauth2/v2\.0/token|[^/]+/v2\.0/\.well-known/openid-configuration)$"
)
ALGORITHM = "HS256"
#: The Batch data plane's audience (the SDK's scope ``https://batch.core.windows.net//.default``).
BATCH_AUDIENCE = "https://batch.core.windows.net/"
#: The audiences Resource Manager accepts.
MANAGEMENT_AUDIENCES = (
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
)


class TokenRejected(Exception):
    """Why a bearer token is refused: ``reason`` is ``invalid``, ``expired``, ``audience`` or ``issuer``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class TokenIssuer:
    """Signs and checks the emulator's access tokens."""

    lifetime_seconds: int = 3600
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    #: The ``iss`` values this issuer signed under (its token endpoint's URL per tenant).
    issuers: set[str] = field(default_factory=set, repr=False)

    def issue(
        self,
        *,
        issuer: str,
        tenant: str,
        client_id: str,
        audience: str,
        lifetime_seconds: int | None = None,
    ) -> str:
        self.issuers.add(issuer)
        now = int(time.time())
        lifetime = self.lifetime_seconds if lifetime_seconds is None else lifetime_seconds
        claims = {
            "aud": audience,
            "iss": issuer,
            "tid": tenant,
            "appid": client_id,
            "azp": client_id,
            "sub": client_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{client_id}")),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "ver": "2.0",
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def verify(self, token: str, audience: str) -> dict[str, Any] | None:
        """The token's claims when this issuer signed it for ``audience`` and it has not expired."""
        accepted = {audience.rstrip("/"), audience.rstrip("/") + "/"}
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.key, algorithms=[ALGORITHM], audience=sorted(accepted)
            )
        except jwt.PyJWTError:
            return None
        return claims

    def check(self, token: str, audiences: tuple[str, ...]) -> dict[str, Any]:
        """The claims of a token this issuer signed, unexpired, for one of ``audiences`` (exactly).

        Raises :class:`TokenRejected` naming what is wrong, as the service's 401 answer does.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                options={"verify_aud": False, "require": ["exp", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            expiry = jwt.decode(token, options={"verify_signature": False}).get("exp")
            when = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(int(expiry or 0)))
            now = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime())
            raise TokenRejected(
                "expired",
                f"Lifetime validation failed. The token is expired: its expiry time '{when}' is earlier "
                f"than the current time '{now}'. Get a new token from the credential.",
            ) from None
        except jwt.PyJWTError as err:
            raise TokenRejected(
                "invalid",
                f"The access token is invalid ({err}): it was not issued by this emulator's token endpoint. "
                "Get tokens with a service-principal credential whose authority_host is the emulator.",
            ) from None
        if claims.get("aud") not in audiences:
            raise TokenRejected(
                "audience",
                f"The access token has been obtained from wrong audience or resource '{claims.get('aud')}'. "
                "It should exactly match (including forward slash) with one of the allowed audiences "
                + ", ".join(f"'{audience}'" for audience in audiences)
                + ".",
            )
        if claims.get("iss") not in self.issuers:
            raise TokenRejected(
                "issuer",
                f"The access token is from the wrong issuer '{claims.get('iss')}': the emulator accepts "
                "tokens of its own token endpoint only.",
            )
        return claims


def _error(status: int, error: str, description: str) -> JSONResponse:
    """An OAuth 2.0 error in Entra ID's shape."""
    return JSONResponse(
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(code) for code in re.findall(r"^AADSTS(\d+):", description)],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status_code=status,
    )


def create_identity_app(issuer: TokenIssuer) -> FastAPI:
    """The token endpoint and the discovery documents, for an authority at this app's base URL."""
    app = FastAPI(title="Entra ID emulator (client credentials)", openapi_url=None, docs_url=None)
    app.state.issuer = issuer

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get("/common/discovery/instance")
    async def instance_discovery(request: Request) -> dict[str, Any]:
        host = request.url.netloc
        return {
            "tenant_discovery_endpoint": f"{base_url(request)}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    @app.get("/{tenant}/v2.0/.well-known/openid-configuration")
    async def openid_configuration(tenant: str, request: Request) -> dict[str, Any]:
        root = f"{base_url(request)}/{tenant}"
        return {
            "issuer": f"{root}/v2.0",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "response_types_supported": ["code", "id_token", "token"],
            "grant_types_supported": ["client_credentials"],
            "tenant_region_scope": "local",
        }

    @app.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> JSONResponse:
        form = await request.form()
        grant = str(form.get("grant_type") or "")
        client_id = str(form.get("client_id") or "")
        proof = str(form.get("client_secret") or form.get("client_assertion") or "").strip()
        scopes = str(form.get("scope") or "").split()
        if grant != "client_credentials":
            return _error(
                400,
                "unsupported_grant_type",
                f"AADSTS70003: The emulator grants client_credentials only, not '{grant}'.",
            )
        if not client_id or not proof:
            return _error(
                401,
                "invalid_client",
                "AADSTS7000216: 'client_id' and 'client_secret' or 'client_assertion' are required. Give "
                "the connection a client id and a client secret (any value works offline).",
            )
        resources = [scope.removesuffix("/.default") for scope in scopes if scope.endswith("/.default")]
        if len(resources) != 1:
            return _error(
                400,
                "invalid_scope",
                f"AADSTS1002012: The scope '{' '.join(scopes)}' is not valid: client credentials take one "
                "'<resource>/.default' scope.",
            )
        issued = app.state.issuer.issue(
            issuer=f"{base_url(request)}/{tenant}/v2.0",
            tenant=tenant,
            client_id=client_id,
            audience=resources[0],
        )
        lifetime = app.state.issuer.lifetime_seconds
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": issued,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    return app


Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def with_identity(app: ASGIApp, identity: ASGIApp) -> ASGIApp:
    """``app``, with the identity endpoint's paths answered by ``identity``."""

    async def dispatch(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and IDENTITY_PATH.match(scope.get("path", "")):
            await identity(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
