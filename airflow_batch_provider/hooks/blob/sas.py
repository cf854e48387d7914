"""Least-privilege SAS URLs: container and blob SAS, user-delegation keys, and ``resource_files()``."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from airflow_batch_provider.batch.validation import validate_container_name
from airflow_batch_provider.exceptions import ConnectionConfigError, InvalidInputError
from airflow_batch_provider.hooks.blob.client import BlobClientHook
from airflow_batch_provider.hooks.credentials import AuthMode, parse_connection_string
from airflow_batch_provider.utils.secrets import mask_sas

if TYPE_CHECKING:
    from azure.storage.blob import UserDelegationKey

Access = Literal["read", "write"]

#: Default lifetime of a generated SAS: long enough for a pool to start and the job to run.
DEFAULT_SAS_EXPIRY = timedelta(hours=24)

#: A SAS starts this long in the past, so a clock running slightly behind does not reject it.
SAS_CLOCK_SKEW = timedelta(minutes=15)

#: A user delegation key (Entra ID) may be valid for at most seven days.
_MAX_USER_DELEGATION = timedelta(days=7)

#: SAS permissions per access kind: inputs are read (and listed), outputs are created and written.
_CONTAINER_PERMISSIONS: dict[str, str] = {"read": "rl", "write": "cw"}

_BLOB_PERMISSIONS: dict[str, str] = {"read": "r", "write": "cw"}


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _check_access(access: str) -> str:
    if access not in _CONTAINER_PERMISSIONS:
        raise InvalidInputError(
            f"access must be 'read' (read+list, for inputs) or 'write' (create+write, for outputs), "
            f"got {access!r}."
        )
    return access


class BlobSasMixin(BlobClientHook):
    """The SAS URLs of :class:`~airflow_batch_provider.hooks.blob.BlobStorageHook`."""

    # -- SAS --------------------------------------------------------------------------------------------

    def get_container_sas_url(
        self,
        container: str,
        access: Access = "read",
        *,
        expiry: timedelta | datetime = DEFAULT_SAS_EXPIRY,
        start: datetime | None = None,
    ) -> str:
        """A container URL with a least-privilege SAS: ``read`` gives read+list, ``write`` create+write.

        Signed with the account key when the connection has one, else with a user delegation key when
        it uses Entra ID. A connection holding only a SAS token cannot sign a new one: its own token is
        returned when its permissions cover ``access``, otherwise :class:`ConnectionConfigError` says why.
        The token and its signature are registered with the secrets masker.
        """
        validate_container_name(container)
        return self._sas_url(container, None, _CONTAINER_PERMISSIONS[_check_access(access)], expiry, start)

    def get_blob_sas_url(
        self,
        container: str,
        blob: str,
        access: Access = "read",
        *,
        expiry: timedelta | datetime = DEFAULT_SAS_EXPIRY,
        start: datetime | None = None,
    ) -> str:
        """A blob URL with a least-privilege SAS: ``read`` gives read, ``write`` create+write."""
        validate_container_name(container)
        if not blob:
            raise InvalidInputError("blob must name a blob; use get_container_sas_url for a container.")
        return self._sas_url(container, blob, _BLOB_PERMISSIONS[_check_access(access)], expiry, start)

    def resource_files(
        self,
        container: str,
        blob_prefix: str = "",
        *,
        file_path: str | None = None,
        file_mode: str | None = None,
        expiry: timedelta | datetime = DEFAULT_SAS_EXPIRY,
    ) -> list[dict[str, str]]:
        """Batch ``resourceFiles`` entries (REST casing) for the blobs under ``blob_prefix``.

        The container URL carries a fresh read+list SAS, minted now; call this when the Batch task is
        submitted, never earlier, so no SAS is stored in XCom.
        """
        entry = {"storageContainerUrl": self.get_container_sas_url(container, "read", expiry=expiry)}
        if blob_prefix:
            entry["blobPrefix"] = blob_prefix
        if file_path:
            entry["filePath"] = file_path
        if file_mode:
            entry["fileMode"] = file_mode
        return [entry]

    def _sas_url(
        self,
        container: str,
        blob: str | None,
        permission: str,
        expiry: timedelta | datetime,
        start: datetime | None,
    ) -> str:
        now = datetime.now(timezone.utc)
        expires_at = _as_utc(expiry) if isinstance(expiry, datetime) else now + expiry
        if expires_at <= now:
            raise InvalidInputError(
                f"SAS expiry {expires_at.isoformat()} is in the past; give a future time."
            )
        starts_at = _as_utc(start) if start is not None else now - SAS_CLOCK_SKEW
        url = self.blob_url(container, blob) if blob else self.container_url(container)

        settings = self.settings
        mode = settings.resolve_mode()
        account_name = settings.resolved_account_name
        account_key = settings.account_key if mode is AuthMode.SHARED_KEY else None
        if mode is AuthMode.CONNECTION_STRING:
            assert settings.connection_string is not None
            parsed = parse_connection_string(settings.connection_string)
            account_name = parsed.get("accountname", account_name)
            account_key = parsed.get("accountkey")
            if not account_key and parsed.get("sharedaccesssignature"):
                return self._reuse_connection_sas(
                    url, parsed["sharedaccesssignature"], permission, blob, expires_at
                )
        if mode is AuthMode.SAS_TOKEN:
            assert settings.sas_token is not None
            return self._reuse_connection_sas(url, settings.sas_token, permission, blob, expires_at)
        if not account_name:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: the storage account name is needed to sign a SAS. "
                "Put it in the login field or use an https://<account>.blob.core.windows.net host."
            )

        sas_args: dict[str, Any] = {"permission": permission, "expiry": expires_at, "start": starts_at}
        if account_key:
            sas_args["account_key"] = account_key
        elif mode.uses_entra_id:
            sas_args["user_delegation_key"] = self._user_delegation_key(starts_at, expires_at)
        else:  # pragma: no cover - every mode is handled above
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: cannot sign a SAS in mode {mode.value}."
            )
        from azure.storage.blob import generate_blob_sas, generate_container_sas

        if blob:
            token = generate_blob_sas(account_name, container, blob, **sas_args)
        else:
            token = generate_container_sas(account_name, container, **sas_args)
        mask_sas(token)
        return f"{url}?{token}"

    def _user_delegation_key(self, starts_at: datetime, expires_at: datetime) -> UserDelegationKey:
        """A user delegation key valid from ``starts_at`` to ``expires_at``, reused while it covers them."""
        now = datetime.now(timezone.utc)
        if expires_at > now + _MAX_USER_DELEGATION:
            raise InvalidInputError(
                "A SAS signed with Entra ID (user delegation) can last at most 7 days from now; "
                "shorten the expiry."
            )
        cached, cached_until = self._delegation_key, self._delegation_key_expiry
        if (
            cached is not None
            and cached_until is not None
            and cached_until >= expires_at
            and cached.signed_start is not None
            and _as_utc(datetime.fromisoformat(cached.signed_start.replace("Z", "+00:00"))) <= starts_at
        ):
            return cached
        # Ask for a little more than needed (at least an hour), so later SAS of this hook can reuse it.
        key_expiry = min(now + _MAX_USER_DELEGATION, max(expires_at, now + timedelta(hours=1)))
        with self._translate_errors("requesting a user delegation key to sign a SAS"):
            key = self.get_conn().get_user_delegation_key(starts_at, key_expiry)
        if key.value:
            from airflow.sdk.log import mask_secret

            mask_secret(key.value)
        self._delegation_key, self._delegation_key_expiry = key, key_expiry
        return key

    def _reuse_connection_sas(
        self, url: str, token: str, permission: str, blob: str | None, expires_at: datetime
    ) -> str:
        """Return ``url`` with the connection's own SAS when it grants ``permission``, else explain."""
        token = token.lstrip("?")
        query = {name: values[0] for name, values in parse_qs(token).items()}
        granted = query.get("sp", "")
        missing = [letter for letter in permission if letter not in granted]
        problems = []
        if missing:
            problems.append(
                f"it grants {granted!r} but {permission!r} is needed (missing {''.join(missing)!r})"
            )
        if "srt" in query:  # account SAS: objects, and containers for listing
            needed_types = "o" + ("c" if "l" in permission else "")
            if any(kind not in query["srt"] for kind in needed_types):
                problems.append(f"its resource types {query['srt']!r} do not include {needed_types!r}")
        elif query.get("sr") == "b" and blob is None:
            problems.append("it is scoped to a single blob, not a container")
        if problems:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} authenticates with a SAS token, from which no new SAS can be "
                f"signed, and the token itself is not sufficient: {'; '.join(problems)}. Give the connection "
                "an account key or an Entra ID identity, or a SAS token with these permissions."
            )
        token_expiry = query.get("se")
        if token_expiry:
            with contextlib.suppress(ValueError):
                ends = _as_utc(datetime.fromisoformat(token_expiry.replace("Z", "+00:00")))
                if ends < expires_at:
                    self.log.warning(
                        "The SAS token of connection %s expires at %s, before the requested %s; tasks "
                        "queued after that cannot read or write their files.",
                        self.conn_id,
                        ends.isoformat(),
                        expires_at.isoformat(),
                    )
        if set(granted) - set(permission):
            self.log.warning(
                "Reusing the SAS token of connection %s, which grants %r where %r would be enough.",
                self.conn_id,
                granted,
                permission,
            )
        mask_sas(token)
        return f"{url}?{token}"
