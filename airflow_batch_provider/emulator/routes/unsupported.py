"""Parts of the Batch API the emulator answers without modelling them: empty where that is honest."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.routes.common import json_response, metadata_url

router = APIRouter()


@router.get("/poolusagemetrics")
async def list_pool_usage_metrics(request: Request) -> Response:
    return json_response({"odata.metadata": metadata_url(request, "poolusagemetrics"), "value": []})
