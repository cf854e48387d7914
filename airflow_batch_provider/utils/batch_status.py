"""What a pool or a job is doing, decided the same way by operators, sensors and triggers.

The checks are written once, as coroutines over a small I/O interface: the triggerer runs them with
the async Batch client (:class:`AsyncBatchIO`), sensors and operators with the sync client
(:class:`SyncBatchIO`, whose coroutines simply call the blocking hook). The verdict logic itself is
pure and unit-tested on plain dicts in the service's JSON shape.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.hooks._sdk_compat import TaskCounts, error_code

T = TypeVar("T")

USABLE_NODE_STATES = frozenset({"idle", "running"})
#: Node states that cannot become usable without a reboot or reimage.
BAD_NODE_STATES = frozenset({"starttaskfailed", "unusable"})
#: Node states that will not become usable on their own.
GONE_NODE_STATES = frozenset({"leavingpool", "offline", "deallocated", "deallocating"})

#: Resize error codes that are transient on an autoscale pool (the next evaluation retries).
TRANSIENT_RESIZE_ERRORS = frozenset({"allocationtimedout"})

POOL_SELECT = [
    "id",
    "state",
    "allocationState",
    "resizeErrors",
    "enableAutoScale",
    "autoScaleRun",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "vmSize",
    "taskSlotsPerNode",
]
NODE_SELECT = ["id", "state", "startTaskInfo", "errors", "lastBootTime"]
TASK_SELECT = ["id", "state", "executionInfo"]
STARTUP_STDERR = "startup/stderr.txt"
#: Per poll, the stderr tail is read (and logged) for at most this many of the nodes being rebooted.
MAX_REBOOT_TAILS = 3
#: While a job's counts do not move, the poll after the first unchanged one reads the job's state
#: instead of the counts, and so does every N-th poll after that.
JOB_CHECK_EVERY = 10
JOB_SELECT = ["id", "state", "executionInfo"]


class BatchIO(Protocol):
    """The reads the checks need; implemented over the sync and the async client."""

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None: ...

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]: ...

    async def read_node_file_tail(
        self, pool_id: str, node_id: str, path: str, max_bytes: int
    ) -> str | None: ...

    async def reboot_node(self, pool_id: str, node_id: str) -> None: ...

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None: ...

    async def get_task_counts(self, job_id: str) -> TaskCounts: ...

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...

    async def read_task_file_tail(
        self, job_id: str, task_id: str, path: str, max_bytes: int
    ) -> str | None: ...


class SyncBatchIO:
    """:class:`BatchIO` over a :class:`~airflow_batch_provider.hooks.batch.BatchHook` (blocking calls)."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return self.hook.get_pool(pool_id, select=select)

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        return self.hook.list_nodes(pool_id, select=select)

    async def read_node_file_tail(self, pool_id: str, node_id: str, path: str, max_bytes: int) -> str | None:
        return self.hook.read_node_file_tail(pool_id, node_id, path, max_bytes=max_bytes)

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        self.hook.reboot_node(pool_id, node_id)

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return self.hook.get_job(job_id, select=select)

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        return self.hook.get_task_counts(job_id)

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return self.hook.list_tasks(job_id, filter=filter, select=select, limit=limit)

    async def read_task_file_tail(self, job_id: str, task_id: str, path: str, max_bytes: int) -> str | None:
        return self.hook.read_task_file_tail(job_id, task_id, path, max_bytes=max_bytes)


class AsyncBatchIO:
    """:class:`BatchIO` over the hook's async client (for the triggerer)."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return await self.hook.aget_pool(pool_id, select=select)

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        return await self.hook.alist_nodes(pool_id, select=select)

    async def read_node_file_tail(self, pool_id: str, node_id: str, path: str, max_bytes: int) -> str | None:
        return await self.hook.aread_node_file_tail(pool_id, node_id, path, max_bytes=max_bytes)

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        await self.hook.areboot_node(pool_id, node_id)

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        return await self.hook.aget_job(job_id, select=select)

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        return await self.hook.aget_task_counts(job_id)

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return await self.hook.alist_tasks(job_id, filter=filter, select=select, limit=limit)

    async def read_task_file_tail(self, job_id: str, task_id: str, path: str, max_bytes: int) -> str | None:
        return await self.hook.aread_task_file_tail(job_id, task_id, path, max_bytes=max_bytes)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a check coroutine from synchronous code (in a helper thread if a loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coro).result()


# ---------------------------------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------------------------------


def _lower(value: Any) -> str:
    return str(value or "").strip().lower()


def _job_has_ended(job: Mapping[str, Any]) -> bool:
    return _lower(job.get("state")) in ("completed", "terminating", "deleting")


def job_check_due(stalled_polls: int) -> bool:
    """Whether the next poll reads the job instead of its tasks, after ``stalled_polls`` unchanged polls."""
    return stalled_polls == 1 or (stalled_polls > 0 and stalled_polls % JOB_CHECK_EVERY == 0)


def job_check_due_by_clock(now: float, poll_interval: float) -> bool:
    """For polls that remember nothing (reschedule-mode pokes): whether this one reads the job too.

    Time is cut into slots of one poll interval, and the first slot of every ``JOB_CHECK_EVERY`` is
    due, so roughly one poke in ``JOB_CHECK_EVERY`` reads the job, with no state kept between pokes.
    """
    return int(now // max(float(poll_interval), 1.0)) % JOB_CHECK_EVERY == 0


def is_fatal_resize_error(code: str | None) -> bool:
    """Quota, image and VM size errors: no amount of waiting fixes them."""
    text = str(code or "")
    lowered = text.lower()
    if lowered in TRANSIENT_RESIZE_ERRORS:
        return False
    return (
        "quota" in lowered
        or lowered.endswith(("notsupported", "notfound", "notavailable", "notallowed", "disallowed"))
        or lowered.startswith(("invalid", "unsupported"))
    )


def _resize_error_text(error: Mapping[str, Any]) -> str:
    text = f"{error.get('code')}: {error.get('message') or ''}".strip()
    values = error.get("values") or []
    extra = ", ".join(f"{v.get('name')}={v.get('value')}" for v in values if isinstance(v, Mapping))
    return f"{text} ({extra})" if extra else text


@dataclass
class PoolVerdict:
    """Whether a pool is ready, still coming up, or can never become ready."""

    status: Literal["ready", "waiting", "failed"]
    message: str
    usable_nodes: int = 0
    required_nodes: int = 0
    start_task_failed_nodes: list[str] = field(default_factory=list)
    unusable_nodes: list[str] = field(default_factory=list)
    allocation_state: str | None = None
    #: One line per node this poll rebooted after its start task failed (id, attempt, stderr tail).
    reboot_messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def required_usable_nodes(pool: Mapping[str, Any], min_usable_nodes: int | None) -> int:
    """Nodes a pool needs to count as ready: the caller's minimum, else every target node."""
    if min_usable_nodes is not None:
        return max(0, int(min_usable_nodes))
    if pool.get("enableAutoScale"):
        return 0
    return int(pool.get("targetDedicatedNodes") or 0) + int(pool.get("targetLowPriorityNodes") or 0)


def describe_nodes(nodes: Sequence[Mapping[str, Any]]) -> str:
    states: dict[str, int] = {}
    for node in nodes:
        state = _lower(node.get("state")) or "unknown"
        states[state] = states.get(state, 0) + 1
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "no nodes"


def evaluate_pool(
    pool: Mapping[str, Any] | None,
    nodes: Sequence[Mapping[str, Any]],
    min_usable_nodes: int | None = None,
    *,
    pool_id: str | None = None,
) -> PoolVerdict:
    """Decide from a pool and its nodes whether to wait, succeed or fail (and why)."""
    if pool is None:
        return PoolVerdict(
            "failed", f"Pool {pool_id!r} does not exist (it was never created or was deleted)."
        )
    pid = pool.get("id") or pool_id
    autoscale = bool(pool.get("enableAutoScale"))
    required = required_usable_nodes(pool, min_usable_nodes)
    allocation = _lower(pool.get("allocationState"))
    steady = allocation == "steady"
    usable = sum(1 for n in nodes if _lower(n.get("state")) in USABLE_NODE_STATES)
    start_failed = [str(n.get("id")) for n in nodes if _lower(n.get("state")) == "starttaskfailed"]
    unusable = [str(n.get("id")) for n in nodes if _lower(n.get("state")) == "unusable"]
    coming = sum(
        1
        for n in nodes
        if _lower(n.get("state")) not in USABLE_NODE_STATES | BAD_NODE_STATES | GONE_NODE_STATES
    )
    base = dict(
        usable_nodes=usable,
        required_nodes=required,
        start_task_failed_nodes=start_failed,
        unusable_nodes=unusable,
        allocation_state=allocation or None,
    )
    summary = (
        f"pool {pid!r}: allocation {allocation or 'unknown'}, {usable} usable of {required} required node(s) "
        f"[{describe_nodes(list(nodes))}]"
    )
    if _lower(pool.get("state")) == "deleting":
        return PoolVerdict("failed", f"Pool {pid!r} is being deleted.", **base)  # type: ignore[arg-type]
    if steady and usable >= required:
        return PoolVerdict("ready", f"Ready: {summary}", **base)  # type: ignore[arg-type]
    errors = [e for e in (pool.get("resizeErrors") or []) if isinstance(e, Mapping)]
    fatal = [e for e in errors if is_fatal_resize_error(e.get("code"))]
    if fatal:
        details = "; ".join(_resize_error_text(e) for e in fatal)
        return PoolVerdict(
            "failed",
            f"Pool {pid!r} cannot get its nodes: {details}. Fix the quota, image or VM size and "
            "recreate the pool.",
            **base,  # type: ignore[arg-type]
        )
    if not steady:
        return PoolVerdict("waiting", f"Waiting: {summary}", **base)  # type: ignore[arg-type]
    if usable + coming >= required:
        return PoolVerdict("waiting", f"Waiting for nodes to start: {summary}", **base)  # type: ignore[arg-type]
    if start_failed:
        return PoolVerdict(
            "failed",
            f"The start task failed on {len(start_failed)} node(s) of pool {pid!r} "
            f"({', '.join(start_failed[:5])}), leaving {usable} usable of {required} required.",
            **base,  # type: ignore[arg-type]
        )
    if unusable:
        node_errors = []
        for n in nodes:
            if str(n.get("id")) in unusable[:3]:
                for err in n.get("errors") or []:
                    node_errors.append(f"{n.get('id')}: {err.get('code')}: {err.get('message')}")
        extra = f" Node errors: {'; '.join(node_errors)}" if node_errors else ""
        return PoolVerdict(
            "failed",
            f"{len(unusable)} node(s) of pool {pid!r} are unusable ({', '.join(unusable[:5])}), leaving "
            f"{usable} usable of {required} required.{extra}",
            **base,  # type: ignore[arg-type]
        )
    transient = [e for e in errors if _lower(e.get("code")) in TRANSIENT_RESIZE_ERRORS]
    if autoscale:
        why = f" (last resize: {'; '.join(_resize_error_text(e) for e in transient)})" if transient else ""
        return PoolVerdict(
            "waiting",
            f"Waiting for autoscale to add nodes{why}: {summary}",
            **base,  # type: ignore[arg-type]
        )
    details = "; ".join(_resize_error_text(e) for e in errors)
    target = int(pool.get("targetDedicatedNodes") or 0) + int(pool.get("targetLowPriorityNodes") or 0)
    return PoolVerdict(
        "failed",
        f"Pool {pid!r} finished resizing with {usable} usable node(s) but {required} are required "
        f"(target {target} node(s))"
        + (f": {details}" if details else ". Raise the node counts or min_usable_nodes."),
        **base,  # type: ignore[arg-type]
    )


def start_task_failure_details(node: Mapping[str, Any] | None) -> str:
    """Exit code and failure info of a node's start task, as one line."""
    if not node:
        return ""
    info = node.get("startTaskInfo") or {}
    failure = info.get("failureInfo") or {}
    parts = []
    if info.get("exitCode") is not None:
        parts.append(f"exit code {info.get('exitCode')}")
    if failure.get("code"):
        parts.append(f"{failure.get('code')}: {failure.get('message') or ''}".strip())
    return "; ".join(parts)


def _failed_start(node: Mapping[str, Any]) -> str:
    """What identifies one failed start of a node: its last boot and the end of its start task."""
    info = node.get("startTaskInfo") or {}
    return f"{node.get('lastBootTime') or ''}|{info.get('endTime') or ''}"


@dataclass
class StartTaskReboots:
    """The reboots a pool wait sends to nodes whose start task failed: at most ``max_per_node`` each.

    Whoever polls (an operator's wait loop, a sensor, a trigger) keeps one across its polls. The
    service keeps no reboot count (``startTaskInfo.retryCount`` counts retries within one boot, and
    ``lastBootTime`` only the latest boot), so the counts live in this object; :meth:`to_json` hands
    them to a trigger. ``rebooted_for`` remembers which failed start each node was rebooted for: a
    node still listed with that same failure on the next poll (the listing may lag behind the reboot)
    is given that poll to show the reboot, and is not rebooted twice for one failure.
    """

    max_per_node: int = 0
    #: Reboots sent so far, by node id.
    counts: dict[str, int] = field(default_factory=dict)
    #: The failed start (see ``_failed_start``) each node was last rebooted for, by node id.
    rebooted_for: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reboot_pending(self, node: Mapping[str, Any]) -> bool:
        """Whether the node still shows the failed start it was just rebooted for (once per reboot)."""
        node_id = str(node.get("id"))
        if self.rebooted_for.get(node_id) != _failed_start(node):
            return False
        del self.rebooted_for[node_id]  # the poll after this one counts the failure as a new one
        return True

    def budget_left(self, node_id: str) -> bool:
        return self.counts.get(node_id, 0) < self.max_per_node

    def record(self, node: Mapping[str, Any]) -> int:
        """Count a reboot of ``node``; returns its attempt number (1 for the first reboot)."""
        node_id = str(node.get("id"))
        self.counts[node_id] = self.counts.get(node_id, 0) + 1
        self.rebooted_for[node_id] = _failed_start(node)
        return self.counts[node_id]

    def summary(self, node_ids: Sequence[str]) -> str:
        """How many reboots were tried, for a failure message ("" when none were allowed)."""
        if self.max_per_node <= 0:
            return ""
        if not self.total:
            return (
                f" No node was rebooted (max_start_task_reboots={self.max_per_node}): the pool could "
                "not become ready even with them rebooted."
            )
        tried = ", ".join(f"{node_id} {self.counts.get(node_id, 0)}" for node_id in node_ids[:5])
        more = " ..." if len(node_ids) > 5 else ""
        return (
            f" {self.total} reboot(s) were tried before giving up (max_start_task_reboots="
            f"{self.max_per_node} per node; reboots by node: {tried}{more})."
        )

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "rebooted_for": dict(self.rebooted_for)}

    @classmethod
    def from_json(cls, max_per_node: int, data: Mapping[str, Any] | None) -> StartTaskReboots:
        data = data or {}
        return cls(
            max_per_node,
            {str(k): int(v) for k, v in (data.get("counts") or {}).items()},
            {str(k): str(v) for k, v in (data.get("rebooted_for") or {}).items()},
        )


async def _startup_stderr(io: BatchIO, pool_id: str, node_id: str, tail_bytes: int) -> tuple[str | None, str]:
    """The tail of a node's ``startup/stderr.txt``, and a note when it could not be read."""
    try:
        return await io.read_node_file_tail(pool_id, node_id, STARTUP_STDERR, tail_bytes), ""
    except Exception as err:  # the node may be gone already
        return None, f" (could not read {STARTUP_STDERR}: {type(err).__name__})"


def _with_tail(text: str, node_id: str, tail: str | None) -> str:
    if not tail:
        return text
    return f"{text}\n--- tail of {STARTUP_STDERR} on {node_id} ---\n{tail.rstrip()}"


async def _reboot_failed_nodes(
    io: BatchIO,
    pool: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    min_usable_nodes: int | None,
    reboots: StartTaskReboots,
    pool_id: str,
    tail_bytes: int,
) -> PoolVerdict | None:
    """Reboot the nodes whose start task failed and that have reboots left.

    Only when the wait would go on with those nodes back in ``rebooting`` (a pool that fails anyway,
    or is ready without them, gets no reboot). Returns that waiting verdict, or ``None`` when nothing
    was (or is being) rebooted.
    """
    failed = [n for n in nodes if _lower(n.get("state")) == "starttaskfailed"]
    awaiting = {str(n.get("id")) for n in failed if reboots.reboot_pending(n)}
    due = [n for n in failed if str(n.get("id")) not in awaiting and reboots.budget_left(str(n.get("id")))]
    if not due and not awaiting:
        return None
    restarting = awaiting | {str(n.get("id")) for n in due}
    assumed = [{**n, "state": "rebooting"} if str(n.get("id")) in restarting else n for n in nodes]
    verdict = evaluate_pool(pool, assumed, min_usable_nodes, pool_id=pool_id)
    if verdict.status != "waiting":
        return None
    for index, node in enumerate(due):
        node_id = str(node.get("id"))
        details = start_task_failure_details(node) or "no details"
        tail, note = (None, "")
        if index < MAX_REBOOT_TAILS:
            tail, note = await _startup_stderr(io, pool_id, node_id, tail_bytes)
        try:
            await io.reboot_node(pool_id, node_id)
        except ResourceNotFoundError:  # the node left the pool
            continue
        except ResourceExistsError as err:  # 409: the node is not in a state that can be rebooted
            if error_code(err) != "NodeBeingRebooted":  # e.g. leaving the pool: look again next poll
                continue
            # Already rebooting: most likely our own request, retried after its answer was lost.
        attempt = reboots.record(node)
        message = (
            f"Rebooting node {node_id} of pool {pool_id!r} (reboot {attempt} of "
            f"{reboots.max_per_node}): its start task failed ({details}){note}."
        )
        verdict.reboot_messages.append(_with_tail(message, node_id, tail))
    if verdict.reboot_messages:
        verdict.message = (
            f"Rebooted {len(verdict.reboot_messages)} node(s) whose start task failed. {verdict.message}"
        )
    return verdict


async def check_pool(
    io: BatchIO,
    pool_id: str,
    min_usable_nodes: int | None = None,
    *,
    tail_bytes: int = 4096,
    reboots: StartTaskReboots | None = None,
) -> PoolVerdict:
    """One poll of a pool: read it and its nodes, decide, and on a start-task failure read its stderr.

    With ``reboots``, nodes whose start task failed are rebooted (up to its per-node budget) while that
    can still make the pool ready; the wait fails only once their budget is spent.
    """
    pool = await io.get_pool(pool_id)
    if pool is None:
        return evaluate_pool(None, [], min_usable_nodes, pool_id=pool_id)
    nodes = await io.list_nodes(pool_id, select=NODE_SELECT)
    verdict = evaluate_pool(pool, nodes, min_usable_nodes, pool_id=pool_id)
    if (
        reboots is not None
        and reboots.max_per_node > 0
        and verdict.start_task_failed_nodes
        and verdict.status != "ready"
    ):
        rebooting = await _reboot_failed_nodes(
            io, pool, nodes, min_usable_nodes, reboots, pool_id, tail_bytes
        )
        if rebooting is not None:
            return rebooting
    if verdict.status == "failed" and verdict.start_task_failed_nodes:
        node_id = verdict.start_task_failed_nodes[0]
        node = next((n for n in nodes if str(n.get("id")) == node_id), None)
        details = start_task_failure_details(node)
        tail, note = await _startup_stderr(io, pool_id, node_id, tail_bytes)
        details += note
        if reboots is not None:
            verdict.message += reboots.summary(verdict.start_task_failed_nodes)
        verdict.message += f" Node {node_id}: {details or 'no details'}."
        verdict.message = _with_tail(verdict.message, node_id, tail)
    return verdict


# ---------------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------------


def check_pool_blocking(
    hook: Any, pool_id: str, min_usable_nodes: int | None, reboots: StartTaskReboots, log: Any
) -> PoolVerdict:
    """One poll of a pool from blocking code (an operator's wait, a sensor's poke), as
    :func:`check_pool` over the hook; the reboots it made are logged as warnings on ``log``."""
    verdict = run_sync(check_pool(SyncBatchIO(hook), pool_id, min_usable_nodes, reboots=reboots))
    for line in verdict.reboot_messages:
        log.warning("%s", line)
    return verdict


def prefix_filter(prefix: str) -> str:
    """OData filter for tasks whose id starts with ``prefix``."""
    escaped = prefix.replace("'", "''")
    return f"startswith(id,'{escaped}')"


def is_failed_task(task: Mapping[str, Any]) -> bool:
    info = task.get("executionInfo") or {}
    return _lower(task.get("state")) == "completed" and (
        _lower(info.get("result")) == "failure" or bool(info.get("failureInfo"))
    )


def counts_from_tasks(tasks: Sequence[Mapping[str, Any]]) -> TaskCounts:
    """Task counts computed from listed tasks (``preparing`` counts as running, as the service does)."""
    active = running = completed = succeeded = failed = 0
    for task in tasks:
        state = _lower(task.get("state"))
        if state == "active":
            active += 1
        elif state in ("running", "preparing"):
            running += 1
        elif state == "completed":
            completed += 1
            if is_failed_task(task):
                failed += 1
            else:
                succeeded += 1
    return TaskCounts(active, running, completed, succeeded, failed)


def failed_task_summary(task: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a failed task worth showing: id, exit code, failure code and message, retries."""
    info = task.get("executionInfo") or {}
    failure = info.get("failureInfo") or {}
    return {
        "id": task.get("id"),
        "exit_code": info.get("exitCode"),
        "failure_code": failure.get("code"),
        "failure_category": failure.get("category"),
        "failure_message": failure.get("message"),
        "retry_count": info.get("retryCount"),
        "requeue_count": info.get("requeueCount"),
    }


def progress_line(job_id: str, prefix: str | None, counts: TaskCounts) -> str:
    scope = f"tasks {prefix}* of job {job_id}" if prefix else f"job {job_id}"
    return (
        f"{scope}: {counts.completed}/{counts.total} completed ({counts.succeeded} succeeded, "
        f"{counts.failed} failed), {counts.running} running, {counts.active} active"
    )


def failure_report(event: Mapping[str, Any]) -> str:
    """A multi-line error message from a job check event: which tasks failed, how, and their stderr."""
    job_id = event.get("job_id")
    prefix = event.get("task_id_prefix")
    scope = f"tasks {prefix}* of job {job_id}" if prefix else f"job {job_id}"
    failed = event.get("failed_tasks") or []
    count = int(event.get("failed_count") or len(failed))
    lines = [
        f"{count} task(s) failed in {scope}"
        + (f" (showing {len(failed)})" if count > len(failed) else "")
        + ":"
    ]
    for task in failed:
        bits = [f"exit code {task.get('exit_code')}"]
        if task.get("failure_code"):
            bits.append(f"{task.get('failure_code')}: {task.get('failure_message') or ''}".strip())
        if task.get("retry_count"):
            bits.append(f"retries {task.get('retry_count')}")
        if task.get("requeue_count"):
            bits.append(f"requeued {task.get('requeue_count')}")
        lines.append(f"  - {task.get('id')}: {'; '.join(bits)}")
        if task.get("stderr_tail"):
            tail = "\n".join(f"      {line}" for line in str(task["stderr_tail"]).rstrip().splitlines())
            lines.append(f"    stderr (tail):\n{tail}")
    return "\n".join(lines)


def _job_end_note(job: Mapping[str, Any] | None) -> str | None:
    """Why a job ended early (max wall clock, terminated by a user), when it did."""
    if not job:
        return None
    state = _lower(job.get("state"))
    reason = (job.get("executionInfo") or {}).get("terminateReason")
    if state in ("completed", "terminating") and reason and _lower(reason) != "alltaskscomplete":
        if _lower(reason) == "taskfailed":
            return (
                f"Job {job.get('id')!r} was ended by a failed task's exit options (jobAction terminate, "
                "reason TaskFailed); its running tasks were stopped."
            )
        return f"Job {job.get('id')!r} was terminated ({reason}); its running tasks were stopped."
    return None


def _failure_code(task: Mapping[str, Any]) -> str | None:
    return ((task.get("executionInfo") or {}).get("failureInfo") or {}).get("code")


async def job_end_cause(
    io: BatchIO, job: Mapping[str, Any], *, max_failed: int = 3, tail_bytes: int = 2048
) -> str | None:
    """Why a job that takes no more tasks ended, naming the failed tasks (exit code, stderr tail).

    ``None`` for a job that ended otherwise than through a task's exit options (``TaskFailed``), whose
    cause is in its terminate reason. For a ``TaskFailed`` job the failed tasks are the cause: fix
    them, then run again (with a per-run job id, the next run gets a new job).
    """
    reason = (job.get("executionInfo") or {}).get("terminateReason")
    if _lower(reason) != "taskfailed":
        return None
    job_id = str(job.get("id"))
    failed = await io.list_tasks(job_id, filter="executionInfo/result eq 'failure'", select=TASK_SELECT)
    failed = [task for task in failed if is_failed_task(task)]
    # Tasks the termination stopped (TaskEnded) are its victims, not its cause.
    causes = [task for task in failed if _failure_code(task) != "TaskEnded"] or failed
    details = await _failed_details(io, job_id, causes, max_failed, max_failed, tail_bytes)
    report = failure_report({"job_id": job_id, "failed_tasks": details, "failed_count": len(causes)})
    return (
        f"Job {job_id!r} was ended by a failed task's exit options (jobAction terminate, reason "
        f"TaskFailed): that failure is the cause, not this task. {report}\nFix the failing task (its "
        "command, inputs or exit conditions) and run the DAG again."
    )


@dataclass
class JobCheck:
    """The result of one poll of a job (or of the tasks under a prefix)."""

    status: Literal["running", "success", "failed", "error"]
    job_id: str
    task_id_prefix: str | None
    counts: TaskCounts
    message: str
    failed_tasks: list[dict[str, Any]] = field(default_factory=list)
    failed_count: int = 0
    changed: bool = True
    #: Consecutive polls (this one included) in which the counts did not move.
    stalled_polls: int = 0
    #: For ``failed``: ``tasks_failed`` (tasks completed with failures) or ``job_ended`` (tasks left).
    reason: str | None = None

    def to_event(self) -> dict[str, Any]:
        """A JSON-serialisable event (for triggers and XCom)."""
        return {
            "status": self.status,
            "job_id": self.job_id,
            "task_id_prefix": self.task_id_prefix,
            "counts": self.counts.as_dict(),
            "message": self.message,
            "failed_tasks": self.failed_tasks,
            "failed_count": self.failed_count,
            "reason": self.reason,
        }


async def _failed_details(
    io: BatchIO,
    job_id: str,
    failed: Sequence[Mapping[str, Any]],
    max_failed: int,
    max_logs: int,
    tail_bytes: int,
) -> list[dict[str, Any]]:
    failed = sorted(failed, key=lambda t: str(t.get("id")))
    summaries = [failed_task_summary(task) for task in failed[:max_failed]]
    for summary in summaries[:max_logs]:
        try:
            summary["stderr_tail"] = await io.read_task_file_tail(
                job_id, str(summary["id"]), "stderr.txt", tail_bytes
            )
        except Exception as err:  # node deallocated, file gone: say so instead of failing the check
            summary["stderr_tail"] = (
                f"(stderr.txt unavailable: {type(err).__name__}; upload std*.txt as output files to keep it)"
            )
    return summaries


def _missing_job(job_id: str) -> str:
    return f"Job {job_id!r} does not exist. Create it first (BatchCreateJobOperator) or check the job id."


async def _job_ended_check(
    io: BatchIO,
    job: Mapping[str, Any],
    prefix: str | None,
    counts: TaskCounts,
    failed_raw: list[dict[str, Any]],
    changed: bool,
    max_failed_tasks: int,
    max_failure_logs: int,
    tail_bytes: int,
) -> JobCheck:
    """The verdict on a job that ended with tasks never completed: failed, with what did fail."""
    job_id = str(job.get("id"))
    state = _lower(job.get("state"))
    reason = (job.get("executionInfo") or {}).get("terminateReason") or state
    if not failed_raw and not prefix:
        failed_raw = await io.list_tasks(
            job_id, filter="executionInfo/result eq 'failure'", select=TASK_SELECT
        )
    failed_now = [t for t in failed_raw if is_failed_task(t)]
    details = await _failed_details(io, job_id, failed_now, max_failed_tasks, max_failure_logs, tail_bytes)
    message = (
        f"Job {job_id!r} ended ({state}, reason {reason}) with {counts.pending} task(s) never "
        f"completed [{progress_line(job_id, prefix, counts)}]."
    )
    check = JobCheck(
        "failed", job_id, prefix, counts, message, details, len(failed_now), changed, reason="job_ended"
    )
    if details:
        check.message += "\n" + failure_report(check.to_event())
    return check


async def check_job(
    io: BatchIO,
    job_id: str,
    task_id_prefix: str | None = None,
    *,
    expected_task_count: int | None = None,
    last_counts: TaskCounts | None = None,
    stalled_polls: int = 0,
    force_job_check: bool = False,
    max_failed_tasks: int = 10,
    max_failure_logs: int = 3,
    tail_bytes: int = 2048,
) -> JobCheck:
    """One poll: are all tasks (or all under the prefix) complete, and did any fail?

    A poll that finds the work still running makes exactly one request. Without a prefix that is the
    job's ``taskcounts``; with a prefix, one filtered task list with a narrow ``$select``. When the
    counts stop moving, the next poll (and every ``JOB_CHECK_EVERY``-th after it) reads the job's state
    instead, so a job that ended early (max wall clock, manual terminate) with tasks that will never
    run ends the wait rather than hanging. The final poll reads more: completion is confirmed with a
    filtered list, because counts are eventually consistent, and failed tasks get their details.
    ``force_job_check`` reads the job's state as well, for a poll with no memory of earlier ones.
    """
    prefix = task_id_prefix or None
    requeues = 0
    try:
        job: dict[str, Any] | None = None
        if force_job_check or (last_counts is not None and job_check_due(stalled_polls)):
            job = await io.get_job(job_id, select=JOB_SELECT)
            if job is None:
                return JobCheck("error", job_id, prefix, last_counts or TaskCounts(), _missing_job(job_id))
            if not _job_has_ended(job) and last_counts is not None:
                # Still active while the counts were not moving: this poll's one request was the job.
                return JobCheck(
                    "running",
                    job_id,
                    prefix,
                    last_counts,
                    progress_line(job_id, prefix, last_counts),
                    changed=False,
                    stalled_polls=stalled_polls + 1,
                )
        if prefix:
            tasks = await io.list_tasks(job_id, filter=prefix_filter(prefix), select=TASK_SELECT)
            counts = counts_from_tasks(tasks)
            complete = counts.total > 0 and counts.pending == 0
            failed_raw = [t for t in tasks if is_failed_task(t)]
            requeues = sum(int((t.get("executionInfo") or {}).get("requeueCount") or 0) for t in tasks)
        else:
            counts = await io.get_task_counts(job_id)
            complete = counts.total > 0 and counts.pending == 0
            failed_raw = []
            if complete:
                pending = await io.list_tasks(job_id, filter="state ne 'completed'", select=["id"], limit=1)
                complete = not pending
            if complete:
                failed_raw = await io.list_tasks(
                    job_id, filter="executionInfo/result eq 'failure'", select=TASK_SELECT
                )
                failed_raw = [t for t in failed_raw if is_failed_task(t)]
        if complete and expected_task_count is not None and counts.total < expected_task_count:
            complete = False
        changed = counts != last_counts
        if complete:
            if failed_raw:
                details = await _failed_details(
                    io, job_id, failed_raw, max_failed_tasks, max_failure_logs, tail_bytes
                )
                check = JobCheck(
                    "failed",
                    job_id,
                    prefix,
                    counts,
                    "",
                    details,
                    failed_count=len(failed_raw),
                    changed=changed,
                    reason="tasks_failed",
                )
                check.message = failure_report(check.to_event())
                if job is None:
                    job = await io.get_job(job_id, select=JOB_SELECT)
                ended = _job_end_note(job)
                if ended:
                    check.message = f"{ended}\n{check.message}"
                return check
            return JobCheck(
                "success", job_id, prefix, counts, progress_line(job_id, prefix, counts), changed=changed
            )
        if job is not None and _job_has_ended(job):
            return await _job_ended_check(
                io, job, prefix, counts, failed_raw, changed, max_failed_tasks, max_failure_logs, tail_bytes
            )
        line = progress_line(job_id, prefix, counts)
        if requeues:
            line += f"; {requeues} requeue(s) so far (Spot preemption or node loss)"
        stalled = 0 if changed else stalled_polls + 1
        return JobCheck("running", job_id, prefix, counts, line, changed=changed, stalled_polls=stalled)
    except ResourceNotFoundError:
        return JobCheck("error", job_id, prefix, last_counts or TaskCounts(), _missing_job(job_id))
