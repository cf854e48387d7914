"""Pool bodies: image aliases resolved through the supported-images list, the body an operator sends,
and what differs between a requested pool and an existing one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_batch_provider.batch.durations import to_iso_duration
from airflow_batch_provider.batch.rest import deep_merge, drop_none, lower_text, metadata_list, to_rest
from airflow_batch_provider.exceptions import InvalidInputError

#: Friendly aliases for common Marketplace images; the node agent SKU comes from the supported list.
IMAGE_ALIASES: dict[str, dict[str, str]] = {
    "ubuntu-24.04": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "ubuntu-22.04": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
    "ubuntu-20.04": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-focal", "sku": "20_04-lts"},
    "almalinux-9": {"publisher": "almalinux", "offer": "almalinux-x86_64", "sku": "9-gen2"},
    "windows-2022": {
        "publisher": "microsoftwindowsserver",
        "offer": "windowsserver",
        "sku": "2022-datacenter",
    },
    "windows-2019": {
        "publisher": "microsoftwindowsserver",
        "offer": "windowsserver",
        "sku": "2019-datacenter",
    },
}

#: For an alias, the node agent SKU to look for when the exact Marketplace triple is not listed.
_ALIAS_AGENT_HINTS: dict[str, str] = {
    "ubuntu-24.04": "batch.node.ubuntu 24.04",
    "ubuntu-22.04": "batch.node.ubuntu 22.04",
    "ubuntu-20.04": "batch.node.ubuntu 20.04",
    "almalinux-9": "batch.node.el 9",
    "windows-2022": "batch.node.windows amd64",
    "windows-2019": "batch.node.windows amd64",
}

_IMAGE_KEYS = ("publisher", "offer", "sku")


def _same_image(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    if left.get("virtualMachineImageId") or right.get("virtualMachineImageId"):
        return (
            str(left.get("virtualMachineImageId", "")).lower()
            == str(right.get("virtualMachineImageId", "")).lower()
        )
    return all(str(left.get(k, "")).lower() == str(right.get(k, "")).lower() for k in _IMAGE_KEYS)


def _agent_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("nodeAgentSKUId") or entry.get("nodeAgentSkuId") or "")


def _end_of_life(entry: Mapping[str, Any]) -> bool:
    raw = entry.get("batchSupportEndOfLife")
    if not raw:
        return False
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when < datetime.now(timezone.utc)


def image_needs_lookup(image: str | Mapping[str, Any], node_agent_sku_id: str | None) -> bool:
    """Whether resolving ``image`` needs the service's supported-images list."""
    return isinstance(image, str) or not node_agent_sku_id


def resolve_image(
    image: str | Mapping[str, Any],
    node_agent_sku_id: str | None,
    supported_images: Sequence[Mapping[str, Any]] | None,
) -> tuple[dict[str, Any], str]:
    """Return ``(imageReference, nodeAgentSkuId)`` for an alias or an explicit image reference.

    An alias (``ubuntu-24.04``) or a reference without a node agent SKU is looked up in the list the
    service returns from ``list_supported_images``; images past their Batch end of life are skipped.
    """
    if isinstance(image, str):
        key = image.strip().lower()
        if key not in IMAGE_ALIASES:
            raise InvalidInputError(
                f"Unknown image alias {image!r}. Use one of {', '.join(sorted(IMAGE_ALIASES))}, or pass an "
                "image reference dict such as {'publisher': 'canonical', 'offer': 'ubuntu-24_04-lts', "
                "'sku': 'server', 'version': 'latest'} (with node_agent_sku_id)."
            )
        reference = {**IMAGE_ALIASES[key], "version": "latest"}
        hint = _ALIAS_AGENT_HINTS.get(key)
    else:
        reference = to_rest(dict(image))
        hint = None
        if not reference.get("virtualMachineImageId") and not all(reference.get(k) for k in _IMAGE_KEYS):
            raise InvalidInputError(
                "An image reference needs publisher, offer and sku (or virtualMachineImageId); got "
                f"{sorted(reference)}."
            )
        if not reference.get("virtualMachineImageId"):
            reference.setdefault("version", "latest")
    if node_agent_sku_id:
        return reference, node_agent_sku_id
    candidates = [to_rest(entry) for entry in supported_images or []]
    candidates = [entry for entry in candidates if not _end_of_life(entry)]
    for entry in candidates:
        if _same_image(entry.get("imageReference") or {}, reference) and _agent_of(entry):
            return reference, _agent_of(entry)
    if hint:
        for entry in candidates:
            agent = _agent_of(entry)
            if agent.lower() == hint.lower():
                found = dict(entry.get("imageReference") or reference)
                found.setdefault("version", "latest")
                return found, agent
    described = ", ".join(
        f"{(e.get('imageReference') or {}).get('offer')}/{(e.get('imageReference') or {}).get('sku')}"
        for e in candidates[:8]
    )
    raise InvalidInputError(
        f"The image {image!r} is not in the Batch account's supported images, so its node agent SKU is "
        f"unknown. Pass node_agent_sku_id or pick a supported image ({described or 'none listed'})."
    )


def build_pool_spec(
    *,
    pool_id: str,
    vm_size: str,
    image_reference: Mapping[str, Any],
    node_agent_sku_id: str,
    target_dedicated_nodes: int | None = None,
    target_spot_nodes: int | None = None,
    auto_scale_formula: str | None = None,
    auto_scale_evaluation_interval: timedelta | float | str | None = None,
    resize_timeout: timedelta | float | str | None = None,
    start_task: Mapping[str, Any] | Any | None = None,
    task_slots_per_node: int | None = None,
    node_fill_type: str | None = None,
    metadata: Mapping[str, Any] | list[Any] | None = None,
    display_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``POST /pools`` body; ``extra`` (REST or Python style) is merged last for anything else."""
    if not vm_size:
        raise InvalidInputError("vm_size is required, e.g. 'standard_d2s_v3'.")
    if auto_scale_formula and (target_dedicated_nodes or target_spot_nodes):
        raise InvalidInputError(
            "Set either auto_scale_formula or target_dedicated_nodes/target_spot_nodes, not both: with "
            "autoscale the formula decides the node counts."
        )
    if not auto_scale_formula and not (target_dedicated_nodes or target_spot_nodes):
        extra_rest = to_rest(dict(extra or {}))
        if not extra_rest.get("enableAutoScale") and not (
            extra_rest.get("targetDedicatedNodes") or extra_rest.get("targetLowPriorityNodes")
        ):
            raise InvalidInputError(
                "The pool would have no nodes: set target_dedicated_nodes and/or target_spot_nodes, or an "
                "auto_scale_formula. (A pool without nodes never runs a task.)"
            )
    for name, count in (
        ("target_dedicated_nodes", target_dedicated_nodes),
        ("target_spot_nodes", target_spot_nodes),
    ):
        if count is not None and (not isinstance(count, int) or count < 0):
            raise InvalidInputError(f"{name} must be a whole number ≥ 0, got {count!r}.")
    if task_slots_per_node is not None and (
        not isinstance(task_slots_per_node, int) or task_slots_per_node < 1
    ):
        raise InvalidInputError(f"task_slots_per_node must be an integer ≥ 1, got {task_slots_per_node!r}.")
    if node_fill_type is not None and str(node_fill_type).lower() not in ("spread", "pack"):
        raise InvalidInputError(f"node_fill_type must be 'spread' or 'pack', got {node_fill_type!r}.")
    spec: dict[str, Any] = {
        "id": pool_id,
        "displayName": display_name,
        "vmSize": vm_size,
        "virtualMachineConfiguration": {
            "imageReference": dict(image_reference),
            "nodeAgentSKUId": node_agent_sku_id,
        },
        "taskSlotsPerNode": task_slots_per_node,
        "taskSchedulingPolicy": {"nodeFillType": str(node_fill_type).lower()} if node_fill_type else None,
        "startTask": to_rest(start_task) if start_task is not None else None,
        "metadata": metadata_list(metadata),
        "resizeTimeout": to_iso_duration(resize_timeout, "resize_timeout"),
    }
    if auto_scale_formula:
        spec["enableAutoScale"] = True
        spec["autoScaleFormula"] = auto_scale_formula
        spec["autoScaleEvaluationInterval"] = to_iso_duration(
            auto_scale_evaluation_interval, "auto_scale_evaluation_interval"
        )
    else:
        spec["enableAutoScale"] = False
        spec["targetDedicatedNodes"] = target_dedicated_nodes or 0
        spec["targetLowPriorityNodes"] = target_spot_nodes or 0
    spec = drop_none(spec)
    if extra:
        spec = deep_merge(spec, to_rest(dict(extra)))
    return fix_pool_keys(spec)


def fix_pool_keys(spec: dict[str, Any]) -> dict[str, Any]:
    """The wire name is ``nodeAgentSKUId``; accept ``nodeAgentSkuId`` (the Python-style conversion) too."""
    vmc = spec.get("virtualMachineConfiguration")
    if isinstance(vmc, dict) and "nodeAgentSkuId" in vmc:
        vmc.setdefault("nodeAgentSKUId", vmc.pop("nodeAgentSkuId"))
    return spec


def requested_node_count(spec: Mapping[str, Any]) -> int:
    """How many nodes a fixed-size pool spec asks for (0 for autoscale)."""
    if spec.get("enableAutoScale"):
        return 0
    return int(spec.get("targetDedicatedNodes") or 0) + int(spec.get("targetLowPriorityNodes") or 0)


def pool_differences(requested: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """The properties of an existing pool that contradict the requested spec.

    Only properties that cannot change without recreating the pool and that tasks depend on are
    compared: VM size, image, node agent, task slots per node, fill policy, autoscale vs fixed size and
    the start task's command line. Node counts and metadata may differ.
    """
    diffs: list[str] = []
    if lower_text(requested.get("vmSize")) != lower_text(existing.get("vmSize")):
        diffs.append(f"vmSize: existing {existing.get('vmSize')!r}, requested {requested.get('vmSize')!r}")
    req_vmc = requested.get("virtualMachineConfiguration") or {}
    ex_vmc = existing.get("virtualMachineConfiguration") or {}
    req_img = req_vmc.get("imageReference") or {}
    ex_img = ex_vmc.get("imageReference") or {}
    keys = ("virtualMachineImageId",) if req_img.get("virtualMachineImageId") else (*_IMAGE_KEYS, "version")
    for key in keys:
        want, have = lower_text(req_img.get(key)), lower_text(ex_img.get(key))
        if key == "version":
            want, have = want or "latest", have or "latest"
        if want != have:
            diffs.append(
                f"imageReference.{key}: existing {ex_img.get(key)!r}, requested {req_img.get(key)!r}"
            )
    req_agent = req_vmc.get("nodeAgentSKUId") or req_vmc.get("nodeAgentSkuId")
    ex_agent = ex_vmc.get("nodeAgentSKUId") or ex_vmc.get("nodeAgentSkuId")
    if lower_text(req_agent) != lower_text(ex_agent):
        diffs.append(f"nodeAgentSKUId: existing {ex_agent!r}, requested {req_agent!r}")
    if int(requested.get("taskSlotsPerNode") or 1) != int(existing.get("taskSlotsPerNode") or 1):
        diffs.append(
            f"taskSlotsPerNode: existing {existing.get('taskSlotsPerNode') or 1}, "
            f"requested {requested.get('taskSlotsPerNode') or 1}"
        )
    req_fill = lower_text((requested.get("taskSchedulingPolicy") or {}).get("nodeFillType")) or "spread"
    ex_fill = lower_text((existing.get("taskSchedulingPolicy") or {}).get("nodeFillType")) or "spread"
    if req_fill != ex_fill:
        diffs.append(f"taskSchedulingPolicy.nodeFillType: existing {ex_fill!r}, requested {req_fill!r}")
    if bool(requested.get("enableAutoScale")) != bool(existing.get("enableAutoScale")):
        diffs.append(
            f"enableAutoScale: existing {bool(existing.get('enableAutoScale'))}, "
            f"requested {bool(requested.get('enableAutoScale'))}"
        )
    req_cmd = (requested.get("startTask") or {}).get("commandLine")
    ex_cmd = (existing.get("startTask") or {}).get("commandLine")
    if (req_cmd or ex_cmd) and (req_cmd or "") != (ex_cmd or ""):
        diffs.append(f"startTask.commandLine: existing {ex_cmd!r}, requested {req_cmd!r}")
    return diffs
