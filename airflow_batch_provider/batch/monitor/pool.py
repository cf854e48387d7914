"""Whether a pool is ready: the verdict on a pool and its nodes, start task reboots, and the check
the pool operator, sensor and trigger share.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.batch.capacity import CoreQuotaRetry
from airflow_batch_provider.batch.monitor.io import BatchIO, SyncBatchIO, run_sync
from airflow_batch_provider.batch.monitor.states import (
    BAD_NODE_STATES,
    GONE_NODE_STATES,
    TRANSIENT_RESIZE_ERRORS,
    USABLE_NODE_STATES,
    lowered,
)
from airflow_batch_provider.batch.service_errors import error_code

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

STARTUP_STDERR = "startup/stderr.txt"

#: Per poll, the stderr tail is read (and logged) for at most this many of the nodes being rebooted.
MAX_REBOOT_TAILS = 3


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


def core_quota_errors(pool: Mapping[str, Any]) -> list[str]:
    """The pool's resize errors that say a core quota is used up (``AccountCoreQuotaReached``,
    ``AccountLowPriorityCoreQuotaReached``...), as text; empty when there are none."""
    errors = [e for e in (pool.get("resizeErrors") or []) if isinstance(e, Mapping)]
    return [_resize_error_text(e) for e in errors if str(e.get("code") or "").endswith("CoreQuotaReached")]


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
    """How many nodes are in each state, e.g. ``2 idle, 1 starting``."""
    states: dict[str, int] = {}
    for node in nodes:
        state = lowered(node.get("state")) or "unknown"
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
    allocation = lowered(pool.get("allocationState"))
    steady = allocation == "steady"
    usable = sum(1 for n in nodes if lowered(n.get("state")) in USABLE_NODE_STATES)
    start_failed = [str(n.get("id")) for n in nodes if lowered(n.get("state")) == "starttaskfailed"]
    unusable = [str(n.get("id")) for n in nodes if lowered(n.get("state")) == "unusable"]
    coming = sum(
        1
        for n in nodes
        if lowered(n.get("state")) not in USABLE_NODE_STATES | BAD_NODE_STATES | GONE_NODE_STATES
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
    if lowered(pool.get("state")) == "deleting":
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
    transient = [e for e in errors if lowered(e.get("code")) in TRANSIENT_RESIZE_ERRORS]
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
    failed = [n for n in nodes if lowered(n.get("state")) == "starttaskfailed"]
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
    quota_retry: CoreQuotaRetry | None = None,
) -> PoolVerdict:
    """One poll of a pool: read it and its nodes, decide, and on a start-task failure read its stderr.

    With ``reboots``, nodes whose start task failed are rebooted (up to its per-node budget) while that
    can still make the pool ready; the wait fails only once their budget is spent. With
    ``quota_retry``, a pool that failed on the core quota is resized again on its backoff, and the
    wait fails only once its bound has passed.
    """
    pool = await io.get_pool(pool_id)
    if pool is None:
        return evaluate_pool(None, [], min_usable_nodes, pool_id=pool_id)
    nodes = await io.list_nodes(pool_id, select=NODE_SELECT)
    verdict = evaluate_pool(pool, nodes, min_usable_nodes, pool_id=pool_id)
    if quota_retry is not None and verdict.status == "failed" and (quota_errors := core_quota_errors(pool)):
        return await _retry_on_core_quota(io, pool_id, verdict, quota_retry, "; ".join(quota_errors))
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


async def _retry_on_core_quota(
    io: BatchIO, pool_id: str, verdict: PoolVerdict, retry: CoreQuotaRetry, errors: str
) -> PoolVerdict:
    """The verdict on a pool that failed on the core quota, with ``retry`` deciding what comes next."""
    now = time.time()
    action = retry.on_quota_failure(now, steady=verdict.allocation_state == "steady")
    if action == "expired":
        verdict.message += (
            f" The quota was still used up after waiting {retry.waited(now):.0f}s and {retry.resizes} "
            "resize(s) (quota_wait_timeout)."
        )
        return verdict
    if action == "resize":
        await io.resize_pool(pool_id, retry.dedicated_nodes, retry.low_priority_nodes)
        message = (
            f"Resized pool {pool_id!r} again (resize {retry.resizes}) after the core quota was used up "
            f"({errors}); waiting for its nodes."
        )
    else:
        message = (
            f"Waiting for the core quota to free up before resizing pool {pool_id!r} again "
            f"(resize {retry.resizes + 1}, at most {retry.wait.timeout:.0f}s in all): {errors}"
        )
    return replace(verdict, status="waiting", message=message)


def check_pool_blocking(
    hook: Any,
    pool_id: str,
    min_usable_nodes: int | None,
    reboots: StartTaskReboots,
    log: Any,
    quota_retry: CoreQuotaRetry | None = None,
) -> PoolVerdict:
    """One poll of a pool from blocking code (an operator's wait, a sensor's poke), as
    :func:`check_pool` over the hook; the reboots it made are logged as warnings on ``log``."""
    verdict = run_sync(
        check_pool(SyncBatchIO(hook), pool_id, min_usable_nodes, reboots=reboots, quota_retry=quota_retry)
    )
    for line in verdict.reboot_messages:
        log.warning("%s", line)
    return verdict
