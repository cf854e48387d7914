"""``/jobs``: create, get, list, update, replace, disable, enable, terminate, delete, counts, prep status."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.errors import conflict
from airflow_batch_provider.emulator.routes.common import (
    accepted,
    created,
    entity_response,
    get_account,
    json_response,
    list_response,
    metadata_url,
    ok,
    read_json,
)

router = APIRouter()


@router.post("/jobs")
async def create_job(request: Request) -> Response:
    job = get_account(request).jobs.create(await read_json(request))
    return created(job, job.url)


@router.get("/jobs")
async def list_jobs(request: Request) -> Response:
    return list_response(request, [job.to_dict() for job in get_account(request).jobs.all()], "jobs")


@router.get("/jobs/{job_id}")
async def get_job(request: Request, job_id: str) -> Response:
    job = get_account(request).jobs.get(job_id)
    job.check_preconditions(request.headers, read=True)
    return entity_response(request, job, job.to_dict(), "jobs/@Element")


@router.patch("/jobs/{job_id}")
async def update_job(request: Request, job_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.jobs.get(job_id).check_preconditions(request.headers)
    job = account.jobs.update(job_id, body)
    return ok(job, job.url)


@router.put("/jobs/{job_id}")
async def replace_job(request: Request, job_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.jobs.get(job_id).check_preconditions(request.headers)
    job = account.jobs.replace(job_id, body)
    return ok(job, job.url)


@router.delete("/jobs/{job_id}")
async def delete_job(request: Request, job_id: str) -> Response:
    account = get_account(request)
    account.jobs.get(job_id).check_preconditions(request.headers)
    job = account.jobs.delete(job_id)
    return accepted(None, job.url)


@router.post("/jobs/{job_id}/disable")
async def disable_job(request: Request, job_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.jobs.get(job_id).check_preconditions(request.headers)
    job = account.jobs.disable(job_id, body)
    return accepted(job, job.url)


@router.post("/jobs/{job_id}/enable")
async def enable_job(request: Request, job_id: str) -> Response:
    account = get_account(request)
    account.jobs.get(job_id).check_preconditions(request.headers)
    job = account.jobs.enable(job_id)
    return accepted(job, job.url)


@router.post("/jobs/{job_id}/terminate")
async def terminate_job(request: Request, job_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.jobs.get(job_id).check_preconditions(request.headers)
    job = account.jobs.terminate(job_id, body)
    return accepted(job, job.url)


@router.get("/jobs/{job_id}/taskcounts")
async def get_task_counts(request: Request, job_id: str) -> Response:
    counts = get_account(request).jobs.task_counts(job_id)
    return json_response({"odata.metadata": metadata_url(request, "taskcountsresult/@Element"), **counts})


@router.get("/jobs/{job_id}/jobpreparationandreleasetaskstatus")
async def list_preparation_and_release_status(request: Request, job_id: str) -> Response:
    account = get_account(request)
    if account.jobs.get(job_id).preparation_task is None:
        raise conflict(
            "JobPreparationTaskNotSpecified", "The specified job does not have job preparation task."
        )
    entries = account.jobs.preparation_status(job_id)
    return list_response(request, entries, "jobpreparationandreleasetaskstatuslist")
