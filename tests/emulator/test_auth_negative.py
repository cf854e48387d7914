"""Requests the emulator must refuse with 403 and no state change, beyond ``test_auth.py``.

Signed raw requests (the SDK would not send these) for the destructive cases: a create without a
signature, a body swapped for another of the same length, and a delete of an existing pool with a
wrong key, a stale date or no Authorization header; plus the fault-injection control API, which
needs the same Shared Key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
import requests
from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError

from airflow_batch_provider.emulator.auth import authorization_header
from airflow_batch_provider.emulator.faults import CONTROL_PATH
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import pool_options, unique, wait_for_idle_nodes

API = "api-version=2025-06-01"
OTHER_KEY = base64.b64encode(b"an entirely different key" * 2).decode()
Signer = Callable[[str, str, str, dict[str, str]], dict[str, str]]


def _date(skew: timedelta = timedelta(0)) -> str:
    return (datetime.now(timezone.utc) + skew).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _signed(
    emulator: BatchEmulatorServer, method: str, path: str, query: str, headers: dict[str, str], key: str
) -> dict[str, str]:
    headers = {"ocp-date": _date(), **headers}
    headers["authorization"] = authorization_header(method, path, query, headers, emulator.account_name, key)
    return headers


def _job_body(job_id: str) -> bytes:
    return json.dumps({"id": job_id, "poolInfo": {"poolId": "nowhere"}}).encode()


def _job_exists(client: BatchClient, job_id: str) -> bool:
    try:
        client.get_job(job_id)
    except ResourceNotFoundError:
        return False
    return True


def _assert_403(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "AuthenticationFailed"


def test_create_without_authorization_is_refused(emulator: BatchEmulatorServer, client: BatchClient) -> None:
    job_id = unique("job")
    body = _job_body(job_id)
    response = requests.post(
        f"{emulator.endpoint}/jobs?{API}",
        data=body,
        headers={"ocp-date": _date(), "content-type": "application/json; odata=minimalmetadata"},
        timeout=10,
    )
    _assert_403(response)
    assert not _job_exists(client, job_id)


def test_body_swapped_under_a_signed_content_md5_is_refused(
    emulator: BatchEmulatorServer, client: BatchClient
) -> None:
    """Shared Key signs the body's length and Content-MD5, not its bytes (as in Azure): a client that
    sends Content-MD5 gets the body covered, and a swapped body changes nothing."""
    signed_id, sent_id = unique("job-a"), unique("job-b")
    signed_body, sent_body = _job_body(signed_id), _job_body(sent_id)
    assert len(signed_body) == len(sent_body)
    md5 = base64.b64encode(hashlib.md5(signed_body).digest()).decode()
    content = {
        "content-type": "application/json",
        "content-length": str(len(signed_body)),
        "content-md5": md5,
    }
    headers = _signed(emulator, "POST", "/jobs", API, content, emulator.account_key)
    response = requests.post(f"{emulator.endpoint}/jobs?{API}", data=sent_body, headers=headers, timeout=10)
    assert response.status_code == 400 and response.json()["code"] == "Md5Mismatch"
    assert not _job_exists(client, signed_id) and not _job_exists(client, sent_id)


@pytest.fixture
def pool_id(client: BatchClient) -> str:
    pool_id = unique("keep")
    client.create_pool(pool_options(pool_id))
    wait_for_idle_nodes(client, pool_id, 1)
    return pool_id


@pytest.mark.parametrize(
    "headers_for",
    [
        pytest.param(lambda emu, path: _signed(emu, "DELETE", path, API, {}, OTHER_KEY), id="wrong key"),
        pytest.param(
            lambda emu, path: _signed(
                emu, "DELETE", path, API, {"ocp-date": _date(timedelta(minutes=-16))}, emu.account_key
            ),
            id="stale date",
        ),
        pytest.param(lambda emu, path: {"ocp-date": _date()}, id="no authorization header"),
        pytest.param(
            lambda emu, path: {
                **_signed(emu, "DELETE", path, API, {}, emu.account_key),
                "authorization": f"SharedKey {emu.account_name}:",
            },
            id="empty signature",
        ),
    ],
)
def test_delete_of_an_existing_pool_is_refused_and_the_pool_survives(
    emulator: BatchEmulatorServer,
    client: BatchClient,
    pool_id: str,
    headers_for: Callable[..., dict[str, str]],
) -> None:
    path = f"/pools/{pool_id}"
    response = requests.delete(
        f"{emulator.endpoint}{path}?{API}", headers=headers_for(emulator, path), timeout=10
    )
    _assert_403(response)
    pool = client.get_pool(pool_id)
    assert pool.state == "active" and pool.current_dedicated_nodes == 1
    client.begin_delete_pool(pool_id, polling_interval=0.05).result()  # type: ignore[arg-type]


def test_fault_control_api_needs_the_shared_key(emulator: BatchEmulatorServer) -> None:
    url = emulator.endpoint + CONTROL_PATH
    _assert_403(requests.get(url, headers={"ocp-date": _date()}, timeout=10))
    body = json.dumps({"rate": 1.0, "kinds": ["500"]}).encode()
    content = {"content-type": "application/json", "content-length": str(len(body))}
    forged = _signed(emulator, "PUT", CONTROL_PATH, "", content, OTHER_KEY)
    _assert_403(requests.put(url, data=body, headers=forged, timeout=10))
    assert emulator.fault_status()["plan"]["rate"] == 0.0  # unchanged

    # Signed, it works; and the control API itself is never faulted, even at a rate of 1.
    status = emulator.set_faults(rate=1.0, kinds=["500"])
    assert status["plan"]["rate"] == 1.0
    try:
        assert emulator.fault_status()["requests"] == 0
    finally:
        assert emulator.clear_faults()["plan"]["kinds"] == ["500"]
    assert emulator.fault_status()["plan"]["rate"] == 0.0


def test_fault_control_api_rejects_an_invalid_plan(emulator: BatchEmulatorServer) -> None:
    with pytest.raises(RuntimeError, match="rate"):
        emulator._control("PUT", json.dumps({"rate": 2}).encode())
    with pytest.raises(RuntimeError, match="kinds"):
        emulator._control("PUT", json.dumps({"rate": 0.5, "kinds": ["teapot"]}).encode())
    assert emulator.fault_status()["plan"]["rate"] == 0.0
