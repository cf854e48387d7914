"""The catalogue the emulated account offers: VM images with their node agent SKUs; VM size checks."""

from __future__ import annotations

import re
from typing import Any

from airflow_batch_provider.emulator.errors import invalid_property, missing_property
from airflow_batch_provider.emulator.models.vm_sizes import parse_vm_size


def _image(publisher: str, offer: str, sku: str, agent: str, os_type: str = "linux") -> dict[str, Any]:
    return {
        "nodeAgentSKUId": agent,
        "imageReference": {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest"},
        "osType": os_type,
        "verificationType": "verified",
        "capabilities": ["DockerCompatible", "NvidiaTeslaDriverInstalled"] if os_type == "linux" else [],
        "batchSupportEndOfLife": "2030-01-01T00:00:00.0000000Z",
    }


#: ``GET /supportedimages``. Any of these runs tasks as local processes in the emulator.
SUPPORTED_IMAGES: list[dict[str, Any]] = [
    _image("canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "batch.node.ubuntu 22.04"),
    _image("microsoft-dsvm", "ubuntu-hpc", "2204", "batch.node.ubuntu 22.04"),
    _image("canonical", "ubuntu-24_04-lts", "server", "batch.node.ubuntu 24.04"),
    _image("microsoft-azure-batch", "ubuntu-server-container", "22-04-lts", "batch.node.ubuntu 22.04"),
    _image("almalinux", "almalinux-x86_64", "9-gen2", "batch.node.el 9"),
    _image("debian", "debian-12", "12", "batch.node.debian 12"),
    _image(
        "microsoftwindowsserver", "windowsserver", "2022-datacenter", "batch.node.windows amd64", "windows"
    ),
]

NODE_AGENT_SKUS = sorted({image["nodeAgentSKUId"] for image in SUPPORTED_IMAGES})


def vm_cores(vm_size: str, path: str = "vmSize") -> int:
    """Cores ``vm_size`` counts against quota; 400 ``InvalidPropertyValue`` for a name that is no VM size."""
    size = parse_vm_size(vm_size)
    if size is None:
        raise invalid_property(
            path,
            vm_size,
            "Not an Azure VM size name; use one such as Standard_D2s_v3 "
            "(tier, family, vCPUs, features, version).",
        )
    return size.cores


#: A custom image's Resource Manager ID: a Compute Gallery image (optionally one version) or a managed image.
_IMAGE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/"
    r"(?:galleries/[^/]+/images/[^/]+(?:/versions/[^/]+)?|images/[^/]+)$",
    re.IGNORECASE,
)


def validate_image(configuration: dict[str, Any], path: str = "virtualMachineConfiguration") -> None:
    agent = configuration.get("nodeAgentSKUId")
    if not agent:
        raise missing_property(f"{path}/nodeAgentSKUId")
    if agent.lower() not in NODE_AGENT_SKUS:
        raise invalid_property(
            f"{path}/nodeAgentSKUId", agent, f"Supported node agent SKUs: {', '.join(NODE_AGENT_SKUS)}."
        )
    reference = configuration.get("imageReference")
    if reference is None:
        raise missing_property(f"{path}/imageReference")
    image_id = reference.get("virtualMachineImageId")
    if image_id is not None and not (isinstance(image_id, str) and _IMAGE_ID.match(image_id)):
        raise invalid_property(
            f"{path}/imageReference/virtualMachineImageId",
            image_id,
            "Not the Resource Manager ID of an image: use /subscriptions/{subscription}"
            "/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{gallery}/images/{image}"
            "[/versions/{version}] "
            "or .../providers/Microsoft.Compute/images/{image}.",
        )
