"""Property-based fuzzing of the emulator's REST API, driven by the service's own specification.

``schemathesis`` generates requests for every operation of the committed schema subset
(``emulator/request_schema.json``, generated from the REST specification): valid and invalid bodies,
path and query values. Each request is signed with Shared Key (so it gets past authentication and
reaches the intake and the routes) and must be answered with 2xx or 4xx, never 5xx, within 2 s. A
fixed seed and a fixed number of examples per operation keep the run reproducible and bounded (about
a minute on two cores); afterwards the emulator must still serve an ordinary request.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from hypothesis import HealthCheck, Phase, seed, settings

from airflow_batch_provider.emulator.api_versions import LATEST as API_VERSION
from airflow_batch_provider.emulator.auth import authorization_header
from airflow_batch_provider.emulator.request_bodies import request_schema
from airflow_batch_provider.testing.emulator import BatchEmulatorServer

#: Generated cases per operation (72 operations) and the slowest answer allowed.
EXAMPLES_PER_OPERATION = 20
MAX_RESPONSE_SECONDS = 2.0
SEED = 20261204

schema = schemathesis.openapi.from_dict(request_schema())


class SharedKeyAuth(requests.auth.AuthBase):
    """Signs the final request (body and Content-Length included) the way the Batch SDK does."""

    def __init__(self, emulator: BatchEmulatorServer) -> None:
        self.emulator = emulator

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url or "")
        request.headers["ocp-date"] = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        headers = {name: str(value) for name, value in request.headers.items()}
        request.headers["Authorization"] = authorization_header(
            request.method or "GET",
            url.path,
            url.query,
            headers,
            self.emulator.account_name,
            self.emulator.account_key,
        )
        return request


@pytest.fixture(scope="module")
def session() -> requests.Session:
    return requests.Session()


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate, Phase.shrink],
)
def test_no_request_gets_a_server_error_or_stalls(
    case: schemathesis.Case, fuzz_emulator: BatchEmulatorServer, session: requests.Session
) -> None:
    case.query = {**(case.query or {}), "api-version": API_VERSION}
    started = time.monotonic()
    response = case.call(
        base_url=fuzz_emulator.endpoint, session=session, auth=SharedKeyAuth(fuzz_emulator), timeout=10
    )
    elapsed = time.monotonic() - started
    # 501 is the documented answer for a feature the emulator does not emulate.
    assert response.status_code < 500 or response.status_code == 501, (
        f"{case.method} {case.formatted_path}: {response.text[:500]}"
    )
    assert elapsed < MAX_RESPONSE_SECONDS, f"{case.method} {case.formatted_path} took {elapsed:.2f} s"


def test_emulator_is_healthy_after_fuzzing(fuzz_emulator: BatchEmulatorServer) -> None:
    client = BatchClient(
        fuzz_emulator.endpoint, AzureNamedKeyCredential(fuzz_emulator.account_name, fuzz_emulator.account_key)
    )
    job_id = f"after-fuzz-{int(time.time())}"
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="any")))
    assert client.get_job(job_id).id == job_id
