"""User accounts on a node, for SSH or RDP: created, replaced and deleted with the service's rules.

The emulator keeps the accounts as state (no operating system user is made): a second account with
the same name is refused, a missing one is 404, an account is gone once it expires, and a reimage
(a fresh OS disk) removes them all. Passwords are never stored; only whether one was set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_batch_provider.emulator.errors import BatchError, invalid_property, missing_property
from airflow_batch_provider.emulator.models.base import get_bool, get_str
from airflow_batch_provider.emulator.odata import parse_datetime
from airflow_batch_provider.emulator.serialization import utcnow

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.nodes import Node

DEFAULT_LIFETIME = timedelta(days=1)
#: Node states in which the node agent can manage accounts.
USER_STATES = ("idle", "running", "offline", "starttaskfailed", "waitingforstarttask")
_LINUX_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_WINDOWS_FORBIDDEN = re.compile(r'["/\\\[\]:;|=,+*?<>@]')
_WINDOWS_MAX_NAME = 20
_RESERVED = {"linux": ("root",), "windows": ("administrator", "guest", "defaultaccount")}


@dataclass
class NodeUser:
    """One account: its name, admin flag, expiry, and how it signs in (never the secret itself)."""

    name: str
    is_admin: bool
    expiry_time: datetime
    has_password: bool
    ssh_public_key: str | None

    @property
    def expired(self) -> bool:
        return self.expiry_time <= utcnow()


def user_exists() -> BatchError:
    return BatchError(409, "NodeUserExists", "The specified node user already exists.")


def user_not_found() -> BatchError:
    return BatchError(404, "NodeUserNotFound", "The specified node user does not exist.")


def create_user(node: Node, body: dict[str, Any]) -> NodeUser:
    """Add an account to ``node`` (POST .../users): 409 ``NodeUserExists`` for a taken name."""
    name = get_str(body, "name")
    if not name:
        raise missing_property("name")
    _validate_name(name, node.pool.windows)
    _drop_expired(node)
    if name.lower() in node.users:
        raise user_exists()
    user = NodeUser(
        name=name,
        is_admin=get_bool(body, "isAdmin", False),
        **_credentials(body, node.pool.windows),
    )
    node.users[name.lower()] = user
    return user


def replace_user(node: Node, name: str, body: dict[str, Any]) -> NodeUser:
    """Replace an account's password, SSH key and expiry (PUT): what the body omits is removed."""
    _drop_expired(node)
    user = node.users.get(name.lower())
    if user is None:
        raise user_not_found()
    credentials = _credentials(body, node.pool.windows)
    user.expiry_time = credentials["expiry_time"]
    user.has_password = credentials["has_password"]
    user.ssh_public_key = credentials["ssh_public_key"]
    return user


def delete_user(node: Node, name: str) -> None:
    _drop_expired(node)
    if node.users.pop(name.lower(), None) is None:
        raise user_not_found()


def _drop_expired(node: Node) -> None:
    for key in [key for key, user in node.users.items() if user.expired]:
        del node.users[key]


def _validate_name(name: str, windows: bool) -> None:
    if windows:
        if len(name) > _WINDOWS_MAX_NAME or _WINDOWS_FORBIDDEN.search(name) or name.rstrip(". ") != name:
            raise invalid_property(
                "name",
                name,
                f"Windows user names have at most {_WINDOWS_MAX_NAME} characters, none of "
                '" / \\ [ ] : ; | = , + * ? < > @, and do not end with a period or space.',
            )
    elif not _LINUX_NAME.match(name):
        raise invalid_property(
            "name",
            name,
            "Linux user names start with a letter or underscore, contain letters, digits, underscores, "
            "periods and hyphens, and have at most 32 characters.",
        )
    if name.lower() in _RESERVED["windows" if windows else "linux"]:
        raise invalid_property("name", name, "The name is reserved by the operating system.")


def _credentials(body: dict[str, Any], windows: bool) -> dict[str, Any]:
    """Expiry, password flag and SSH key of a create or replace body, checked for the node's OS."""
    password = get_str(body, "password")
    ssh_key = get_str(body, "sshPublicKey")
    if windows:
        if ssh_key:
            raise invalid_property(
                "sshPublicKey", None, "SSH public keys are for Linux nodes; give a password on Windows."
            )
        if not password:
            raise missing_property("password")
    elif not password and not ssh_key:
        raise missing_property("password")
    return {
        "expiry_time": _expiry(body),
        "has_password": bool(password),
        "ssh_public_key": ssh_key or None,
    }


def _expiry(body: dict[str, Any]) -> datetime:
    raw = body.get("expiryTime")
    if raw is None:
        return utcnow() + DEFAULT_LIFETIME
    expiry = parse_datetime(raw) if isinstance(raw, str) else None
    if expiry is None:
        raise invalid_property("expiryTime", raw, "The value must be an ISO 8601 date and time.")
    if expiry <= utcnow():
        raise invalid_property("expiryTime", raw, "The expiry time must be in the future.")
    return expiry
