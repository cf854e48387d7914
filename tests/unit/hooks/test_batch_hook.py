"""BatchHook: one client per hook, retries and user agent, and adding tasks idempotently in chunks."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from azure.batch import models
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport

from airflow_batch_provider.hooks.batch import USER_AGENT, BatchHook, BatchRetryPolicy

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHM="
CONN = json.dumps(
    {
        "conn_type": "azbatch",
        "host": "https://acct.westeurope.batch.azure.com",
        "login": "acct",
        "password": KEY,
    }
)


@pytest.fixture(autouse=True)
def _connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AZBATCH_DEFAULT", CONN)


class _Resp:
    def __init__(self, request: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.request = request
        self.status_code = status
        self.headers = {"Content-Type": "application/json", **headers}
        self.reason = "x"
        self.content_type = "application/json"
        self._content = body
        self.is_closed = True
        self.is_stream_consumed = True

    @property
    def content(self) -> bytes:
        return self._content

    def read(self) -> bytes:
        return self._content

    def iter_bytes(self, **kwargs: Any) -> Any:
        return iter([self._content])

    iter_raw = iter_bytes

    def text(self, encoding: str | None = None) -> str:
        return self._content.decode()

    def json(self) -> Any:
        return json.loads(self._content)

    def close(self) -> None: ...

    def raise_for_status(self) -> None: ...


class ScriptedTransport(HttpTransport):
    def __init__(self, answers: list[tuple[int, bytes, dict[str, str]]]) -> None:
        self.answers = answers
        self.requests: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        status, body, headers = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        return _Resp(request, status, body, headers)

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> ScriptedTransport:
        return self

    def __exit__(self, *args: Any) -> None: ...


def test_one_sync_client_per_hook_with_user_agent_and_retry_settings() -> None:
    hook = BatchHook(retry_total=2, retry_backoff_factor=0.1, retry_backoff_max=3)
    assert hook.client is hook.client
    policy = hook.client._config.retry_policy
    assert isinstance(policy, BatchRetryPolicy)
    assert (policy.total_retries, policy.backoff_factor, policy.backoff_max) == (2, 0.1, 3)
    assert hook.client._config.user_agent_policy.user_agent.startswith(USER_AGENT)


def test_retry_defaults_come_from_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AZURE_BATCH_PROVIDER__RETRY_TOTAL", "9")
    monkeypatch.setenv("AIRFLOW__AZURE_BATCH_PROVIDER__ADD_TASKS_CONCURRENCY", "3")
    hook = BatchHook()
    assert hook.retry_total == 9 and hook.add_tasks_concurrency == 3
    assert BatchHook(retry_total=1).retry_total == 1


def test_async_client_is_created_once_and_closed() -> None:
    async def scenario() -> None:
        hook = BatchHook()
        first = await hook.aget_client()
        assert first is await hook.aget_client()
        assert first._config.user_agent_policy.user_agent.startswith(USER_AGENT)
        await hook.aclose()
        assert hook._async_client is None

    asyncio.run(scenario())


def _hook_with(transport: HttpTransport, **kwargs: Any) -> BatchHook:
    from azure.batch import BatchClient

    hook = BatchHook(retry_backoff_factor=0, **kwargs)
    hook.__dict__["client"] = BatchClient(
        hook.settings.batch_endpoint,
        hook.settings.credential(),
        transport=transport,
        **hook._client_kwargs(False),
    )
    return hook


def test_throttled_post_is_retried_after_retry_after() -> None:
    ok = json.dumps({"value": [{"status": "success", "taskId": "t1"}]}).encode()
    transport = ScriptedTransport([(429, b"{}", {"Retry-After": "0"}), (429, b"{}", {}), (200, ok, {})])
    hook = _hook_with(transport)
    result = hook.add_tasks("j", [{"id": "t1", "commandLine": "echo"}])
    assert result.added == 1
    assert len(transport.requests) == 3  # 429 with and without Retry-After both retried


def test_throttling_gives_up_after_retry_total() -> None:
    transport = ScriptedTransport([(503, b"{}", {})])
    hook = _hook_with(transport, retry_total=2)
    with pytest.raises(HttpResponseError):
        hook.get_job("j")
    assert len(transport.requests) == 3


class AddCollectionService(HttpTransport):
    """Answers add-collection requests per task from a script, under the real SDK client and pipeline.

    Only the transport is replaced (there is no service here); the hook's request still goes through
    the SDK's operation, serialization, authentication and retry policies.
    """

    def __init__(
        self, script: dict[str, list[str]] | None = None, too_large_above: int | None = None
    ) -> None:
        self.script = script or {}
        self.too_large_above = too_large_above
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> Any:
        assert request.url.split("?")[0].endswith("/jobs/j/addtaskcollection")
        ids = [task["id"] for task in json.loads(request.content)["value"]]
        with self.lock:
            self.calls.append(ids)
        if self.too_large_above and len(ids) > self.too_large_above:
            error = {"code": "RequestBodyTooLarge", "message": {"lang": "en-US", "value": "too large"}}
            return _Resp(request, 413, json.dumps(error).encode(), {})
        results = []
        for task_id in ids:
            with self.lock:
                answers = self.script.get(task_id) or ["success"]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if answer == "success":
                results.append({"status": "success", "taskId": task_id})
            elif answer == "servererror":
                results.append({"status": "servererror", "taskId": task_id, "error": {"code": "ServerError"}})
            elif answer == "lost":
                continue  # the service's answer leaves the task out
            else:
                results.append(
                    {
                        "status": "clienterror",
                        "taskId": task_id,
                        "error": {
                            "code": answer,
                            "message": {"lang": "en-US", "value": f"{answer} happened\nRequestId:x"},
                            "values": [{"key": "PropertyName", "value": "commandLine"}],
                        },
                    }
                )
        return _Resp(request, 200, json.dumps({"value": results}).encode(), {})

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> AddCollectionService:
        return self

    def __exit__(self, *args: Any) -> None: ...


def test_add_tasks_uses_chunks_of_100_in_parallel() -> None:
    client = AddCollectionService()
    result = _hook_with(client).add_tasks("j", [{"id": f"t{i}", "commandLine": "x"} for i in range(1000)])
    assert result.added == 1000 and result.requests == 10
    assert sorted(len(call) for call in client.calls) == [100] * 10


def test_existing_tasks_count_as_already_added() -> None:
    client = AddCollectionService({"t1": ["TaskExists"]})
    result = _hook_with(client).add_tasks(
        "j", [{"id": "t0", "commandLine": "x"}, {"id": "t1", "commandLine": "x"}]
    )
    assert (result.added, result.already_existed, result.failures) == (1, 1, [])


def test_server_errors_are_retried_only_for_the_failed_tasks() -> None:
    client = AddCollectionService({"t1": ["servererror", "success"]})
    result = _hook_with(client).add_tasks(
        "j", [{"id": "t0", "commandLine": "x"}, {"id": "t1", "commandLine": "x"}]
    )
    assert result.added == 2 and client.calls == [["t0", "t1"], ["t1"]]


def test_client_errors_are_reported_per_task() -> None:
    client = AddCollectionService({"t1": ["InvalidPropertyValue"]})
    result = _hook_with(client).add_tasks(
        "j", [{"id": "t0", "commandLine": "x"}, {"id": "t1", "commandLine": "x"}]
    )
    assert result.failures == [
        {
            "id": "t1",
            "code": "InvalidPropertyValue",
            "message": "InvalidPropertyValue happened (PropertyName=commandLine)",
        }
    ]


def test_too_large_chunks_are_halved() -> None:
    client = AddCollectionService(too_large_above=30)
    result = _hook_with(client).add_tasks("j", [{"id": f"t{i}", "commandLine": "x"} for i in range(100)])
    assert result.added == 100
    assert max(len(call) for call in client.calls if len(call) <= 30) <= 25


def test_tasks_left_out_of_the_answer_are_sent_again() -> None:
    client = AddCollectionService({"t1": ["lost", "success"]})
    result = _hook_with(client).add_tasks(
        "j", [{"id": "t0", "commandLine": "x"}, {"id": "t1", "commandLine": "x"}]
    )
    assert result.added == 2 and client.calls == [["t0", "t1"], ["t1"]]


def test_task_json_is_sent_as_given() -> None:
    seen: list[Any] = []

    class Recording(AddCollectionService):
        def send(self, request: Any, **kwargs: Any) -> Any:
            seen.append(json.loads(request.content)["value"])
            return super().send(request, **kwargs)

    task = {
        "id": "t0",
        "commandLine": "/bin/sh -c 'echo $X'",
        "environmentSettings": [{"name": "X", "value": "1"}],
        "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 2},
    }
    assert _hook_with(Recording()).add_tasks("j", [task]).added == 1
    assert seen == [[task]]


def test_sdk_models_are_accepted() -> None:
    client = AddCollectionService()
    task = models.BatchTaskCreateOptions(id="m1", command_line="echo")
    assert _hook_with(client).add_tasks("j", [task]).added == 1


def test_config_options_documented_in_provider_info_match_the_hook_defaults() -> None:
    from airflow_batch_provider.get_provider_info import get_provider_info
    from airflow_batch_provider.hooks.batch import _DEFAULTS

    options = get_provider_info()["config"]["azure_batch_provider"]["options"]
    for key, default in _DEFAULTS.items():
        assert float(options[key]["default"]) == float(default), key
    assert options["http_logging"]["default"] == "False"
