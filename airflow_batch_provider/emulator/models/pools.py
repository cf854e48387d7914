"""Pools: creation with the service's defaults, resizing against the core quota, autoscale, deletion."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_batch_provider.batch.durations import format_duration
from airflow_batch_provider.emulator.errors import (
    BatchError,
    conflict,
    invalid_property,
    missing_property,
    resource_exists,
    resource_not_found,
)
from airflow_batch_provider.emulator.models import defaults as service_defaults
from airflow_batch_provider.emulator.models.autoscale import FormulaError, FormulaResult, evaluate_formula
from airflow_batch_provider.emulator.models.base import (
    Resource,
    get_bool,
    get_duration,
    get_enum,
    get_int,
    get_list,
    get_object,
    get_str,
    require,
    validate_command_task,
    validate_container_configuration,
    validate_id,
)
from airflow_batch_provider.emulator.models.images import validate_image, vm_cores
from airflow_batch_provider.emulator.models.network import check_capacity, validate_network
from airflow_batch_provider.emulator.models.node_extensions import validate_extensions
from airflow_batch_provider.emulator.models.nodes import EVICTION_OPTIONS, Node
from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.account import BatchAccount

DEFAULT_RESIZE_TIMEOUT = timedelta(minutes=15)
MIN_RESIZE_TIMEOUT = timedelta(minutes=5)
DEFAULT_AUTOSCALE_INTERVAL = timedelta(minutes=15)
MIN_AUTOSCALE_INTERVAL = timedelta(minutes=5)
MAX_TASK_SLOTS_PER_NODE = 256

#: Properties the client owns, copied through to GET as sent.
_PASSTHROUGH = (
    "displayName",
    "virtualMachineConfiguration",
    "networkConfiguration",
    "applicationPackageReferences",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
    "identity",
    # Sent by clients of api-versions before 2025-06-01, which return them (see ``api_versions``).
    "resourceTags",
    "targetNodeCommunicationMode",
)


class Pool(Resource):
    """A pool of simulated nodes, with the allocation and autoscale state the service reports."""

    def __init__(self, account: BatchAccount, pool_id: str, body: dict[str, Any]) -> None:
        super().__init__(pool_id)
        self.account = account
        self.state = "active"
        self.allocation_state = "steady"
        self.allocation_state_transition_time = self.creation_time
        self.properties: dict[str, Any] = {key: body[key] for key in _PASSTHROUGH if key in body}
        self.vm_size: str = body["vmSize"]
        self.cores = vm_cores(self.vm_size)
        self.task_slots_per_node = get_int(body, "taskSlotsPerNode", 1, 1, MAX_TASK_SLOTS_PER_NODE)
        self.task_scheduling_policy = scheduling_policy(body)
        self.enable_inter_node_communication = get_bool(body, "enableInterNodeCommunication", False)
        self.resize_timeout = (
            get_duration(body, "resizeTimeout", DEFAULT_RESIZE_TIMEOUT, MIN_RESIZE_TIMEOUT)
            or DEFAULT_RESIZE_TIMEOUT
        )
        self.target_dedicated = 0
        self.target_low_priority = 0
        self.enable_auto_scale = False
        self.auto_scale_formula: str | None = None
        self.auto_scale_interval: timedelta | None = None
        self.auto_scale_run: dict[str, Any] | None = None
        self.resize_errors: list[dict[str, Any]] = []
        self.start_task: dict[str, Any] | None = None
        self.metadata: list[dict[str, Any]] = []
        self.nodes: dict[str, Node] = {}
        self.auto_pool_job_id: str | None = None
        self._resize: asyncio.Task[None] | None = None
        self._autoscale_timer: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.account.base_url}/pools/{quote(self.id)}"

    @property
    def image_reference(self) -> dict[str, Any]:
        reference = (self.properties.get("virtualMachineConfiguration") or {}).get("imageReference") or {}
        return service_defaults.image_reference(reference)

    @property
    def container_configuration(self) -> dict[str, Any] | None:
        """The pool's ``containerConfiguration`` (None: its nodes run no container tasks)."""
        configuration = (self.properties.get("virtualMachineConfiguration") or {}).get(
            "containerConfiguration"
        )
        return configuration if isinstance(configuration, dict) else None

    @property
    def network(self) -> dict[str, Any] | None:
        return self.properties.get("networkConfiguration")

    @property
    def windows(self) -> bool:
        """Whether the pool's nodes run Windows (by their node agent SKU)."""
        configuration = self.properties.get("virtualMachineConfiguration") or {}
        return str(configuration.get("nodeAgentSKUId", "")).lower().startswith("batch.node.windows")

    @property
    def node_fill_type(self) -> str:
        """``spread`` or ``pack`` (lower case, for comparisons)."""
        return str(self.task_scheduling_policy.get("nodeFillType", "spread")).lower()

    def current_nodes(self, dedicated: bool) -> list[Node]:
        return [node for node in self.nodes.values() if node.is_dedicated == dedicated and not node.removed]

    def set_allocation_state(self, state: str) -> None:
        if state != self.allocation_state:
            self.allocation_state = state
            self.allocation_state_transition_time = utcnow()

    def to_dict(self) -> dict[str, Any]:
        document = self.common_properties(self.url)
        document.update(self.properties)
        if "virtualMachineConfiguration" in self.properties:
            document["virtualMachineConfiguration"] = service_defaults.virtual_machine_configuration(
                self.properties["virtualMachineConfiguration"]
            )
        document.update(
            {
                "state": self.state,
                "stateTransitionTime": format_datetime(self.state_transition_time),
                "allocationState": self.allocation_state,
                "allocationStateTransitionTime": format_datetime(self.allocation_state_transition_time),
                "vmSize": self.vm_size.lower(),
                "currentDedicatedNodes": len(self.current_nodes(True)),
                "currentLowPriorityNodes": len(self.current_nodes(False)),
                "targetDedicatedNodes": self.target_dedicated,
                "targetLowPriorityNodes": self.target_low_priority,
                "enableAutoScale": self.enable_auto_scale,
                "enableInterNodeCommunication": self.enable_inter_node_communication,
                "taskSlotsPerNode": self.task_slots_per_node,
                "taskSchedulingPolicy": self.task_scheduling_policy,
            }
        )
        if self.enable_auto_scale:
            document["autoScaleFormula"] = self.auto_scale_formula
            document["autoScaleEvaluationInterval"] = format_duration(
                self.auto_scale_interval or DEFAULT_AUTOSCALE_INTERVAL
            )
            if self.auto_scale_run is not None:
                document["autoScaleRun"] = self.auto_scale_run
        else:
            document["resizeTimeout"] = format_duration(self.resize_timeout)
        if self.resize_errors:
            document["resizeErrors"] = self.resize_errors
        if self.start_task is not None:
            document["startTask"] = service_defaults.with_user_identity(self.start_task)
        if self.metadata:
            document["metadata"] = self.metadata
        return document


def scheduling_policy(body: dict[str, Any]) -> dict[str, Any]:
    """``taskSchedulingPolicy`` with the service's default, capitalised as read back (``Spread``/``Pack``)."""
    policy = dict(get_object(body, "taskSchedulingPolicy") or {})
    fill = get_enum(policy, "nodeFillType", ("spread", "pack"), "spread", "taskSchedulingPolicy/nodeFillType")
    policy["nodeFillType"] = str(fill).capitalize()
    return policy


def _validate_start_task(body: dict[str, Any]) -> dict[str, Any] | None:
    start_task = get_object(body, "startTask")
    if start_task is None:
        return None
    validate_command_task(start_task, "startTask/")
    get_int(start_task, "maxTaskRetryCount", 0, -1, 100, "startTask/maxTaskRetryCount")
    get_bool(start_task, "waitForSuccess", True, "startTask/waitForSuccess")
    start_task = dict(start_task)
    start_task.setdefault("waitForSuccess", True)
    start_task.setdefault("maxTaskRetryCount", 0)
    return start_task


def _validate_metadata(body: dict[str, Any]) -> list[dict[str, Any]]:
    metadata: list[dict[str, Any]] = get_list(body, "metadata") or []
    return metadata


class PoolBackend:
    """Pool operations of the account, with the service's validation, defaults and state machine."""

    def __init__(self, account: BatchAccount) -> None:
        self.account = account
        self._pools: dict[str, Pool] = {}

    # ---- queries

    def get(self, pool_id: str) -> Pool:
        pool = self._pools.get(pool_id.lower())
        if pool is None:
            raise resource_not_found("pool")
        return pool

    def find(self, pool_id: str | None) -> Pool | None:
        return self._pools.get(pool_id.lower()) if pool_id else None

    def all(self) -> list[Pool]:
        return list(self._pools.values())

    def used_cores(self, dedicated: bool) -> int:
        return sum(pool.cores * len(pool.current_nodes(dedicated)) for pool in self._pools.values())

    def node_counts(self) -> list[dict[str, Any]]:
        from airflow_batch_provider.emulator.models.account import NODE_COUNT_STATES

        counts = []
        for pool in self._pools.values():
            entry: dict[str, Any] = {"poolId": pool.id}
            for dedicated, key in ((True, "dedicated"), (False, "lowPriority")):
                numbers = dict.fromkeys(NODE_COUNT_STATES.values(), 0)
                for node in pool.current_nodes(dedicated):
                    numbers[NODE_COUNT_STATES.get(node.state, "unknown")] += 1
                numbers["total"] = sum(numbers.values())
                entry[key] = numbers
            counts.append(entry)
        return counts

    # ---- create / update / delete

    def create(self, body: dict[str, Any], auto_pool_job_id: str | None = None) -> Pool:
        pool_id = validate_id(body.get("id"))
        if pool_id.lower() in self._pools:
            raise resource_exists("pool")
        if len(self._pools) >= self.account.settings.pool_quota:
            raise conflict("PoolQuotaReached", "Pool quota for the account has been reached.")
        pool = self.build(pool_id, body)
        pool.auto_pool_job_id = auto_pool_job_id
        self._pools[pool_id.lower()] = pool
        if pool.enable_auto_scale:
            self._evaluate_and_apply(pool)
            self._schedule_autoscale(pool)
        elif pool.target_dedicated or pool.target_low_priority:
            self._start_resize(pool, "requeue")
        return pool

    def build(self, pool_id: str, body: dict[str, Any]) -> Pool:
        """Validate a pool specification (also used for auto pools) and make the pool object."""
        require(body, "vmSize")
        get_str(body, "vmSize")
        configuration = get_object(body, "virtualMachineConfiguration")
        if configuration is None:
            if body.get("cloudServiceConfiguration") is not None:
                raise invalid_property(
                    "cloudServiceConfiguration",
                    None,
                    "Cloud service configuration pools are retired; use virtualMachineConfiguration.",
                )
            raise missing_property("virtualMachineConfiguration")
        validate_image(configuration)
        containers = get_object(
            configuration, "containerConfiguration", "virtualMachineConfiguration/containerConfiguration"
        )
        if containers is not None:
            validate_container_configuration(containers, "virtualMachineConfiguration/containerConfiguration")
        validate_extensions(configuration)
        self.account.applications.validate(body.get("applicationPackageReferences"))
        pool = Pool(self.account, pool_id, body)
        pool.start_task = _validate_start_task(body)
        pool.metadata = _validate_metadata(body)
        pool.enable_auto_scale = get_bool(body, "enableAutoScale", False)
        if pool.enable_auto_scale:
            for name in ("targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout"):
                if body.get(name) is not None:
                    raise invalid_property(
                        name, body[name], "It cannot be specified when enableAutoScale is true."
                    )
            pool.auto_scale_formula = str(require(body, "autoScaleFormula"))
            pool.auto_scale_interval = get_duration(
                body, "autoScaleEvaluationInterval", DEFAULT_AUTOSCALE_INTERVAL, MIN_AUTOSCALE_INTERVAL
            )
            self._check_formula(pool, pool.auto_scale_formula)
        else:
            if body.get("autoScaleFormula") is not None:
                raise invalid_property(
                    "autoScaleFormula", body["autoScaleFormula"], "It requires enableAutoScale to be true."
                )
            # Neither count is required: the service defaults both to 0.
            pool.target_dedicated = get_int(body, "targetDedicatedNodes", 0, 0, 10000)
            pool.target_low_priority = get_int(body, "targetLowPriorityNodes", 0, 0, 10000)
        validate_network(
            body.get("networkConfiguration"),
            self.account.settings.known_subnets,
            pool.target_dedicated + pool.target_low_priority,
        )
        return pool

    def update(self, pool_id: str, body: dict[str, Any]) -> Pool:
        """PATCH: change only the properties present in the body."""
        pool = self._writable(pool_id)
        if "startTask" in body:
            pool.start_task = _validate_start_task(body)
        if "metadata" in body:
            pool.metadata = _validate_metadata(body)
        if "applicationPackageReferences" in body:
            self.account.applications.validate(body["applicationPackageReferences"])
        for key in ("applicationPackageReferences", "displayName"):
            if key in body:
                pool.properties[key] = body[key]
        node_bound = [
            key
            for key in (
                "vmSize",
                "virtualMachineConfiguration",
                "taskSlotsPerNode",
                "taskSchedulingPolicy",
                "enableInterNodeCommunication",
                "networkConfiguration",
                "userAccounts",
                "mountConfiguration",
                "upgradePolicy",
            )
            if key in body
        ]
        if node_bound and pool.nodes:
            raise conflict(
                "OperationNotValidOnPool",
                "The specified operation is not valid on the pool.",
                Reason=f"{', '.join(node_bound)} can only be changed while the pool has no nodes.",
            )
        if "vmSize" in body:
            pool.cores = vm_cores(str(body["vmSize"]))
            pool.vm_size = str(body["vmSize"])
        if "virtualMachineConfiguration" in body:
            validate_image(body["virtualMachineConfiguration"])
            validate_extensions(body["virtualMachineConfiguration"])
            pool.properties["virtualMachineConfiguration"] = body["virtualMachineConfiguration"]
        if "networkConfiguration" in body:
            validate_network(body["networkConfiguration"], self.account.settings.known_subnets, 0)
        if "taskSlotsPerNode" in body:
            pool.task_slots_per_node = get_int(body, "taskSlotsPerNode", 1, 1, MAX_TASK_SLOTS_PER_NODE)
        if "taskSchedulingPolicy" in body:
            pool.task_scheduling_policy = scheduling_policy(body)
        if "enableInterNodeCommunication" in body:
            pool.enable_inter_node_communication = get_bool(body, "enableInterNodeCommunication", False)
        for key in ("networkConfiguration", "userAccounts", "mountConfiguration", "upgradePolicy"):
            if key in body:
                pool.properties[key] = body[key]
        pool.touch()
        return pool

    def replace_properties(self, pool_id: str, body: dict[str, Any]) -> Pool:
        """POST updateproperties: replace start task, package references and metadata wholesale."""
        pool = self._writable(pool_id)
        require_present = [
            name for name in ("applicationPackageReferences", "metadata") if body.get(name) is None
        ]
        if require_present:
            raise missing_property(require_present[0])
        self.account.applications.validate(body["applicationPackageReferences"])
        pool.start_task = _validate_start_task(body)
        pool.metadata = _validate_metadata(body)
        pool.properties["applicationPackageReferences"] = body["applicationPackageReferences"]
        pool.touch()
        return pool

    def delete(self, pool_id: str) -> Pool:
        pool = self.get(pool_id)
        if pool.state == "deleting":
            return pool
        pool.set_state("deleting")
        pool.touch()
        self._cancel_timers(pool)
        self.account.spawn(self._delete(pool))
        return pool

    async def _delete(self, pool: Pool) -> None:
        await self.account.step()
        await asyncio.gather(
            *(self.account.nodes.remove(node, "requeue") for node in list(pool.nodes.values()))
        )
        self._pools.pop(pool.id.lower(), None)
        self.account.scheduler.kick()

    def _writable(self, pool_id: str) -> Pool:
        pool = self.get(pool_id)
        if pool.state == "deleting":
            raise conflict(
                "PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed."
            )
        return pool

    # ---- resize

    def resize(self, pool_id: str, body: dict[str, Any]) -> Pool:
        # An autoscale pool refuses a manual resize whatever its allocation state.
        if self._writable(pool_id).enable_auto_scale:
            raise conflict(
                "OperationNotValidOnPool",
                "The specified operation is not valid on the pool.",
                Reason="The pool has autoscale enabled; it cannot be resized manually.",
            )
        pool = self._steady(pool_id)
        dedicated = get_int(body, "targetDedicatedNodes", pool.target_dedicated, 0, 10000)
        low_priority = get_int(body, "targetLowPriorityNodes", pool.target_low_priority, 0, 10000)
        pool.resize_timeout = (
            get_duration(body, "resizeTimeout", DEFAULT_RESIZE_TIMEOUT, MIN_RESIZE_TIMEOUT)
            or DEFAULT_RESIZE_TIMEOUT
        )
        option = get_enum(body, "nodeDeallocationOption", EVICTION_OPTIONS, "requeue") or "requeue"
        check_capacity(pool.network, dedicated + low_priority)
        pool.target_dedicated, pool.target_low_priority = dedicated, low_priority
        pool.touch()
        self._start_resize(pool, option)
        return pool

    def stop_resize(self, pool_id: str) -> Pool:
        pool = self._writable(pool_id)
        if pool.allocation_state == "resizing" and pool._resize is not None:
            pool._resize.cancel()
            pool.set_allocation_state("stopping")
            self.account.spawn(self._finish_stop(pool))
        return pool

    async def _finish_stop(self, pool: Pool) -> None:
        await self.account.step()
        pool.target_dedicated = len(pool.current_nodes(True))
        pool.target_low_priority = len(pool.current_nodes(False))
        pool.set_allocation_state("steady")

    def remove_nodes(self, pool_id: str, body: dict[str, Any]) -> Pool:
        pool = self._steady(pool_id)
        node_ids = get_list(body, "nodeList")
        if not node_ids:
            raise missing_property("nodeList")
        if len(node_ids) > 100:
            raise invalid_property("nodeList", len(node_ids), "At most 100 nodes can be removed per request.")
        option = get_enum(body, "nodeDeallocationOption", EVICTION_OPTIONS, "requeue") or "requeue"
        nodes = []
        for node_id in node_ids:
            node = pool.nodes.get(str(node_id))
            if node is None:
                raise resource_not_found("node")
            nodes.append(node)
        pool.set_allocation_state("resizing")
        pool.target_dedicated -= sum(1 for node in nodes if node.is_dedicated)
        pool.target_low_priority -= sum(1 for node in nodes if not node.is_dedicated)
        pool.touch()
        pool._resize = self.account.spawn(self._remove(pool, nodes, option))
        return pool

    async def _remove(self, pool: Pool, nodes: list[Node], option: str) -> None:
        await self.account.step()
        await asyncio.gather(*(self.account.nodes.remove(node, option) for node in nodes))
        pool.set_allocation_state("steady")

    def _steady(self, pool_id: str) -> Pool:
        pool = self._writable(pool_id)
        if pool.allocation_state != "steady":
            raise conflict(
                "PoolBeingResized",
                "The specified pool is being resized",
                AllocationState=pool.allocation_state,
            )
        return pool

    def _start_resize(self, pool: Pool, option: str) -> None:
        pool.set_allocation_state("resizing")
        pool.resize_errors = []
        pool._resize = self.account.spawn(self._allocate(pool, option))

    async def _allocate(self, pool: Pool, option: str) -> None:
        await self.account.step()
        for dedicated, target in ((True, pool.target_dedicated), (False, pool.target_low_priority)):
            current = pool.current_nodes(dedicated)
            if target > len(current):
                self._grow(pool, dedicated, target - len(current))
            elif target < len(current):
                victims = sorted(current, key=lambda node: (len(node.running), node.state != "idle"))
                removals = victims[: len(current) - target]
                await asyncio.gather(*(self.account.nodes.remove(node, option) for node in removals))
        await self.account.step()
        pool.set_allocation_state("steady")
        self.account.scheduler.kick()

    def _grow(self, pool: Pool, dedicated: bool, wanted: int) -> None:
        settings = self.account.settings
        quota = settings.dedicated_core_quota if dedicated else settings.low_priority_core_quota
        available = max(0, quota - self.used_cores(dedicated))
        allowed = min(wanted, available // pool.cores)
        for _ in range(allowed):
            self.account.nodes.create(pool, dedicated)
        if allowed < wanted:
            kind = "" if dedicated else "LowPriority"
            kind_name = "dedicated" if dedicated else "low-priority"
            pool.resize_errors.append(
                {
                    "code": f"Account{kind}CoreQuotaReached",
                    "message": (
                        f"The specified account has reached its {kind_name} VM core quota. "
                        "Request a quota increase or reduce the target."
                    ),
                    "values": [
                        {"name": "CoreQuota", "value": str(quota)},
                        {"name": "RequestedCores", "value": str(wanted * pool.cores)},
                        {"name": "AvailableCores", "value": str(available)},
                    ],
                }
            )

    # ---- autoscale

    def enable_auto_scale(self, pool_id: str, body: dict[str, Any]) -> Pool:
        pool = self._writable(pool_id)
        if not pool.enable_auto_scale and pool.allocation_state != "steady":
            raise conflict("PoolBeingResized", "The specified pool is being resized")
        formula = body.get("autoScaleFormula", pool.auto_scale_formula)
        if not formula:
            raise missing_property("autoScaleFormula")
        interval = get_duration(
            body,
            "autoScaleEvaluationInterval",
            pool.auto_scale_interval or DEFAULT_AUTOSCALE_INTERVAL,
            MIN_AUTOSCALE_INTERVAL,
        )
        self._check_formula(pool, str(formula))
        pool.enable_auto_scale = True
        pool.auto_scale_formula = str(formula)
        pool.auto_scale_interval = interval
        pool.touch()
        self._evaluate_and_apply(pool)
        self._schedule_autoscale(pool)
        return pool

    def disable_auto_scale(self, pool_id: str) -> Pool:
        pool = self._writable(pool_id)
        pool.enable_auto_scale = False
        pool.auto_scale_formula = None
        pool.auto_scale_run = None
        if pool._autoscale_timer is not None:
            pool._autoscale_timer.cancel()
        pool.touch()
        return pool

    def evaluate_auto_scale(self, pool_id: str, body: dict[str, Any]) -> dict[str, Any]:
        pool = self._writable(pool_id)
        if not pool.enable_auto_scale:
            raise conflict(
                "OperationNotValidOnPool",
                "The specified operation is not valid on the pool.",
                Reason="The pool does not have autoscale enabled.",
            )
        formula = str(require(body, "autoScaleFormula"))
        try:
            result = self._evaluate(pool, formula)
        except FormulaError as err:
            return {
                "timestamp": format_datetime(utcnow()),
                "error": {"code": err.code, "message": err.message, "values": []},
            }
        return {"timestamp": format_datetime(utcnow()), "results": result.results}

    def _check_formula(self, pool: Pool, formula: str) -> None:
        try:
            self._evaluate(pool, formula)
        except FormulaError as err:
            message = (
                "The specified auto-scaling formula has a syntax error."
                if err.code == "AutoScalingFormulaSyntaxError"
                else "The specified auto-scaling settings are not valid."
            )
            code = err.code if err.code == "AutoScalingFormulaSyntaxError" else "InvalidAutoScalingSettings"
            raise BatchError(
                400, code, message, {"PropertyName": "autoScaleFormula", "Reason": err.message}
            ) from err

    def _evaluate(self, pool: Pool, formula: str) -> FormulaResult:
        metrics = self.account.jobs.pool_metrics(pool.id)
        return evaluate_formula(
            formula,
            current_dedicated=len(pool.current_nodes(True)),
            current_low_priority=len(pool.current_nodes(False)),
            target_dedicated=pool.target_dedicated,
            target_low_priority=pool.target_low_priority,
            metrics=metrics,
            preempted=sum(node.state == "preempted" for node in pool.current_nodes(False)),
        )

    def _evaluate_and_apply(self, pool: Pool) -> None:
        assert pool.auto_scale_formula is not None
        try:
            result = self._evaluate(pool, pool.auto_scale_formula)
        except FormulaError as err:
            pool.auto_scale_run = {
                "timestamp": format_datetime(utcnow()),
                "error": {"code": err.code, "message": err.message, "values": []},
            }
            return
        pool.auto_scale_run = {"timestamp": format_datetime(utcnow()), "results": result.results}
        targets = (result.target_dedicated, result.target_low_priority)
        if targets != (pool.target_dedicated, pool.target_low_priority) and pool.allocation_state == "steady":
            pool.target_dedicated, pool.target_low_priority = targets
            option = result.node_deallocation_option
            self._start_resize(pool, option if option in EVICTION_OPTIONS else "requeue")

    def _schedule_autoscale(self, pool: Pool) -> None:
        if pool._autoscale_timer is not None:
            pool._autoscale_timer.cancel()
        pool._autoscale_timer = self.account.spawn(self._autoscale_loop(pool))

    async def _autoscale_loop(self, pool: Pool) -> None:
        while pool.enable_auto_scale and pool.state == "active":
            interval = (pool.auto_scale_interval or DEFAULT_AUTOSCALE_INTERVAL).total_seconds()
            await asyncio.sleep(interval * self.account.settings.autoscale_interval_scale)
            if pool.enable_auto_scale and pool.state == "active":
                self._evaluate_and_apply(pool)

    def _cancel_timers(self, pool: Pool) -> None:
        for timer in (pool._resize, pool._autoscale_timer):
            if timer is not None:
                timer.cancel()
