"""Access to a node: its user accounts, remote login settings, VM extensions and service log upload."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.compute.runner import service_logs
from airflow_batch_provider.emulator.models import node_users
from airflow_batch_provider.emulator.models.network import remote_login_settings
from airflow_batch_provider.emulator.models.node_extensions import node_extension, node_extensions
from airflow_batch_provider.emulator.models.nodes import Node, node_busy
from airflow_batch_provider.emulator.routes.common import (
    get_account,
    json_response,
    list_response,
    metadata_url,
    ok,
    read_json,
)

router = APIRouter()


def _entity(request: Request, entity: str, body: dict[str, Any]) -> Response:
    """200 with a result object, under the service's OData metadata type."""
    fragment = f"Microsoft.Azure.Batch.Protocol.Entities.{entity}"
    return json_response({"odata.metadata": metadata_url(request, fragment), **body})


def _ready_node(request: Request, pool_id: str, node_id: str) -> Node:
    """The node, when its agent can manage accounts; 409 naming its state otherwise."""
    node = get_account(request).nodes.get(pool_id, node_id)
    if node.state not in node_users.USER_STATES:
        raise node_busy(node)
    return node


@router.post("/pools/{pool_id}/nodes/{node_id}/users")
async def create_node_user(request: Request, pool_id: str, node_id: str) -> Response:
    node = _ready_node(request, pool_id, node_id)
    user = node_users.create_user(node, await read_json(request))
    url = f"{node.url}/users/{quote(user.name)}"
    return Response(status_code=201, headers={"DataServiceId": url, "Location": url})


@router.put("/pools/{pool_id}/nodes/{node_id}/users/{user_name}")
async def replace_node_user(request: Request, pool_id: str, node_id: str, user_name: str) -> Response:
    node = _ready_node(request, pool_id, node_id)
    node_users.replace_user(node, user_name, await read_json(request))
    return ok(None, f"{node.url}/users/{quote(user_name)}")


@router.delete("/pools/{pool_id}/nodes/{node_id}/users/{user_name}")
async def delete_node_user(request: Request, pool_id: str, node_id: str, user_name: str) -> Response:
    node = _ready_node(request, pool_id, node_id)
    node_users.delete_user(node, user_name)
    return ok(None)


@router.get("/pools/{pool_id}/nodes/{node_id}/remoteloginsettings")
async def get_remote_login_settings(request: Request, pool_id: str, node_id: str) -> Response:
    node = get_account(request).nodes.get(pool_id, node_id)
    settings = remote_login_settings(node.public_addresses, node.pool.network, node.pool.windows, node.index)
    return _entity(request, "ComputeNodeGetRemoteLoginSettingsResult", settings)


@router.get("/pools/{pool_id}/nodes/{node_id}/extensions")
async def list_node_extensions(request: Request, pool_id: str, node_id: str) -> Response:
    node = get_account(request).nodes.get(pool_id, node_id)
    return list_response(request, node_extensions(node), "extensions")


@router.get("/pools/{pool_id}/nodes/{node_id}/extensions/{extension_name}")
async def get_node_extension(request: Request, pool_id: str, node_id: str, extension_name: str) -> Response:
    node = get_account(request).nodes.get(pool_id, node_id)
    document = node_extension(node, extension_name)
    return json_response({"odata.metadata": metadata_url(request, "extensions/@Element"), **document})


@router.post("/pools/{pool_id}/nodes/{node_id}/uploadbatchservicelogs")
async def upload_batch_service_logs(request: Request, pool_id: str, node_id: str) -> Response:
    account = get_account(request)
    node = account.nodes.get(pool_id, node_id)
    plan = service_logs.plan_upload(node, await read_json(request))
    account.spawn(service_logs.upload(plan))
    return _entity(request, "UploadBatchServiceLogsResult", plan.result())
