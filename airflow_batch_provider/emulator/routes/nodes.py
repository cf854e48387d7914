"""``/pools/{poolId}/nodes``: list, get, reboot, scheduling on/off, node files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.odata import apply_select
from airflow_batch_provider.emulator.routes import files
from airflow_batch_provider.emulator.routes.common import (
    accepted,
    get_account,
    json_response,
    list_response,
    metadata_url,
    ok,
    read_json,
    versioned,
)
from airflow_batch_provider.emulator.routes.common import query as query_params

router = APIRouter()


@router.get("/pools/{pool_id}/nodes")
async def list_nodes(request: Request, pool_id: str) -> Response:
    nodes = get_account(request).nodes.all(pool_id)
    return list_response(request, [node.to_dict() for node in nodes], "nodes")


@router.get("/pools/{pool_id}/nodes/{node_id}")
async def get_node(request: Request, pool_id: str, node_id: str) -> Response:
    node = get_account(request).nodes.get(pool_id, node_id)
    document = apply_select(versioned(request, node.to_dict()), query_params(request).get("$select"))
    return json_response({"odata.metadata": metadata_url(request, "nodes/@Element"), **document})


@router.post("/pools/{pool_id}/nodes/{node_id}/reboot")
async def reboot_node(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    account.nodes.reboot(pool_id, node_id, await read_json(request))
    return accepted(None, account.nodes.get(pool_id, node_id).url)


@router.post("/pools/{pool_id}/nodes/{node_id}/reimage")
async def reimage_node(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    account.nodes.reimage(pool_id, node_id, await read_json(request))
    return accepted(None, account.nodes.get(pool_id, node_id).url)


@router.post("/pools/{pool_id}/nodes/{node_id}/deallocate")
async def deallocate_node(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    account.nodes.deallocate(pool_id, node_id, await read_json(request))
    return accepted(None, account.nodes.get(pool_id, node_id).url)


@router.post("/pools/{pool_id}/nodes/{node_id}/start")
async def start_node(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    account.nodes.start(pool_id, node_id)
    return accepted(None, account.nodes.get(pool_id, node_id).url)


@router.post("/pools/{pool_id}/nodes/{node_id}/disablescheduling")
async def disable_node_scheduling(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    account.nodes.disable_scheduling(pool_id, node_id, await read_json(request))
    return ok(None, account.nodes.get(pool_id, node_id).url)


@router.post("/pools/{pool_id}/nodes/{node_id}/enablescheduling")
async def enable_node_scheduling(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    account.nodes.enable_scheduling(pool_id, node_id)
    return ok(None, account.nodes.get(pool_id, node_id).url)


@router.get("/pools/{pool_id}/nodes/{node_id}/files")
async def list_node_files(request: Request, pool_id: str, node_id: str) -> Response:
    node = get_account(request).nodes.get(pool_id, node_id)
    return await files.list_files(request, node.root, f"{node.url}/files", "files")


def _file_url(request: Request, pool_id: str, node_id: str, file_path: str) -> tuple[Path, str]:
    node = get_account(request).nodes.get(pool_id, node_id)
    return node.root, f"{node.url}/files/{quote(file_path, safe='')}"


@router.get("/pools/{pool_id}/nodes/{node_id}/files/{file_path:path}")
async def get_node_file(request: Request, pool_id: str, node_id: str, file_path: str) -> Response:
    root, url = _file_url(request, pool_id, node_id, file_path)
    return await files.download(request, root, file_path, url)


@router.head("/pools/{pool_id}/nodes/{node_id}/files/{file_path:path}")
async def get_node_file_properties(request: Request, pool_id: str, node_id: str, file_path: str) -> Response:
    root, url = _file_url(request, pool_id, node_id, file_path)
    return files.file_properties(request, root, file_path, url)


@router.delete("/pools/{pool_id}/nodes/{node_id}/files/{file_path:path}")
async def delete_node_file(request: Request, pool_id: str, node_id: str, file_path: str) -> Response:
    root, _ = _file_url(request, pool_id, node_id, file_path)
    return files.delete(request, root, file_path)
