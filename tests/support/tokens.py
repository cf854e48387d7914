"""A credential whose tokens the emulator signed, for tests that skip azure-identity's round trip."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

from airflow_batch_provider.emulator.identity import TokenIssuer

TEST_TENANT = "00000000-0000-0000-0000-0000000000aa"


class IssuedTokenCredential:
    """Entra ID credential stand-in: tokens ``issuer`` signed for the scope's resource."""

    def __init__(self, issuer: TokenIssuer, client_id: str = "test-client") -> None:
        self.issuer = issuer
        self.client_id = client_id

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token = self.issuer.issue(
            issuer=f"https://emulator.test/{TEST_TENANT}/v2.0",
            tenant=TEST_TENANT,
            client_id=self.client_id,
            audience=scopes[0].removesuffix("/.default"),
        )
        return AccessToken(token, int(time.time()) + self.issuer.lifetime_seconds)

    def close(self) -> None:
        pass
