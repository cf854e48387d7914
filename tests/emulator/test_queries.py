"""List options and conditional requests: paging, $filter, $select, If-Match / If-None-Match."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError
from azure.core.pipeline import PipelineResponse

from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import error_of, sh, unique, wait_for_task


@pytest.fixture(scope="module")
def finished_job(client: BatchClient, shared_pool: str) -> str:
    """25 completed tasks: a0..a9 succeed, b0..b9 succeed, c0..c4 fail."""
    job_id = unique("query")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=shared_pool)))
    tasks = [m.BatchTaskCreateOptions(id=f"{p}{i}", command_line="true") for p in "ab" for i in range(10)]
    tasks += [m.BatchTaskCreateOptions(id=f"c{i}", command_line=sh("exit 1")) for i in range(5)]
    client.create_tasks(job_id, tasks)
    for task in tasks:
        wait_for_task(client, job_id, task.id)
    return job_id


def test_paging_follows_absolute_next_links(
    client: BatchClient, emulator: BatchEmulatorServer, finished_job: str
) -> None:
    bodies: list[dict[str, Any]] = []

    def keep(response: PipelineResponse) -> None:
        bodies.append(json.loads(response.http_response.text()))

    ids = [task.id for task in client.list_tasks(finished_job, max_results=10, raw_response_hook=keep)]
    assert len(ids) == 25 and len(set(ids)) == 25
    assert [len(body["value"]) for body in bodies] == [10, 10, 5]
    assert bodies[0]["odata.nextLink"].startswith(f"{emulator.endpoint}/jobs/{finished_job}/tasks?")
    assert "odata.nextLink" not in bodies[-1]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("state eq 'completed'", 25),
        ("startswith(id,'a')", 10),
        ("executionInfo/result eq 'failure'", 5),
        ("startswith(id,'a') or startswith(id,'c')", 15),
        ("(startswith(id,'a') or startswith(id,'c')) and executionInfo/result eq 'success'", 10),
        ("state eq 'active'", 0),
        ("id eq 'b3'", 1),
    ],
)
def test_filters(client: BatchClient, finished_job: str, expression: str, expected: int) -> None:
    assert len(list(client.list_tasks(finished_job, filter=expression, max_results=7))) == expected


def test_filter_with_paging_keeps_the_filter(client: BatchClient, finished_job: str) -> None:
    ids = [task.id for task in client.list_tasks(finished_job, filter="startswith(id,'b')", max_results=3)]
    assert sorted(ids) == [f"b{i}" for i in range(10)]


def test_invalid_filter_and_page_size(client: BatchClient, finished_job: str) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        list(client.list_tasks(finished_job, filter="state eq"))
    assert error_of(excinfo) == (400, "InvalidQueryParameterValue")
    with pytest.raises(HttpResponseError) as excinfo:
        list(client.list_tasks(finished_job, max_results=5000))
    assert error_of(excinfo) == (400, "OutOfRangeQueryParameterValue")


def test_select_trims_properties(client: BatchClient, finished_job: str, shared_pool: str) -> None:
    task = next(iter(client.list_tasks(finished_job, select=["id", "state"])))
    assert task.id and task.state == "completed"
    assert task.command_line is None and task.execution_info is None
    pool = client.get_pool(shared_pool, select=["id", "vmSize"])
    assert pool.vm_size == "standard_d2s_v3" and pool.state is None


def test_if_match_protects_writes(client: BatchClient, shared_pool: str) -> None:
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=shared_pool)))
    etag = client.get_job(job_id).etag
    client.update_job(
        job_id, m.BatchJobUpdateOptions(priority=1), etag=etag, match_condition=MatchConditions.IfNotModified
    )
    with pytest.raises(ResourceModifiedError) as excinfo:
        client.update_job(
            job_id,
            m.BatchJobUpdateOptions(priority=2),
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )
    assert error_of(excinfo) == (412, "ConditionNotMet")
    assert client.get_job(job_id).priority == 1
    with pytest.raises(ResourceModifiedError):
        client.begin_delete_job(job_id, etag=etag, match_condition=MatchConditions.IfNotModified)
    assert client.get_job(job_id).state == "active"


def test_if_none_match_on_reads(client: BatchClient, shared_pool: str) -> None:
    pool = client.get_pool(shared_pool)
    # 304 Not Modified; azure-batch 15.1.0's exception policy maps 304 to ResourceModifiedError.
    with pytest.raises(ResourceModifiedError) as excinfo:
        client.get_pool(shared_pool, etag=pool.etag, match_condition=MatchConditions.IfModified)
    assert excinfo.value.status_code == 304
    assert (
        client.get_pool(shared_pool, etag="0x1", match_condition=MatchConditions.IfModified).id == shared_pool
    )
