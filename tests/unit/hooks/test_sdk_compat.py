"""The work-arounds for azure-batch 15.1.0 defects, checked against the installed SDK."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import HttpTransport

from airflow_batch_provider.batch import service_errors
from airflow_batch_provider.hooks import _sdk_compat as compat


class RecordingTransport(HttpTransport):
    """Answers every request with a canned status, recording what the SDK sent."""

    def __init__(self, status: int = 202, body: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.requests: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        return _RestResponse(request, self.status, self.body)

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> RecordingTransport:
        return self

    def __exit__(self, *args: Any) -> None: ...


class _RestResponse:
    """Minimal azure.core.rest.HttpResponse for the pipeline."""

    def __init__(self, request: Any, status: int, body: bytes) -> None:
        self.request = request
        self.status_code = status
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.reason = "OK" if status < 400 else "Error"
        self.content_type = "application/json"
        self._content = body
        self.is_closed = True
        self.is_stream_consumed = True

    @property
    def content(self) -> bytes:
        return self._content

    def read(self) -> bytes:
        return self._content

    def text(self, encoding: str | None = None) -> str:
        return self._content.decode()

    def json(self) -> Any:
        import json

        return json.loads(self._content)

    def raise_for_status(self) -> None: ...

    def close(self) -> None: ...

    def iter_bytes(self, **kwargs: Any) -> Any:
        return iter([self._content])

    def iter_raw(self, **kwargs: Any) -> Any:
        return iter([self._content])


def _client(transport: RecordingTransport) -> BatchClient:
    return BatchClient(
        "https://acct.westeurope.batch.azure.com",
        AzureNamedKeyCredential("acct", "a2V5"),
        transport=transport,
        retry_total=0,
    )


def test_sdk_terminate_without_options_is_still_broken() -> None:
    """If this starts failing, the SDK fixed the defect and the shim can go."""
    client = _client(RecordingTransport(202))
    with pytest.raises(ValueError):
        client.begin_terminate_job("j1", polling_interval=0)


def test_terminate_shim_sends_a_reason() -> None:
    transport = RecordingTransport(202)
    client = _client(transport)
    with contextlib.suppress(Exception):  # polling a canned response may fail; the request matters
        compat.begin_terminate_job(client, "j1", "Because", polling_interval=0)
    sent = transport.requests[0]
    assert sent.method == "POST" and sent.url.split("?")[0].endswith("/jobs/j1/terminate")
    body = sent.content if isinstance(sent.content, str) else sent.content.decode()
    assert '"terminateReason": "Because"' in body


def test_sdk_reboot_without_options_is_still_broken() -> None:
    """If this starts failing, the SDK fixed the defect and the reboot shim can go."""
    client = _client(RecordingTransport(202))
    with pytest.raises(ValueError):
        client.begin_reboot_node("p1", "n1", polling_interval=0)


def test_reboot_shim_sends_the_reboot_kind() -> None:
    transport = RecordingTransport(202)
    client = _client(transport)
    with contextlib.suppress(Exception):  # polling a canned response may fail; the request matters
        compat.begin_reboot_node(client, "p1", "n1", polling_interval=0)
    sent = transport.requests[0]
    assert sent.method == "POST" and sent.url.split("?")[0].endswith("/pools/p1/nodes/n1/reboot")
    body = sent.content if isinstance(sent.content, str) else sent.content.decode()
    assert '"nodeRebootOption": "requeue"' in body


def test_options_classes_are_reachable() -> None:
    assert compat.BatchJobTerminateOptions(termination_reason="x").termination_reason == "x"
    assert compat.BatchNodeRebootOptions is not None


def test_pool_exists_returns_false_on_404() -> None:
    client = _client(RecordingTransport(404, b'{"code":"PoolNotFound","message":{"value":"nope"}}'))
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists("p")  # the SDK's defect
    assert compat.pool_exists(client, "p") is False


def test_task_counts_shape() -> None:
    result = models.BatchTaskCountsResult(
        {
            "taskCounts": {"active": 1, "running": 2, "completed": 3, "succeeded": 2, "failed": 1},
            "taskSlotCounts": {"active": 1, "running": 2, "completed": 3, "succeeded": 2, "failed": 1},
        }
    )
    counts = compat.task_counts_of(result)
    assert counts == compat.TaskCounts(1, 2, 3, 2, 1)
    assert counts.total == 6 and counts.pending == 3
    assert compat.TaskCounts.from_dict(counts.as_dict()) == counts


def test_error_code_and_message_from_sdk_errors() -> None:
    client = _client(
        RecordingTransport(
            409,
            b'{"code":"PoolExists","message":{"lang":"en-US","value":"The specified pool already exists.'
            b'\\nRequestId:abc\\nTime:2026"}}',
        )
    )
    with pytest.raises(HttpResponseError) as info:
        client.create_pool(models.BatchPoolCreateOptions(id="p", vm_size="x"))
    assert service_errors.error_code(info.value) == "PoolExists"
    assert service_errors.error_message(info.value) == "The specified pool already exists."
    assert service_errors.status_code(info.value) == 409


def test_tail_range() -> None:
    assert compat.tail_range(0, 10) is None
    assert compat.tail_range(5, 10) == "bytes=0-4"
    assert compat.tail_range(100, 10) == "bytes=90-99"


def test_join_bytes() -> None:
    assert compat.join_bytes(iter([b"a", b"b"])) == b"ab"
    assert compat.join_bytes(b"x") == b"x"
