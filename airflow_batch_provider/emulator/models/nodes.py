"""Simulated compute nodes: their life cycle, start task, scheduling state and files."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import shutil
import subprocess
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.containers import ContainerError, ensure_image
from airflow_batch_provider.emulator.compute.runner.layout import NODE_DIRECTORIES, STARTUP_DIR
from airflow_batch_provider.emulator.errors import BatchError, conflict, resource_not_found
from airflow_batch_provider.emulator.models.base import environment_dict, get_enum
from airflow_batch_provider.emulator.models.network import PublicAddresses, inbound_endpoints, private_ipv6
from airflow_batch_provider.emulator.serialization import format_datetime, utcnow

if TYPE_CHECKING:
    from airflow_batch_provider.emulator.models.account import BatchAccount
    from airflow_batch_provider.emulator.models.node_users import NodeUser
    from airflow_batch_provider.emulator.models.pools import Pool
    from airflow_batch_provider.emulator.models.tasks import Task

#: Node states in which tasks may be placed on a node.
READY_STATES = ("idle", "running")
#: Node state -> the field of ``nodeCounts`` it is counted in.
NODE_COUNT_STATES = {
    "creating": "creating",
    "idle": "idle",
    "offline": "offline",
    "preempted": "preempted",
    "rebooting": "rebooting",
    "reimaging": "reimaging",
    "running": "running",
    "starting": "starting",
    "starttaskfailed": "startTaskFailed",
    "leavingpool": "leavingPool",
    "unknown": "unknown",
    "unusable": "unusable",
    "waitingforstarttask": "waitingForStartTask",
    "deallocated": "deallocated",
    "deallocating": "deallocating",
    "upgradingos": "upgradingOS",
}

#: What happens to running tasks when a node leaves, reboots or stops scheduling.
EVICTION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")

_ip_counter = itertools.count(4)


class Node:
    """One simulated VM of a pool: a directory under the state dir with ``taskSlotsPerNode`` slots."""

    def __init__(self, pool: Pool, node_id: str, dedicated: bool, root: Path) -> None:
        now = utcnow()
        self.pool = pool
        self.id = node_id
        self.is_dedicated = dedicated
        self.root = root
        self.state = "creating"
        self.scheduling_state = "enabled"
        self.state_transition_time = now
        self.allocation_time = now
        self.last_boot_time: datetime | None = None
        number = next(_ip_counter)
        self.ip_address = f"10.0.{number // 250}.{number % 250 + 4}"
        self.ipv6_address = private_ipv6(number)
        #: The node's place in the pool: its frontend ports are the NAT pools' range starts plus this.
        self.index: int = _free_index(pool)
        #: Accounts made with ``POST .../users``, by lower-case name (see ``models.node_users``).
        self.users: dict[str, NodeUser] = {}
        self.running: dict[int, Task] = {}
        self.total_tasks_run = 0
        self.total_tasks_succeeded = 0
        self.recent_tasks: deque[Task] = deque(maxlen=16)
        self.start_task_info: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        self.removed = False
        #: Set to stop the node's start task (reboot, reimage, removal).
        self.start_task_cancel = asyncio.Event()

    @property
    def used_slots(self) -> int:
        return sum(task.required_slots for task in self.running.values())

    @property
    def free_slots(self) -> int:
        return self.pool.task_slots_per_node - self.used_slots

    @property
    def schedulable(self) -> bool:
        return self.state in READY_STATES and self.scheduling_state == "enabled" and not self.removed

    @property
    def url(self) -> str:
        return f"{self.pool.account.base_url}/pools/{quote(self.pool.id)}/nodes/{quote(self.id)}"

    @property
    def public_addresses(self) -> PublicAddresses | None:
        """Where the node is reached from outside; ``None`` in a pool without public IP addresses."""
        return PublicAddresses.of_node(self.pool.account.name, self.pool.id, self.pool.network, self.index)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_transition_time = utcnow()

    def refresh_state(self) -> None:
        """``idle``, ``running`` or ``offline`` from its tasks and scheduling state (when it is up)."""
        if self.state in ("idle", "running", "offline"):
            if self.running:
                self.set_state("running")
            else:
                self.set_state("offline" if self.scheduling_state == "disabled" else "idle")

    def to_dict(self) -> dict[str, Any]:
        addresses = self.public_addresses
        document: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "state": self.state,
            "schedulingState": self.scheduling_state,
            "stateTransitionTime": format_datetime(self.state_transition_time),
            "allocationTime": format_datetime(self.allocation_time),
            "ipAddress": self.ip_address,
            "affinityId": f"TVM:{self.id}",
            "vmSize": self.pool.vm_size.lower(),
            "totalTasksRun": self.total_tasks_run,
            "runningTasksCount": len(self.running),
            "runningTaskSlotsCount": self.used_slots,
            "totalTasksSucceeded": self.total_tasks_succeeded,
            "isDedicated": self.is_dedicated,
            "nodeAgentInfo": {"version": "1.12.7", "lastUpdateTime": format_datetime(self.allocation_time)},
            "virtualMachineInfo": {"imageReference": self.pool.image_reference},
            "endpointConfiguration": {
                "inboundEndpoints": inbound_endpoints(
                    addresses, self.pool.network, self.pool.windows, self.index
                )
            },
        }
        if addresses is not None and addresses.ipv6 is not None:
            document["ipv6Address"] = self.ipv6_address
        if self.last_boot_time is not None:
            document["lastBootTime"] = format_datetime(self.last_boot_time)
        recent = [task.task_info() for task in list(self.running.values()) + list(self.recent_tasks)]
        if recent:
            document["recentTasks"] = recent[: self.recent_tasks.maxlen]
        if self.pool.start_task is not None:
            document["startTask"] = self.pool.start_task
        if self.start_task_info is not None:
            document["startTaskInfo"] = self.start_task_info
        if self.errors:
            document["errors"] = self.errors
        return document


def _free_index(pool: Pool) -> int:
    """The lowest index no node of ``pool`` holds (a removed node's index is reused, like its ports)."""
    taken = {node.index for node in pool.nodes.values()}
    return next(index for index in itertools.count() if index not in taken)


def make_node_id(pool_id: str, number: int, dedicated: bool) -> str:
    digest = hashlib.sha256(f"{pool_id}/{number}".encode()).hexdigest()[:40]
    return f"tvmps_{digest}_{'d' if dedicated else 'p'}"


class NodeBackend:
    """Node operations: boot (and start task), reboot, scheduling on/off, removal, file access."""

    def __init__(self, account: BatchAccount) -> None:
        self.account = account
        self._numbers = itertools.count(1)

    # ---- lookup

    def get(self, pool_id: str, node_id: str) -> Node:
        pool = self.account.pools.get(pool_id)
        node = pool.nodes.get(node_id)
        if node is None:
            raise resource_not_found("node")
        return node

    def all(self, pool_id: str) -> list[Node]:
        return list(self.account.pools.get(pool_id).nodes.values())

    # ---- life cycle

    def create(self, pool: Pool, dedicated: bool) -> Node:
        node_id = make_node_id(pool.id, next(self._numbers), dedicated)
        root = self.account.state_dir / "nodes" / pool.id / node_id
        for sub in NODE_DIRECTORIES:
            (root / sub).mkdir(parents=True, exist_ok=True)
        node = Node(pool, node_id, dedicated, root)
        pool.nodes[node_id] = node
        self.account.spawn(self.boot(node))
        return node

    async def boot(self, node: Node) -> None:
        """creating → starting → (waitingforstarttask) → idle, or starttaskfailed."""
        await self.account.step()
        if node.removed:
            return
        node.set_state("starting")
        await self.account.step()
        if node.removed:
            return
        node.last_boot_time = boot_time = utcnow()
        error = await self._prefetch_images(node)
        if node.removed or node.last_boot_time is not boot_time:
            return
        if error is not None:
            node.errors = [error]
            node.set_state("unusable")
            node.refresh_state()
            return
        start_task = node.pool.start_task
        if start_task is None:
            node.set_state("idle")
            node.refresh_state()
        elif start_task.get("waitForSuccess", True):
            node.set_state("waitingforstarttask")
            succeeded = await self.run_start_task(node, start_task)
            # A reboot meanwhile stopped this start task and booted the node again: that boot decides.
            superseded = node.last_boot_time is not boot_time
            if node.removed or superseded or node.state != "waitingforstarttask":
                return
            node.set_state("idle" if succeeded else "starttaskfailed")
            node.refresh_state()
            if not succeeded:
                node.errors = [
                    {
                        "code": "NodeStartTaskFailed",
                        "message": "The start task failed. See the start task's stderr.txt on the node.",
                        "errorDetails": [],
                    }
                ]
        else:
            node.set_state("idle")
            node.refresh_state()
            self.account.spawn(self.run_start_task(node, start_task))
        self.account.scheduler.kick()

    async def _prefetch_images(self, node: Node) -> dict[str, Any] | None:
        """Pull the pool's ``containerImageNames`` as a starting node does; the node's error if one fails."""
        configuration = node.pool.container_configuration
        images = (configuration or {}).get("containerImageNames") or []
        if not images:
            return None
        engine = self.account.container_engine
        if engine is None:
            return {
                "code": "ContainerEngineNotFound",
                "message": "The pool's containerImageNames cannot be pulled: no container engine was found "
                "on the emulator's machine (podman or docker on the PATH); install one, or name it with "
                "--container-engine",
                "errorDetails": [],
            }
        registries = (configuration or {}).get("containerRegistries") or []
        for image in images:
            try:
                await asyncio.to_thread(ensure_image, engine, image, registries)
            except (ContainerError, OSError, subprocess.SubprocessError) as err:
                return {
                    "code": "ContainerImagePullFailed",
                    "message": f"A container image of the pool could not be pulled: {err}",
                    "errorDetails": [{"name": "ContainerImage", "value": image}],
                }
        return None

    async def run_start_task(self, node: Node, start_task: dict[str, Any]) -> bool:
        from airflow_batch_provider.emulator.compute.runner.spec import RunKind

        max_retries = int(start_task.get("maxTaskRetryCount", 0))
        retry = 0
        node.start_task_cancel = cancel = asyncio.Event()
        while True:
            node.start_task_info = {
                "state": "running",
                "startTime": format_datetime(utcnow()),
                "retryCount": retry,
            }
            result = await self.account.scheduler.run_process(
                RunKind.START_TASK,
                node,
                start_task,
                node.root / STARTUP_DIR,
                environment=environment_dict(start_task.get("environmentSettings")),
                retry_count=retry,
                cancel=cancel,
            )
            info: dict[str, Any] = {
                "state": "completed",
                "startTime": format_datetime(result.start_time),
                "endTime": format_datetime(result.end_time),
                "retryCount": retry,
                "result": result.result,
            }
            if result.exit_code is not None:
                info["exitCode"] = result.exit_code
            if result.failure_info:
                info["failureInfo"] = result.failure_info
            elif not result.succeeded:
                info["failureInfo"] = failures.exit_code_failure()
            if retry:
                info["lastRetryTime"] = format_datetime(result.start_time)
            node.start_task_info = info
            if result.succeeded or node.removed or result.cancelled:
                return result.succeeded
            if max_retries != -1 and retry >= max_retries:
                return False
            retry += 1

    def shut_down(self, node: Node, option: str) -> None:
        """The node goes down: its start task stops and its tasks are handled per ``option``."""
        node.start_task_cancel.set()
        self.evict_tasks(node, option)

    def evict_tasks(self, node: Node, option: str) -> None:
        """Stop or requeue what runs on ``node`` (``taskcompletion``/``retaineddata`` let it finish)."""
        for task in list(node.running.values()):
            if option == "requeue":
                self.account.scheduler.cancel(task, "requeue")
            elif option == "terminate":
                self.account.scheduler.cancel(task, "terminate")

    def _restartable(self, pool_id: str, node_id: str) -> Node:
        node = self.get(pool_id, node_id)
        if node.state not in _RESTARTABLE:
            raise node_busy(node)
        return node

    def reboot(self, pool_id: str, node_id: str, body: dict[str, Any]) -> None:
        """``rebooting``, then boot again (the start task reruns); tasks are requeued or terminated."""
        node = self._restartable(pool_id, node_id)
        option = get_enum(body, "nodeRebootOption", EVICTION_OPTIONS, "requeue") or "requeue"
        self.shut_down(node, option if option in ("requeue", "terminate") else "requeue")
        node.set_state("rebooting")
        node.errors = []
        self.account.spawn(self._restart(node))

    def reimage(self, pool_id: str, node_id: str, body: dict[str, Any]) -> None:
        """Like reboot, on a fresh disk: the node's task and startup directories are wiped."""
        node = self._restartable(pool_id, node_id)
        option = get_enum(body, "nodeReimageOption", EVICTION_OPTIONS, "requeue") or "requeue"
        self.shut_down(node, option if option in ("requeue", "terminate") else "requeue")
        node.set_state("reimaging")
        node.errors = []
        self.account.spawn(self._restart(node, wipe=True))

    async def _restart(self, node: Node, wipe: bool = False) -> None:
        while node.running:
            await self.account.step()
        if wipe:
            await asyncio.to_thread(_wipe_disk, node.root)  # a thread: a node's tasks leave many files
            node.start_task_info = None
            node.users.clear()  # a fresh OS disk has none of the accounts
        for job in self.account.jobs.all():
            preparation = job.preparation_task or {}
            if wipe or preparation.get("rerunOnNodeRebootAfterSuccess", True):
                job.preparations.pop(node.id, None)
        await self.boot(node)

    def deallocate(self, pool_id: str, node_id: str, body: dict[str, Any]) -> None:
        """``deallocating`` → ``deallocated``: the node keeps its place in the pool but runs nothing."""
        node = self._restartable(pool_id, node_id)
        option = get_enum(body, "nodeDeallocateOption", EVICTION_OPTIONS, "requeue") or "requeue"
        self.shut_down(node, option if option in ("requeue", "terminate") else "requeue")
        node.set_state("deallocating")
        self.account.spawn(self._deallocate(node))

    async def _deallocate(self, node: Node) -> None:
        while node.running:
            await self.account.step()
        await self.account.step()
        node.set_state("deallocated")

    def start(self, pool_id: str, node_id: str) -> None:
        node = self.get(pool_id, node_id)
        if node.state != "deallocated":
            raise conflict(
                "OperationNotValidOnNode",
                "The specified operation is not valid on the node.",
                NodeState=node.state,
            )
        node.set_state("starting")
        self.account.spawn(self.boot(node))

    def preempt(self, pool_id: str, node_id: str) -> None:
        """Simulate a Spot eviction: tasks are requeued, the node is ``preempted``, then comes back.

        Not a Batch API: tests reach it through ``BatchEmulatorServer.preempt_node``.
        """
        node = self.get(pool_id, node_id)
        self.shut_down(node, "requeue")
        node.set_state("preempted")
        self.account.spawn(self._recover(node))

    async def _recover(self, node: Node) -> None:
        while node.running:
            await self.account.step()
        await self.account.step(5)
        if not node.removed and node.state == "preempted":
            node.set_state("creating")
            await self.boot(node)

    def disable_scheduling(self, pool_id: str, node_id: str, body: dict[str, Any]) -> None:
        node = self.get(pool_id, node_id)
        option = get_enum(
            body, "nodeDisableSchedulingOption", ("requeue", "terminate", "taskcompletion"), "requeue"
        )
        if node.scheduling_state == "disabled":
            raise already_in_scheduling_state()
        node.scheduling_state = "disabled"
        self.evict_tasks(node, option or "requeue")
        node.refresh_state()

    def enable_scheduling(self, pool_id: str, node_id: str) -> None:
        node = self.get(pool_id, node_id)
        if node.scheduling_state == "enabled":
            raise already_in_scheduling_state()
        node.scheduling_state = "enabled"
        node.refresh_state()
        self.account.scheduler.kick()

    async def remove(self, node: Node, option: str) -> None:
        """Take ``node`` out of its pool (``leavingpool``), after its tasks are dealt with."""
        node.set_state("leavingpool")
        self.shut_down(node, option)
        while node.running:
            await self.account.step()
        node.removed = True
        node.pool.nodes.pop(node.id, None)


_RESTARTABLE = ("idle", "running", "offline", "starttaskfailed", "unusable", "waitingforstarttask")
_BUSY = {
    "creating": ("NodeBeingCreated", "The specified node is being created"),
    "starting": ("NodeBeingStarted", "The specified node is being started"),
    "rebooting": ("NodeBeingRebooted", "The specified node is being rebooted"),
    "reimaging": ("NodeBeingReimaged", "The specified node is being reimaged"),
}


def node_busy(node: Node) -> BatchError:
    code, message = _BUSY.get(
        node.state, ("OperationNotValidOnNode", "The specified operation is not valid on the node.")
    )
    return conflict(code, message, NodeState=node.state)


def already_in_scheduling_state() -> BatchError:
    return conflict(
        "NodeAlreadyInTargetSchedulingState", "The specified node is already in the target scheduling state."
    )


def _wipe_disk(node_root: Path) -> None:
    """Empty a node's directories, as a reimage does."""
    for sub in NODE_DIRECTORIES:
        shutil.rmtree(node_root / sub, ignore_errors=True)
        (node_root / sub).mkdir(parents=True, exist_ok=True)
