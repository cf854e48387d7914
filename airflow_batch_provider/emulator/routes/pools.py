"""``/pools``: create, get, list, exists, update, delete, resize, autoscale."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

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


@router.post("/pools")
async def create_pool(request: Request) -> Response:
    pool = get_account(request).pools.create(await read_json(request))
    return created(pool, pool.url)


@router.get("/pools")
async def list_pools(request: Request) -> Response:
    return list_response(request, [pool.to_dict() for pool in get_account(request).pools.all()], "pools")


@router.get("/pools/{pool_id}")
async def get_pool(request: Request, pool_id: str) -> Response:
    pool = get_account(request).pools.get(pool_id)
    pool.check_preconditions(request.headers, read=True)
    return entity_response(request, pool, pool.to_dict(), "pools/@Element")


@router.head("/pools/{pool_id}")
async def pool_exists(request: Request, pool_id: str) -> Response:
    pool = get_account(request).pools.get(pool_id)
    pool.check_preconditions(request.headers, read=True)
    return ok(pool)


@router.patch("/pools/{pool_id}")
async def update_pool(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.pools.get(pool_id).check_preconditions(request.headers)
    pool = account.pools.update(pool_id, body)
    return ok(pool, pool.url)


@router.delete("/pools/{pool_id}")
async def delete_pool(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    account.pools.get(pool_id).check_preconditions(request.headers)
    pool = account.pools.delete(pool_id)
    return accepted(None, pool.url)


@router.post("/pools/{pool_id}/updateproperties")
async def replace_pool_properties(request: Request, pool_id: str) -> Response:
    body = await read_json(request)
    pool = get_account(request).pools.replace_properties(pool_id, body)
    return ok(pool, pool.url, status=204)


@router.post("/pools/{pool_id}/resize")
async def resize_pool(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.pools.get(pool_id).check_preconditions(request.headers)
    pool = account.pools.resize(pool_id, body)
    return accepted(pool, pool.url)


@router.post("/pools/{pool_id}/stopresize")
async def stop_pool_resize(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    account.pools.get(pool_id).check_preconditions(request.headers)
    pool = account.pools.stop_resize(pool_id)
    return accepted(pool, pool.url)


@router.post("/pools/{pool_id}/removenodes")
async def remove_nodes(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.pools.get(pool_id).check_preconditions(request.headers)
    pool = account.pools.remove_nodes(pool_id, body)
    return accepted(pool, pool.url)


@router.post("/pools/{pool_id}/enableautoscale")
async def enable_auto_scale(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    body = await read_json(request)
    account.pools.get(pool_id).check_preconditions(request.headers)
    pool = account.pools.enable_auto_scale(pool_id, body)
    return ok(pool, pool.url)


@router.post("/pools/{pool_id}/disableautoscale")
async def disable_auto_scale(request: Request, pool_id: str) -> Response:
    pool = get_account(request).pools.disable_auto_scale(pool_id)
    return ok(pool, pool.url)


@router.post("/pools/{pool_id}/evaluateautoscale")
async def evaluate_auto_scale(request: Request, pool_id: str) -> Response:
    account = get_account(request)
    run = account.pools.evaluate_auto_scale(pool_id, await read_json(request))
    pool = account.pools.get(pool_id)
    response = json_response(
        {
            "odata.metadata": metadata_url(request, "Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"),
            **run,
        }
    )
    response.headers["DataServiceId"] = pool.url
    return response
