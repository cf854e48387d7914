"""Shared Key authentication and the service's standard headers, through the real SDK."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.aio import BatchClient as AsyncBatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineRequest, PipelineResponse

from airflow_batch_provider.emulator.models.account import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import error_of, pool_options, unique

OTHER_KEY = base64.b64encode(b"not the key" * 6).decode()


def _job(job_id: str) -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="nowhere"))


def _assert_job_absent(client: BatchClient, job_id: str) -> None:
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_job(job_id)
    assert error_of(excinfo) == (404, "JobNotFound")


def test_dev_credentials_are_the_defaults(emulator: BatchEmulatorServer) -> None:
    assert emulator.account_name == DEV_ACCOUNT_NAME == "devbatchaccount1"
    assert emulator.account_key == DEV_ACCOUNT_KEY
    assert len(base64.b64decode(DEV_ACCOUNT_KEY)) == 64


def test_wrong_key_is_rejected_and_changes_nothing(
    emulator: BatchEmulatorServer, client: BatchClient
) -> None:
    intruder = BatchClient(emulator.endpoint, AzureNamedKeyCredential(emulator.account_name, OTHER_KEY))
    pool_id = unique("pool")
    with pytest.raises(HttpResponseError) as excinfo:
        intruder.create_pool(pool_options(pool_id))
    assert error_of(excinfo) == (403, "AuthenticationFailed")
    assert "is not the same as any computed signature" in str(excinfo.value)
    with pytest.raises(ResourceNotFoundError):
        client.get_pool(pool_id)


def test_unknown_account_name_is_rejected(emulator: BatchEmulatorServer) -> None:
    stranger = BatchClient(emulator.endpoint, AzureNamedKeyCredential("someoneelse", emulator.account_key))
    with pytest.raises(HttpResponseError) as excinfo:
        list(stranger.list_pools())
    assert error_of(excinfo) == (403, "AuthenticationFailed")


async def test_async_client_authenticates(
    emulator: BatchEmulatorServer, aio_client: AsyncBatchClient
) -> None:
    job_id = unique("job")
    await aio_client.create_job(_job(job_id))
    assert (await aio_client.get_job(job_id)).id == job_id
    intruder = AsyncBatchClient(emulator.endpoint, AzureNamedKeyCredential(emulator.account_name, OTHER_KEY))
    async with intruder:
        with pytest.raises(HttpResponseError) as excinfo:
            await intruder.get_job(job_id)
    assert error_of(excinfo) == (403, "AuthenticationFailed")


def test_missing_authorization_header_gets_the_service_error_body(emulator: BatchEmulatorServer) -> None:
    response = requests.get(
        f"{emulator.endpoint}/pools",
        params={"api-version": "2025-06-01"},
        headers={"ocp-date": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")},
        timeout=10,
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "AuthenticationFailed"
    assert body["odata.metadata"].startswith(emulator.endpoint)
    assert body["message"]["lang"] == "en-US"
    assert "RequestId:" in body["message"]["value"]
    assert body["values"][0]["key"] == "AuthenticationErrorDetail"
    assert response.headers["request-id"]
    assert response.headers["DataServiceVersion"] == "3.0"


@pytest.mark.parametrize("skew", [timedelta(minutes=-20), timedelta(minutes=20)])
def test_ocp_date_more_than_15_minutes_off_is_rejected(client: BatchClient, skew: timedelta) -> None:
    job_id = unique("job")
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job(_job(job_id), ocp_date=datetime.now(timezone.utc) + skew)
    assert error_of(excinfo) == (403, "AuthenticationFailed")
    _assert_job_absent(client, job_id)


def test_ocp_date_within_15_minutes_is_accepted(client: BatchClient) -> None:
    job_id = unique("job")
    client.create_job(_job(job_id), ocp_date=datetime.now(timezone.utc) - timedelta(minutes=10))
    assert client.get_job(job_id).id == job_id


def _after_signing(change: Any) -> dict[str, Any]:
    """Per-operation kwargs that alter the request after the SDK has signed it."""

    def hook(request: PipelineRequest) -> None:
        change(request.http_request)

    return {"raw_request_hook": hook}


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda req: req.headers.pop("ocp-date"), id="ocp-date removed"),
        pytest.param(
            lambda req: req.set_bytes_body(str(req.content).encode() + b"  "), id="body length changed"
        ),
        pytest.param(
            lambda req: req.headers.__setitem__("content-type", "application/json"), id="content-type changed"
        ),
        pytest.param(
            lambda req: req.headers.__setitem__(
                "Content-MD5", base64.b64encode(hashlib.md5(b"x").digest()).decode()
            ),
            id="content-md5 added",
        ),
        pytest.param(lambda req: setattr(req, "url", req.url + "&timeOut=5"), id="query parameter added"),
        pytest.param(lambda req: setattr(req, "url", req.url.replace("/jobs", "/Jobs")), id="path changed"),
    ],
)
def test_requests_changed_after_signing_are_rejected_without_side_effects(
    client: BatchClient, tamper: Any
) -> None:
    job_id = unique("job")
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job(_job(job_id), **_after_signing(tamper))
    assert error_of(excinfo) == (403, "AuthenticationFailed")
    _assert_job_absent(client, job_id)


def test_signed_content_md5_must_match_the_body(client: BatchClient) -> None:
    job_id = unique("job")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(HttpResponseError) as excinfo:
        client.create_job(_job(job_id), headers={"Content-MD5": wrong})
    assert error_of(excinfo) == (400, "Md5Mismatch")
    _assert_job_absent(client, job_id)


def test_unsupported_api_version_is_rejected(emulator: BatchEmulatorServer) -> None:
    old = BatchClient(
        emulator.endpoint,
        AzureNamedKeyCredential(emulator.account_name, emulator.account_key),
        api_version="2022-10-01.16.0",
    )
    with pytest.raises(HttpResponseError) as excinfo:
        list(old.list_pools())
    assert error_of(excinfo) == (400, "UnsupportedRequestVersion")


def test_response_headers_follow_the_service(client: BatchClient, emulator: BatchEmulatorServer) -> None:
    captured: list[Any] = []

    def keep(response: PipelineResponse) -> None:
        captured.append(response.http_response)

    job_id = unique("job")
    client.create_job(
        _job(job_id),
        headers={"client-request-id": "a4b5c6d7-0000-4000-8000-000000000001"},
        raw_response_hook=keep,
    )
    created = captured[-1]
    assert created.status_code == 201
    assert created.headers["Location"] == f"{emulator.endpoint}/jobs/{job_id}"
    assert created.headers["DataServiceId"] == f"{emulator.endpoint}/jobs/{job_id}"
    assert created.headers["ETag"].startswith("0x")
    assert created.headers["Last-Modified"].endswith("GMT")
    assert created.headers["client-request-id"] == "a4b5c6d7-0000-4000-8000-000000000001"
    assert created.headers["DataServiceVersion"] == "3.0"
    assert created.headers["request-id"]

    job = client.get_job(job_id, raw_response_hook=keep)
    fetched = captured[-1]
    assert fetched.headers["ETag"] == job.etag == created.headers["ETag"]


def test_raw_clients_can_sign_with_the_helper(emulator: BatchEmulatorServer) -> None:
    from airflow_batch_provider.emulator.auth import authorization_header

    headers = {"ocp-date": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")}
    query = "api-version=2025-06-01&maxresults=5"
    headers["Authorization"] = authorization_header(
        "GET", "/pools", query, headers, emulator.account_name, emulator.account_key
    )
    response = requests.get(f"{emulator.endpoint}/pools?{query}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert "value" in response.json()
    replayed = requests.get(f"{emulator.endpoint}/jobs?{query}", headers=headers, timeout=10)
    assert replayed.status_code == 403
