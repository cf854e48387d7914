"""Parts of the Batch API the emulator does not model: empty where that is honest, else 501."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.routes.common import json_response, metadata_url

router = APIRouter()


def not_supported(feature: str) -> BatchError:
    return BatchError(
        501,
        "NotImplemented",
        f"{feature} are not supported by the local Batch emulator.",
        {"Reason": "Use a real Batch account for this feature."},
    )


@router.get("/poolusagemetrics")
async def list_pool_usage_metrics(request: Request) -> Response:
    return json_response({"odata.metadata": metadata_url(request, "poolusagemetrics"), "value": []})


@router.api_route("/pools/{pool_id}/nodes/{node_id}/users", methods=["POST"])
@router.api_route("/pools/{pool_id}/nodes/{node_id}/users/{user}", methods=["PUT", "DELETE"])
async def node_users(request: Request) -> Response:
    raise not_supported("Node user accounts")


@router.get("/pools/{pool_id}/nodes/{node_id}/remoteloginsettings")
async def remote_login(request: Request) -> Response:
    raise not_supported("Remote login settings")


@router.post("/pools/{pool_id}/nodes/{node_id}/uploadbatchservicelogs")
async def upload_logs(request: Request) -> Response:
    raise not_supported("Batch service log uploads")


@router.get("/pools/{pool_id}/nodes/{node_id}/extensions")
@router.get("/pools/{pool_id}/nodes/{node_id}/extensions/{extension}")
async def extensions(request: Request) -> Response:
    raise not_supported("VM extensions")
