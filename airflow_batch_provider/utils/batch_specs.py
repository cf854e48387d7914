"""Build and compare Batch request bodies (pool, job, task) in the service's JSON shape.

Operators accept specs as SDK models, as dicts in the REST shape (``vmSize``) or in Python style
(``vm_size``); :func:`to_rest` turns all of them into the REST shape so they can be templated, merged,
compared, validated and sent the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.utils.durations import to_iso_duration

#: Keys whose values are free-form user dicts: their own keys must stay as written.
_FREE_FORM_KEYS = frozenset({"resourceTags", "settings", "protectedSettings", "tags"})
#: Fields the service types as ISO 8601 durations; a number given for one of them means seconds.
_DURATION_KEYS = frozenset(
    {"maxWallClockTime", "retentionTime", "resizeTimeout", "autoScaleEvaluationInterval"}
)


def camel_case(key: str) -> str:
    """``max_wall_clock_time`` -> ``maxWallClockTime``; keys without underscores are kept."""
    if "_" not in key or key.startswith("_"):
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_rest(value: Any) -> Any:
    """Convert SDK models, Python-style dicts, durations and datetimes into the REST JSON shape."""
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict) and not isinstance(value, Mapping | type):
        return to_rest(as_dict())
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = camel_case(str(key))
            if name in _FREE_FORM_KEYS:
                result[name] = copy.deepcopy(item)
            elif name in _DURATION_KEYS and isinstance(item, int | float) and not isinstance(item, bool):
                result[name] = to_iso_duration(item, name)
            else:
                result[name] = to_rest(item)
        return result
    if isinstance(value, list | tuple):
        return [to_rest(item) for item in value]
    if isinstance(value, timedelta):
        return to_iso_duration(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; nested dicts merge, everything else replaces."""
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def drop_none(value: Any) -> Any:
    """Remove ``None`` values from dicts, recursively (the service rejects explicit nulls in places)."""
    if isinstance(value, Mapping):
        return {key: drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_none(item) for item in value]
    return value


def metadata_list(metadata: Mapping[str, Any] | list[Any] | None) -> list[dict[str, str]] | None:
    """``{"owner": "x"}`` or ``[{"name":..,"value":..}]`` -> the service's name/value list."""
    if metadata is None:
        return None
    if isinstance(metadata, Mapping):
        return [{"name": str(key), "value": str(value)} for key, value in metadata.items()]
    return [to_rest(item) for item in metadata]


def environment_list(env: Mapping[str, Any] | list[Any] | None) -> list[dict[str, str]] | None:
    """``{"VAR": "x"}`` or ``[{"name":..,"value":..}]`` -> ``environmentSettings``."""
    if env is None:
        return None
    if isinstance(env, Mapping):
        return [
            {"name": str(key), "value": "" if value is None else str(value)} for key, value in env.items()
        ]
    return [to_rest(item) for item in env]


# ---------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------------------------------


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


def _norm(value: Any) -> str:
    return "" if value is None else str(value).strip().lower()


def pool_differences(requested: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """The properties of an existing pool that contradict the requested spec.

    Only properties that cannot change without recreating the pool and that tasks depend on are
    compared: VM size, image, node agent, task slots per node, fill policy, autoscale vs fixed size and
    the start task's command line. Node counts and metadata may differ.
    """
    diffs: list[str] = []
    if _norm(requested.get("vmSize")) != _norm(existing.get("vmSize")):
        diffs.append(f"vmSize: existing {existing.get('vmSize')!r}, requested {requested.get('vmSize')!r}")
    req_vmc = requested.get("virtualMachineConfiguration") or {}
    ex_vmc = existing.get("virtualMachineConfiguration") or {}
    req_img = req_vmc.get("imageReference") or {}
    ex_img = ex_vmc.get("imageReference") or {}
    keys = ("virtualMachineImageId",) if req_img.get("virtualMachineImageId") else (*_IMAGE_KEYS, "version")
    for key in keys:
        want, have = _norm(req_img.get(key)), _norm(ex_img.get(key))
        if key == "version":
            want, have = want or "latest", have or "latest"
        if want != have:
            diffs.append(
                f"imageReference.{key}: existing {ex_img.get(key)!r}, requested {req_img.get(key)!r}"
            )
    req_agent = req_vmc.get("nodeAgentSKUId") or req_vmc.get("nodeAgentSkuId")
    ex_agent = ex_vmc.get("nodeAgentSKUId") or ex_vmc.get("nodeAgentSkuId")
    if _norm(req_agent) != _norm(ex_agent):
        diffs.append(f"nodeAgentSKUId: existing {ex_agent!r}, requested {req_agent!r}")
    if int(requested.get("taskSlotsPerNode") or 1) != int(existing.get("taskSlotsPerNode") or 1):
        diffs.append(
            f"taskSlotsPerNode: existing {existing.get('taskSlotsPerNode') or 1}, "
            f"requested {requested.get('taskSlotsPerNode') or 1}"
        )
    req_fill = _norm((requested.get("taskSchedulingPolicy") or {}).get("nodeFillType")) or "spread"
    ex_fill = _norm((existing.get("taskSchedulingPolicy") or {}).get("nodeFillType")) or "spread"
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


# ---------------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------------

_ON_ALL_COMPLETE = ("noaction", "terminatejob")
_ON_FAILURE = ("noaction", "performexitoptionsjobaction")


def build_job_spec(
    *,
    job_id: str,
    pool_id: str,
    priority: int | None = None,
    max_parallel_tasks: int | None = None,
    max_wall_clock_time: timedelta | float | str | None = None,
    max_task_retry_count: int | None = None,
    job_preparation_task: Mapping[str, Any] | Any | None = None,
    job_release_task: Mapping[str, Any] | Any | None = None,
    common_environment_settings: Mapping[str, Any] | list[Any] | None = None,
    uses_task_dependencies: bool | None = None,
    on_all_tasks_complete: str | None = None,
    on_task_failure: str | None = None,
    metadata: Mapping[str, Any] | list[Any] | None = None,
    display_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``POST /jobs`` body; ``extra`` is merged last."""
    if not pool_id:
        raise InvalidInputError("pool_id is required: a job runs its tasks on one pool.")
    if priority is not None and not (-1000 <= int(priority) <= 1000):
        raise InvalidInputError(f"priority must be between -1000 and 1000, got {priority}.")
    if max_parallel_tasks is not None and max_parallel_tasks != -1 and max_parallel_tasks < 1:
        raise InvalidInputError(
            f"max_parallel_tasks must be -1 (unlimited) or ≥ 1, got {max_parallel_tasks}."
        )
    if on_all_tasks_complete is not None and on_all_tasks_complete.lower() not in _ON_ALL_COMPLETE:
        raise InvalidInputError(
            f"on_all_tasks_complete must be one of {', '.join(_ON_ALL_COMPLETE)}, "
            f"got {on_all_tasks_complete!r}."
        )
    if on_task_failure is not None and on_task_failure.lower() not in _ON_FAILURE:
        raise InvalidInputError(
            f"on_task_failure must be one of {', '.join(_ON_FAILURE)}, got {on_task_failure!r}."
        )
    constraints = drop_none(
        {
            "maxWallClockTime": to_iso_duration(max_wall_clock_time, "max_wall_clock_time"),
            "maxTaskRetryCount": max_task_retry_count,
        }
    )
    spec: dict[str, Any] = {
        "id": job_id,
        "displayName": display_name,
        "poolInfo": {"poolId": pool_id},
        "priority": priority,
        "maxParallelTasks": max_parallel_tasks,
        "constraints": constraints or None,
        "jobPreparationTask": to_rest(job_preparation_task) if job_preparation_task is not None else None,
        "jobReleaseTask": to_rest(job_release_task) if job_release_task is not None else None,
        "commonEnvironmentSettings": environment_list(common_environment_settings),
        "usesTaskDependencies": uses_task_dependencies,
        "onAllTasksComplete": on_all_tasks_complete.lower() if on_all_tasks_complete else None,
        "onTaskFailure": on_task_failure.lower() if on_task_failure else None,
        "metadata": metadata_list(metadata),
    }
    spec = drop_none(spec)
    if extra:
        spec = deep_merge(spec, to_rest(dict(extra)))
    return spec


def job_differences(requested: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """Why an existing job cannot take the requested job's tasks (empty when it can)."""
    diffs: list[str] = []
    want_pool = (requested.get("poolInfo") or {}).get("poolId")
    have_pool = (existing.get("poolInfo") or {}).get("poolId")
    if want_pool and _norm(want_pool) != _norm(have_pool):
        diffs.append(f"poolInfo.poolId: existing {have_pool!r}, requested {want_pool!r}")
    state = _norm(existing.get("state"))
    if state and state not in ("active", "disabled", "disabling", "enabling"):
        diffs.append(f"state: the existing job is {state!r} and accepts no new tasks")
    if bool(requested.get("usesTaskDependencies")) and not bool(existing.get("usesTaskDependencies")):
        diffs.append("usesTaskDependencies: existing False, requested True")
    return diffs


# ---------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------

_UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")


def container_destination(
    container_url: str, path: str | None = None, identity_reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``OutputFileDestination`` for a blob container (SAS URL, or plain URL with an identity)."""
    container: dict[str, Any] = {"containerUrl": container_url}
    if path:
        container["path"] = path
    if identity_reference:
        container["identityReference"] = to_rest(dict(identity_reference))
    return {"container": container}


def output_file(
    file_pattern: str,
    container_url: str,
    path: str | None = None,
    upload_condition: str = "tasksuccess",
    identity_reference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``outputFiles`` entry."""
    condition = upload_condition.lower()
    if condition not in _UPLOAD_CONDITIONS:
        raise InvalidInputError(
            f"upload_condition must be one of {', '.join(_UPLOAD_CONDITIONS)}, got {upload_condition!r}."
        )
    return {
        "filePattern": file_pattern,
        "destination": container_destination(container_url, path, identity_reference),
        "uploadOptions": {"uploadCondition": condition},
    }


def std_log_output_files(
    container_url: str, path: str, identity_reference: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Upload the task's stdout.txt and stderr.txt on completion (success or failure).

    The pattern is relative to the task's working directory, whose parent holds the two logs.
    """
    return [output_file("../std*.txt", container_url, path.rstrip("/"), "taskcompletion", identity_reference)]


def normalize_task(task: Any) -> dict[str, Any]:
    """One task in the REST shape (``commandLine``, ``resourceFiles``...)."""
    if isinstance(task, str):
        raise InvalidInputError(
            f"A task must be a dict or a BatchTaskCreateOptions, not a string ({task[:60]!r}); "
            "use {'id': ..., 'command_line': ...}."
        )
    rest = to_rest(task)
    if not isinstance(rest, dict):
        raise InvalidInputError(
            f"A task must be a dict or a BatchTaskCreateOptions, got {type(task).__name__}."
        )
    if "environmentSettings" in rest and isinstance(rest["environmentSettings"], Mapping):
        rest["environmentSettings"] = environment_list(rest["environmentSettings"])
    return rest


def sas_urls_in_task(task: Mapping[str, Any]) -> list[str]:
    """Every URL in a task's resource and output files that carries a SAS signature."""
    urls: list[str] = []
    for resource in task.get("resourceFiles") or []:
        for key in ("httpUrl", "storageContainerUrl"):
            url = resource.get(key)
            if isinstance(url, str) and "sig=" in url:
                urls.append(url)
    for output in task.get("outputFiles") or []:
        url = ((output.get("destination") or {}).get("container") or {}).get("containerUrl")
        if isinstance(url, str) and "sig=" in url:
            urls.append(url)
    return urls


def strip_sas(url: str) -> str:
    """A URL without its query string (so no SAS reaches logs or XCom)."""
    return url.split("?", 1)[0]
