"""Account-wide resources: ``/supportedimages``, ``/nodecounts`` and ``/applications``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_batch_provider.emulator.models.images import SUPPORTED_IMAGES
from airflow_batch_provider.emulator.routes.common import (
    get_account,
    json_response,
    list_response,
    metadata_url,
)

router = APIRouter()


@router.get("/supportedimages")
async def list_supported_images(request: Request) -> Response:
    return list_response(request, SUPPORTED_IMAGES, "supportedimages")


@router.get("/applications")
async def list_applications(request: Request) -> Response:
    return list_response(request, get_account(request).applications.all(), "applications")


@router.get("/applications/{application_id}")
async def get_application(request: Request, application_id: str) -> Response:
    application = get_account(request).applications.get(application_id)
    return json_response({"odata.metadata": metadata_url(request, "applications/@Element"), **application})


@router.get("/nodecounts")
async def list_pool_node_counts(request: Request) -> Response:
    return list_response(request, get_account(request).pools.node_counts(), "poolnodecounts")
