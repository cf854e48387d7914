"""``/jobs/{jobId}/tasks``: create (one or many), get, list, update, terminate, reactivate, delete, files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.errors import conflict
from airflow_batch_provider.emulator.models.tasks import Task
from airflow_batch_provider.emulator.routes import files
from airflow_batch_provider.emulator.routes.common import (
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


@router.post("/jobs/{job_id}/tasks")
async def create_task(request: Request, job_id: str) -> Response:
    task = get_account(request).tasks.create(job_id, await read_json(request))
    return created(task, task.url)


@router.post("/jobs/{job_id}/addtaskcollection")
async def create_task_collection(request: Request, job_id: str) -> Response:
    # A body over 1 MB was refused unread (413 RequestBodyTooLarge) before the route runs.
    body = await read_json(request)
    results = get_account(request).tasks.create_collection(job_id, body, len(await request.body()))
    return json_response({"odata.metadata": metadata_url(request, "taskaddresult"), "value": results})


@router.get("/jobs/{job_id}/tasks")
async def list_tasks(request: Request, job_id: str) -> Response:
    tasks = get_account(request).tasks.all(job_id)
    return list_response(request, [task.to_dict() for task in tasks], "tasks")


@router.get("/jobs/{job_id}/tasks/{task_id}")
async def get_task(request: Request, job_id: str, task_id: str) -> Response:
    task = get_account(request).tasks.get(job_id, task_id)
    task.check_preconditions(request.headers, read=True)
    return entity_response(request, task, task.to_dict(), "tasks/@Element")


@router.put("/jobs/{job_id}/tasks/{task_id}")
async def replace_task(request: Request, job_id: str, task_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.tasks.get(job_id, task_id).check_preconditions(request.headers)
    task = account.tasks.replace(job_id, task_id, body)
    return ok(task, task.url)


@router.delete("/jobs/{job_id}/tasks/{task_id}")
async def delete_task(request: Request, job_id: str, task_id: str) -> Response:
    account = get_account(request)
    account.tasks.get(job_id, task_id).check_preconditions(request.headers)
    account.tasks.delete(job_id, task_id)
    return ok(None)


@router.post("/jobs/{job_id}/tasks/{task_id}/terminate")
async def terminate_task(request: Request, job_id: str, task_id: str) -> Response:
    account = get_account(request)
    account.tasks.get(job_id, task_id).check_preconditions(request.headers)
    task = account.tasks.terminate(job_id, task_id)
    return ok(task, task.url, status=204)


@router.post("/jobs/{job_id}/tasks/{task_id}/reactivate")
async def reactivate_task(request: Request, job_id: str, task_id: str) -> Response:
    account = get_account(request)
    account.tasks.get(job_id, task_id).check_preconditions(request.headers)
    task = account.tasks.reactivate(job_id, task_id)
    return ok(task, task.url, status=204)


@router.get("/jobs/{job_id}/tasks/{task_id}/subtasksinfo")
async def list_subtasks(request: Request, job_id: str, task_id: str) -> Response:
    get_account(request).tasks.get(job_id, task_id)
    return json_response({"odata.metadata": metadata_url(request, "subtaskinformations"), "value": []})


def _task_root(request: Request, job_id: str, task_id: str) -> tuple[Task, Path]:
    task = get_account(request).tasks.get(job_id, task_id)
    if task.node is None:
        raise conflict("TaskFilesUnavailable", "The files of the specified task are unavailable.")
    root = task.task_dir(task.node)
    # A task that has just started may not have its directory yet (the runner creates it off the
    # API's loop): it has no files so far. Only a completed task's files can have been cleaned up.
    if task.state == "completed" and not root.exists():
        raise conflict("TaskFilesCleanedup", "The files of the specified task are cleanedup.")
    return task, root


@router.get("/jobs/{job_id}/tasks/{task_id}/files")
async def list_task_files(request: Request, job_id: str, task_id: str) -> Response:
    task, root = _task_root(request, job_id, task_id)
    return await files.list_files(request, root, f"{task.url}/files", "files")


@router.get("/jobs/{job_id}/tasks/{task_id}/files/{file_path:path}")
async def get_task_file(request: Request, job_id: str, task_id: str, file_path: str) -> Response:
    task, root = _task_root(request, job_id, task_id)
    return await files.download(request, root, file_path, f"{task.url}/files/{quote(file_path, safe='')}")


@router.head("/jobs/{job_id}/tasks/{task_id}/files/{file_path:path}")
async def get_task_file_properties(request: Request, job_id: str, task_id: str, file_path: str) -> Response:
    task, root = _task_root(request, job_id, task_id)
    return files.file_properties(request, root, file_path, f"{task.url}/files/{quote(file_path, safe='')}")


@router.delete("/jobs/{job_id}/tasks/{task_id}/files/{file_path:path}")
async def delete_task_file(request: Request, job_id: str, task_id: str, file_path: str) -> Response:
    _, root = _task_root(request, job_id, task_id)
    return files.delete(request, root, file_path)
