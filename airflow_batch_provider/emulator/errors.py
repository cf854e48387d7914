"""The service's error responses: one exception type, rendered in the Batch OData error shape."""

from __future__ import annotations

import uuid
from typing import Any

from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

ERROR_METADATA_SUFFIX = "$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"


class BatchError(Exception):
    """An error the emulated service returns, with the HTTP status, error code, message and values.

    Raise it anywhere below a route; the app renders it exactly like the real service::

        {"odata.metadata": ".../$metadata#...errors/@Element", "code": "PoolNotFound",
         "message": {"lang": "en-US", "value": "The specified pool does not exist.\\nRequestId:..."},
         "values": [{"key": "...", "value": "..."}]}
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        values: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.values = dict(values or {})
        self.headers = dict(headers or {})

    def to_dict(self, base_url: str, request_id: str | None = None) -> dict[str, Any]:
        request_id = request_id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "odata.metadata": f"{base_url.rstrip('/')}/{ERROR_METADATA_SUFFIX}",
            "code": self.code,
            "message": {
                "lang": "en-US",
                "value": f"{self.message}\nRequestId:{request_id}\nTime:{format_datetime(utcnow())}",
            },
        }
        if self.values:
            body["values"] = [{"key": key, "value": value} for key, value in self.values.items()]
        return body


# Constructors for the errors the service returns most, so messages stay identical everywhere.


def resource_not_found(kind: str, code: str | None = None) -> BatchError:
    """404 for a missing pool, job, task, node or file (``PoolNotFound``, ``JobNotFound``, ...)."""
    return BatchError(404, code or f"{kind.capitalize()}NotFound", f"The specified {kind} does not exist.")


def resource_exists(kind: str) -> BatchError:
    return BatchError(409, f"{kind.capitalize()}Exists", f"The specified {kind} already exists.")


def invalid_property(name: str, value: Any, reason: str | None = None) -> BatchError:
    values = {"PropertyName": name, "PropertyValue": "" if value is None else str(value)}
    if reason:
        values["Reason"] = reason
    return BatchError(
        400,
        "InvalidPropertyValue",
        "The value provided for one of the properties in the request body is invalid.",
        values,
    )


def missing_property(name: str) -> BatchError:
    return BatchError(
        400,
        "MissingRequiredProperty",
        "A required property was not specified in the request body.",
        {"PropertyName": name},
    )


def invalid_query(name: str, value: str, reason: str) -> BatchError:
    return BatchError(
        400,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        {"QueryParameterName": name, "QueryParameterValue": value, "Reason": reason},
    )


def invalid_body(reason: str) -> BatchError:
    return BatchError(
        400,
        "InvalidRequestBody",
        "The specified Request Body is not syntactically valid.",
        {"Reason": reason},
    )


def condition_not_met() -> BatchError:
    return BatchError(
        412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met."
    )


def conflict(code: str, message: str, **values: str) -> BatchError:
    return BatchError(409, code, message, values or None)


def authentication_failed(detail: str) -> BatchError:
    return BatchError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is "
        "correctly formed including the signature.",
        {"AuthenticationErrorDetail": detail},
    )


def not_emulated(feature: str) -> BatchError:
    """501 for a part of the Batch API the emulator does not model, naming it (never run on the host)."""
    return BatchError(
        501,
        "NotImplemented",
        f"{feature} are not supported by the local Batch emulator.",
        {"Reason": "Use a real Batch account for this feature."},
    )
