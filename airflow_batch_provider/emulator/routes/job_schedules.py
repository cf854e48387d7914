"""``/jobschedules``: create, get, list, exists, update, replace, disable, enable, terminate, delete, jobs."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.routes.common import (
    accepted,
    created,
    entity_response,
    get_account,
    list_response,
    ok,
    query,
    read_json,
)

router = APIRouter()


def _wants_stats(request: Request) -> bool:
    expand = query(request).get("$expand") or ""
    return "stats" in (item.strip().lower() for item in expand.split(","))


@router.post("/jobschedules")
async def create_job_schedule(request: Request) -> Response:
    schedule = get_account(request).job_schedules.create(await read_json(request))
    return created(schedule, schedule.url)


@router.get("/jobschedules")
async def list_job_schedules(request: Request) -> Response:
    stats = _wants_stats(request)
    documents = [schedule.to_dict(stats=stats) for schedule in get_account(request).job_schedules.all()]
    return list_response(request, documents, "jobschedules")


@router.get("/jobschedules/{schedule_id}")
async def get_job_schedule(request: Request, schedule_id: str) -> Response:
    schedule = get_account(request).job_schedules.get(schedule_id)
    schedule.check_preconditions(request.headers, read=True)
    document = schedule.to_dict(stats=_wants_stats(request))
    return entity_response(request, schedule, document, "jobschedules/@Element")


@router.head("/jobschedules/{schedule_id}")
async def job_schedule_exists(request: Request, schedule_id: str) -> Response:
    schedule = get_account(request).job_schedules.get(schedule_id)
    schedule.check_preconditions(request.headers, read=True)
    return ok(schedule)


@router.patch("/jobschedules/{schedule_id}")
async def update_job_schedule(request: Request, schedule_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.job_schedules.get(schedule_id).check_preconditions(request.headers)
    schedule = account.job_schedules.update(schedule_id, body)
    return ok(schedule, schedule.url)


@router.put("/jobschedules/{schedule_id}")
async def replace_job_schedule(request: Request, schedule_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.job_schedules.get(schedule_id).check_preconditions(request.headers)
    schedule = account.job_schedules.replace(schedule_id, body)
    return ok(schedule, schedule.url)


@router.delete("/jobschedules/{schedule_id}")
async def delete_job_schedule(request: Request, schedule_id: str) -> Response:
    account = get_account(request)
    account.job_schedules.get(schedule_id).check_preconditions(request.headers)
    schedule = account.job_schedules.delete(schedule_id)
    return accepted(None, schedule.url)


@router.post("/jobschedules/{schedule_id}/disable")
async def disable_job_schedule(request: Request, schedule_id: str) -> Response:
    account = get_account(request)
    account.job_schedules.get(schedule_id).check_preconditions(request.headers)
    schedule = account.job_schedules.disable(schedule_id)
    return ok(schedule, schedule.url, status=204)


@router.post("/jobschedules/{schedule_id}/enable")
async def enable_job_schedule(request: Request, schedule_id: str) -> Response:
    account = get_account(request)
    account.job_schedules.get(schedule_id).check_preconditions(request.headers)
    schedule = account.job_schedules.enable(schedule_id)
    return ok(schedule, schedule.url, status=204)


@router.post("/jobschedules/{schedule_id}/terminate")
async def terminate_job_schedule(request: Request, schedule_id: str) -> Response:
    account = get_account(request)
    account.job_schedules.get(schedule_id).check_preconditions(request.headers)
    schedule = account.job_schedules.terminate(schedule_id)
    return accepted(schedule, schedule.url)


@router.get("/jobschedules/{schedule_id}/jobs")
async def list_jobs_from_schedule(request: Request, schedule_id: str) -> Response:
    schedule = get_account(request).job_schedules.get(schedule_id)
    return list_response(request, [job.to_dict() for job in schedule.jobs()], "jobs")
