"""The fault injection itself: seeded, filtered, and each kind as a client sees it.

Both the Batch emulator's middleware and the Storage fault proxy are driven through their public
controls and observed through the real SDK clients, with the SDK's own retries switched off.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseError
from azure.storage.blob import BlobServiceClient

from airflow_batch_provider.emulator.cli import main as emulator_main
from airflow_batch_provider.emulator.faults import ALL_KINDS, FaultInjector, FaultPlan, plan_from_options
from airflow_batch_provider.testing.stack import LocalAzureStack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(faulty_stack: LocalAzureStack) -> Iterator[LocalAzureStack]:
    yield faulty_stack
    faulty_stack.clear_faults()


@pytest.fixture
def batch(stack: LocalAzureStack) -> BatchClient:
    credential = AzureNamedKeyCredential(stack.batch.account_name, stack.batch.account_key)
    return BatchClient(stack.batch.endpoint, credential, retry_total=0)


@pytest.fixture
def blob(stack: LocalAzureStack) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(stack.blob_connection_string, retry_total=0)


def _job(job_id: str) -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="anywhere"))


def _job_exists(batch: BatchClient, job_id: str) -> bool:
    try:
        batch.get_job(job_id)
    except ResourceNotFoundError:
        return False
    return True


# -- plans -------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_faults_per_ordinal() -> None:
    plan = FaultPlan(rate=0.2, seed=7)
    first = [plan.fault_for(ordinal) for ordinal in range(2000)]
    assert first == [FaultPlan(rate=0.2, seed=7).fault_for(ordinal) for ordinal in range(2000)]
    assert first != [FaultPlan(rate=0.2, seed=8).fault_for(ordinal) for ordinal in range(2000)]
    faulted = [kind for kind in first if kind is not None]
    assert 0.17 < len(faulted) / len(first) < 0.23
    assert set(faulted) == set(ALL_KINDS)
    assert all(FaultPlan(rate=0.0, seed=7).fault_for(ordinal) is None for ordinal in range(200))


def test_filters_and_limits_decide_which_requests_count() -> None:
    injector = FaultInjector(
        FaultPlan(rate=1.0, kinds=("503",), methods=("post",), path_pattern=r"^/pools$", max_faults=2)
    )
    assert injector.choose("GET", "/pools") is None
    assert injector.choose("POST", "/jobs") is None
    assert injector.choose("POST", "/_emulator/faults") is None
    assert [injector.choose("POST", "/pools") for _ in range(3)] == ["503", "503", None]
    assert injector.status()["requests"] == 3 and injector.status()["by_kind"] == {"503": 2}
    injector.set_plan(None)
    assert injector.status()["requests"] == 0 and injector.records == []
    injector.set_plan(FaultPlan(rate=1.0, kinds=("500",), user_agent_pattern="airflow-batch-provider"))
    assert injector.choose("PUT", "/acct/c/blob", "azsdk-python-storage-blob/12.31 Python/3.11") is None
    assert (
        injector.choose("PUT", "/acct/c/blob", "airflow-batch-provider/0.1.0 azsdk-python-storage-blob")
        == "500"
    )


def test_storage_faults_hit_the_provider_not_the_nodes(stack: LocalAzureStack) -> None:
    stack.set_faults(rate=0.2, seed=3)
    assert stack.storage_proxy is not None
    plan = stack.storage_proxy.fault_status()["plan"]
    assert plan["user_agent_pattern"] == "airflow\\-batch\\-provider" and "429" not in plan["kinds"]
    assert stack.batch.fault_status()["plan"]["user_agent_pattern"] is None
    stack.set_faults(rate=0.2, seed=3, nodes_too=True)
    assert stack.storage_proxy.fault_status()["plan"]["user_agent_pattern"] is None


def test_invalid_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="kinds"):
        plan_from_options(0.5, 1, "500,teapot")
    with pytest.raises(ValueError, match="path_pattern"):
        FaultPlan(path_pattern="(")
    assert plan_from_options(0.2, 3, "reset, lost").kinds == ("reset", "lost")


def test_cli_refuses_invalid_fault_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator_main(["--fault-rate", "0.5", "--fault-kinds", "500,teapot"]) == 2
    assert "invalid fault options" in capsys.readouterr().err


# -- the Batch emulator --------------------------------------------------------------------------------


def test_the_emulator_repeats_the_sequence_of_a_seed(stack: LocalAzureStack, batch: BatchClient) -> None:
    def run() -> list[tuple[int, str]]:
        stack.batch.set_faults(rate=0.3, seed=11, kinds=["500", "503", "429"], retry_after=0.01)
        for _ in range(40):
            with contextlib.suppress(HttpResponseError):
                batch.get_job("no-such-job")
        return [(record.ordinal, record.kind) for record in stack.batch.fault_records]

    first = run()
    assert first and first == run()
    assert [ordinal for ordinal, _ in first] == [
        ordinal
        for ordinal in range(40)
        if FaultPlan(rate=0.3, seed=11, kinds=("500", "503", "429")).fault_for(ordinal)
    ]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("500", 500, "InternalError"), ("503", 503, "ServerBusy"), ("429", 429, "TooManyRequests")],
)
def test_error_answers_change_nothing(
    stack: LocalAzureStack, batch: BatchClient, kind: str, status: int, code: str
) -> None:
    stack.batch.set_faults(rate=1.0, kinds=[kind], retry_after=2.5)
    with pytest.raises(HttpResponseError) as info:
        batch.create_job(_job(f"fault-{kind}"))
    stack.batch.clear_faults()
    assert info.value.status_code == status and info.value.error is not None and info.value.error.code == code
    headers = info.value.response.headers
    if status in (429, 503):
        assert headers["Retry-After"] == "3" and headers["x-ms-retry-after-ms"] == "2500"
    assert headers["request-id"]
    assert not _job_exists(batch, f"fault-{kind}")


@pytest.mark.parametrize(("kind", "committed"), [("reset", False), ("lost", True)])
def test_dropped_connections_commit_only_when_lost(
    stack: LocalAzureStack, batch: BatchClient, kind: str, committed: bool
) -> None:
    job_id = f"fault-{kind}-{time.monotonic_ns()}"
    stack.batch.set_faults(rate=1.0, kinds=[kind])
    with pytest.raises(ServiceResponseError):
        batch.create_job(_job(job_id))
    stack.batch.clear_faults()
    assert _job_exists(batch, job_id) is committed
    if committed:
        batch.begin_delete_job(job_id, polling_interval=0.05).result()  # type: ignore[arg-type]


def test_latency_delays_but_serves(stack: LocalAzureStack, batch: BatchClient) -> None:
    stack.batch.set_faults(rate=1.0, kinds=["latency"], latency=0.3)
    started = time.monotonic()
    assert list(batch.list_supported_images())
    assert time.monotonic() - started >= 0.3


# -- the Storage proxy ---------------------------------------------------------------------------------


def test_storage_proxy_faults_like_storage(stack: LocalAzureStack, blob: BlobServiceClient) -> None:
    proxy = stack.storage_proxy
    assert proxy is not None
    container = blob.get_container_client("fault-proxy")
    if not container.exists():
        container.create_container()
    for kind, code in (("500", "InternalError"), ("503", "ServerBusy")):
        proxy.set_faults(rate=1.0, kinds=[kind])
        with pytest.raises(HttpResponseError) as info:
            container.upload_blob(f"error-{kind}", b"x")
        assert info.value.error_code == code
    proxy.set_faults(rate=1.0, kinds=["reset"])
    with pytest.raises(ServiceResponseError):
        container.upload_blob("reset", b"x")
    proxy.set_faults(rate=1.0, kinds=["lost"])
    with pytest.raises(ServiceResponseError):
        container.upload_blob("lost", b"x")
    proxy.clear_faults()
    assert sorted(item.name for item in container.list_blobs()) == ["lost"]
    # Requests and answers pass byte for byte: HEAD keeps its Content-Length, names their encoding.
    container.upload_blob("dir/a b+c.txt", b"hello world")
    assert container.get_blob_client("dir/a b+c.txt").get_blob_properties().size == 11
    assert container.download_blob("dir/a b+c.txt").readall() == b"hello world"
    container.delete_container()
    # Storage throttles with 503, never 429: the proxy's default kinds leave 429 out.
    assert proxy.set_faults(rate=0.1)["plan"]["kinds"] == ["500", "503", "reset", "latency", "lost"]
