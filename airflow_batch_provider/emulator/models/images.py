"""The catalogue the emulated account offers: VM images with their node agent SKUs, and VM sizes."""

from __future__ import annotations

from typing import Any

from airflow_batch_provider.emulator.errors import invalid_property, missing_property


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

#: vCPUs per VM size (lower-case names), for the account's core quota.
VM_SIZE_CORES: dict[str, int] = {
    "standard_a1_v2": 1,
    "standard_a2_v2": 2,
    "standard_a4_v2": 4,
    "standard_a8_v2": 8,
    "standard_d2_v3": 2,
    "standard_d4_v3": 4,
    "standard_d8_v3": 8,
    "standard_d2s_v3": 2,
    "standard_d4s_v3": 4,
    "standard_d8s_v3": 8,
    "standard_d16s_v3": 16,
    "standard_d2s_v5": 2,
    "standard_d4s_v5": 4,
    "standard_d8s_v5": 8,
    "standard_d16s_v5": 16,
    "standard_d2ds_v5": 2,
    "standard_d4ds_v5": 4,
    "standard_e2s_v3": 2,
    "standard_e4s_v3": 4,
    "standard_e8s_v3": 8,
    "standard_f2s_v2": 2,
    "standard_f4s_v2": 4,
    "standard_f8s_v2": 8,
    "standard_f16s_v2": 16,
    "standard_nc6s_v3": 6,
    "standard_nc24ads_a100_v4": 24,
}


def vm_cores(vm_size: str, path: str = "vmSize") -> int:
    """vCPUs of ``vm_size``; 400 ``InvalidPropertyValue`` for a size the emulator does not know."""
    cores = VM_SIZE_CORES.get(vm_size.lower())
    if cores is None:
        raise invalid_property(
            path, vm_size, f"Unknown VM size. The emulator knows: {', '.join(sorted(VM_SIZE_CORES))}."
        )
    return cores


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
