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
