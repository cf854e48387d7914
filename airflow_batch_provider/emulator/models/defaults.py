"""What the service fills in when a client leaves it out, as reads return it.

Stored resources keep what the client sent; these functions give the read view. The values come from
the REST specification and recordings of the live service (azure-sdk-for-python's azure-batch tests):

* a task, start task, job manager, preparation or release task without ``userIdentity`` runs as the
  pool-scoped, non-admin auto user, and reads back saying so; a job manager task reads back its
  documented defaults (kills the job on completion, runs exclusive, may use Spot nodes, one slot);
* an image reference without ``version`` (and not a gallery image) reads back ``version: latest``;
* an auto pool specification reads back ``keepAlive: false`` and its pool with the pool defaults;
* a container registry's password is write-only: reads never echo it.
"""

from __future__ import annotations

import copy
from typing import Any

#: The auto user a task runs as when the client names none.
DEFAULT_AUTO_USER = {"scope": "pool", "elevationLevel": "nonadmin"}
DEFAULT_RESIZE_TIMEOUT = "PT15M"
DEFAULT_RETENTION = "P7D"
#: The service's "unbounded" duration (TimeSpan.MaxValue).
UNBOUNDED_DURATION = "P10675199DT2H48M5.4775807S"


def user_identity(identity: dict[str, Any] | None) -> dict[str, Any]:
    """``userIdentity`` as read back: the named user, or the auto user with its defaults filled in."""
    if not identity:
        return {"autoUser": dict(DEFAULT_AUTO_USER)}
    if identity.get("username") or identity.get("userName"):
        return dict(identity)
    return {**identity, "autoUser": {**DEFAULT_AUTO_USER, **(identity.get("autoUser") or {})}}


def with_user_identity(task: dict[str, Any]) -> dict[str, Any]:
    """A start, job preparation or job release task as read back: with its ``userIdentity``, and
    its ``containerSettings`` without the registry password."""
    document = {**task, "userIdentity": user_identity(task.get("userIdentity"))}
    if isinstance(task.get("containerSettings"), dict):
        document["containerSettings"] = container_settings(task["containerSettings"])
    return document


def job_manager_task(task: dict[str, Any]) -> dict[str, Any]:
    """A job manager task as read back, with the service's defaults for what the client left out."""
    task = with_user_identity(task)
    for name in ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode"):
        task.setdefault(name, True)
    task.setdefault("requiredSlots", 1)
    constraints = dict(task.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNBOUNDED_DURATION)
    constraints.setdefault("retentionTime", DEFAULT_RETENTION)
    constraints.setdefault("maxTaskRetryCount", 0)
    task["constraints"] = constraints
    return task


def image_reference(reference: dict[str, Any]) -> dict[str, Any]:
    """An image reference as read back: a Marketplace image without a version is ``latest``."""
    reference = dict(reference)
    if not reference.get("virtualMachineImageId") and not reference.get("version"):
        reference["version"] = "latest"
    return reference


def virtual_machine_configuration(configuration: dict[str, Any]) -> dict[str, Any]:
    configuration = dict(configuration)
    if isinstance(configuration.get("imageReference"), dict):
        configuration["imageReference"] = image_reference(configuration["imageReference"])
    containers = configuration.get("containerConfiguration")
    if isinstance(containers, dict) and isinstance(containers.get("containerRegistries"), list):
        # Registry passwords are write-only, as on the service.
        configuration["containerConfiguration"] = {
            **containers,
            "containerRegistries": [
                {key: value for key, value in registry.items() if key != "password"}
                if isinstance(registry, dict)
                else registry
                for registry in containers["containerRegistries"]
            ],
        }
    return configuration


def pool_specification(spec: dict[str, Any]) -> dict[str, Any]:
    """An auto pool's ``pool`` as read back, with the pool defaults the service applies."""
    spec = dict(spec)
    spec.setdefault("taskSlotsPerNode", 1)
    policy = dict(spec.get("taskSchedulingPolicy") or {})
    policy["nodeFillType"] = str(policy.get("nodeFillType") or "spread").capitalize()
    spec["taskSchedulingPolicy"] = policy
    if not spec.get("enableAutoScale"):
        spec.setdefault("resizeTimeout", DEFAULT_RESIZE_TIMEOUT)
        spec.setdefault("targetDedicatedNodes", 0)
        spec.setdefault("targetLowPriorityNodes", 0)
    spec.setdefault("enableAutoScale", False)
    spec.setdefault("enableInterNodeCommunication", False)
    if isinstance(spec.get("virtualMachineConfiguration"), dict):
        spec["virtualMachineConfiguration"] = virtual_machine_configuration(
            spec["virtualMachineConfiguration"]
        )
    return spec


def pool_info(info: dict[str, Any]) -> dict[str, Any]:
    """A job's ``poolInfo`` as read back (an auto pool specification gets its defaults)."""
    info = dict(info)
    auto = info.get("autoPoolSpecification")
    if isinstance(auto, dict):
        auto = {**auto, "keepAlive": bool(auto.get("keepAlive", False))}
        if isinstance(auto.get("pool"), dict):
            auto["pool"] = pool_specification(auto["pool"])
        info["autoPoolSpecification"] = auto
    return info


def container_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``containerSettings`` as read back: as sent, without the registry password."""
    settings = copy.deepcopy(settings)
    registry = settings.get("registry")
    if isinstance(registry, dict):
        registry.pop("password", None)
    return settings
