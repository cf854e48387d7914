"""Airflow Asset URIs for the blobs the provider writes: ``azblob://<account>/<container>/<prefix>``.

One Asset names one virtual directory (a container prefix), never a single file, so a step that writes
10,000 blobs produces one Asset event. The account is part of the URI, so the same container name in
two storage accounts is two Assets. Airflow calls :func:`normalize_asset_uri` (registered in the
provider info) for every ``azblob://`` Asset, in the DAGs of any user: the account is lower-cased, the
container name validated, and a query string (which could carry a SAS) refused.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import SplitResult, urlsplit

from airflow_batch_provider.batch.validation import normalize_blob_prefix, validate_container_name
from airflow_batch_provider.exceptions import InvalidInputError

_log = logging.getLogger(__name__)

#: The scheme of the provider's Blob Asset URIs.
ASSET_SCHEME = "azblob"

# Storage account names are 3 to 24 lower-case letters and digits (Azurite's is devstoreaccount1).
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


def storage_account_of(container_url: str) -> str:
    """The storage account of a container URL: ``https://<account>.blob.<suffix>/<container>``, or the
    path-style ``http://127.0.0.1:10000/<account>/<container>`` of an emulator."""
    parts = urlsplit(container_url)
    host = parts.hostname or ""
    if ".blob." in host:
        return host.split(".")[0]
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) >= 2:
        return segments[0]
    raise InvalidInputError(f"cannot tell the storage account of {parts._replace(query='').geturl()!r}")


def container_asset_uri(container_url: str, prefix: str = "") -> str:
    """The Asset URI of ``prefix`` in the container at ``container_url`` (a SAS on it is ignored)."""
    path = [segment for segment in urlsplit(container_url).path.split("/") if segment]
    return blob_asset_uri(storage_account_of(container_url), path[-1], prefix)


def blob_asset_uri(account: str, container: str, prefix: str = "") -> str:
    """The normalised Asset URI of ``prefix`` in ``container`` of storage account ``account``."""
    account = _validated_account(account)
    container = validate_container_name(container)
    path = normalize_blob_prefix(prefix).rstrip("/")
    return f"{ASSET_SCHEME}://{account}/{container}" + (f"/{path}" if path else "")


def normalize_asset_uri(parsed: SplitResult) -> SplitResult:
    """Airflow's URI handler for ``azblob``: a valid account and container, no query, no ``//``."""
    if parsed.query:
        raise ValueError(
            f"Asset URI {parsed._replace(query='').geturl()!r} has a query string; Blob Asset URIs name "
            "azblob://<account>/<container>/<prefix> without one (and never carry a SAS)."
        )
    try:
        account = _validated_account(parsed.netloc)
        container, _, prefix = parsed.path.lstrip("/").partition("/")
        if not container:
            raise InvalidInputError("the container is missing")
        validate_container_name(container)
        path = normalize_blob_prefix(prefix).rstrip("/")
    except InvalidInputError as err:
        raise ValueError(
            f"Asset URI {parsed.geturl()!r} is not azblob://<account>/<container>/<prefix>: {err}"
        ) from None
    return parsed._replace(netloc=account, path=f"/{container}" + (f"/{path}" if path else ""))


def blob_asset_extra(**values: Any) -> dict[str, Any]:
    """The extra of an Asset event: the given values that are set, JSON-ready."""
    return {key: value for key, value in values.items() if value is not None}


def _validated_account(account: str) -> str:
    name = (account or "").strip().lower()
    if not _ACCOUNT_NAME.fullmatch(name):
        raise InvalidInputError(
            f"storage account {account!r} is not a storage account name (3 to 24 lower-case letters and "
            "digits); Blob Asset URIs are azblob://<account>/<container>/<prefix>."
        )
    return name


def outlet_alias(operator: Any) -> Any:
    """Add to ``operator``'s outlets the Asset alias its runs attach their written Assets to.

    The Assets are only known at run time (the container and prefix are templated and the account
    comes from the connection), so the operator declares an alias, ``azblob:<dag id>.<task id>``, and
    each run adds the concrete Asset to it: DAGs scheduled on that Asset run when it lands.
    """
    from airflow.sdk import AssetAlias

    owner = f"{operator.dag_id}." if getattr(operator, "has_dag", lambda: False)() else ""
    alias = AssetAlias(f"{ASSET_SCHEME}:{owner}{operator.task_id}")
    operator.add_outlets([alias])
    return alias


def emit_asset(context: Any, alias: Any, uri: str, extra: dict[str, Any]) -> bool:
    """Record an Asset event for ``uri`` with ``extra`` on ``alias`` in this run's outlet events;
    returns whether it was recorded.

    Mapped task instances record none. They would all name the same new Asset, and Airflow's API
    server creates an Asset first seen through an alias with a check-then-insert that is not safe
    under concurrency (Airflow 3.3, ``TaskInstance.register_asset_changes_in_db``): two instances
    finishing together fail with a unique-constraint error although their work succeeded. Emit the
    Asset from one task after the mapped ones instead.
    """
    from airflow.sdk import Asset

    events = context.get("outlet_events") if hasattr(context, "get") else None
    if events is None:
        return False  # run outside Airflow's task runner (a plain execute() call): nothing to record
    instance = context.get("ti") or context.get("task_instance")
    map_index = getattr(instance, "map_index", -1)
    if isinstance(map_index, int) and map_index >= 0:
        _log.info(
            "Not recording the Asset %s from mapped instance %d: concurrent mapped instances would "
            "create it at once, which Airflow does not handle; record it from one task downstream.",
            uri,
            map_index,
        )
        return False
    events[alias].add(Asset(uri), extra=blob_asset_extra(**extra))
    return True
