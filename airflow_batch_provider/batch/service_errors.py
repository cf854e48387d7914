"""The service's error code, message and HTTP status of an Azure SDK exception."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError


def error_code(error: BaseException) -> str | None:
    """The Batch error code of an SDK exception (``PoolExists``, ``TaskExists``...), if any."""
    if isinstance(error, HttpResponseError):
        inner = getattr(error, "error", None)
        code = getattr(inner, "code", None)
        if code:
            return str(code)
        model = getattr(error, "model", None)
        code = getattr(model, "code", None)
        if code:
            return str(code)
    return None


def error_message(error: BaseException) -> str:
    """The service's message of an SDK exception, without the request id boilerplate."""
    if isinstance(error, HttpResponseError):
        inner = getattr(error, "error", None)
        message = getattr(inner, "message", None)
        if message:
            text = str(message).split("\nRequestId:", 1)[0].strip()
            details = getattr(inner, "details", None) or []
            extra = "; ".join(
                f"{getattr(item, 'code', '')}: {getattr(item, 'message', '')}" for item in details if item
            )
            return f"{text} ({extra})" if extra else text
        return str(getattr(error, "message", None) or error).split("\nRequestId:", 1)[0].strip()
    return str(error)


def status_code(error: BaseException) -> int | None:
    """The HTTP status of an SDK exception, if it carries a response."""
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if code is not None else None
