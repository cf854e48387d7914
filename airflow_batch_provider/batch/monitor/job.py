"""Whether a job's tasks are done: task counts, failures and their report, a job that ended early, and
the check the job sensor and trigger share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.batch.monitor.io import BatchIO
from airflow_batch_provider.batch.monitor.states import job_has_ended, lowered

TASK_SELECT = ["id", "state", "executionInfo", "nodeInfo"]

#: While a job's counts do not move, the poll after the first unchanged one reads the job's state
#: instead of the counts, and so does every N-th poll after that.
JOB_CHECK_EVERY = 10

JOB_SELECT = ["id", "state", "executionInfo"]


def job_check_due(stalled_polls: int) -> bool:
    """Whether the next poll reads the job instead of its tasks, after ``stalled_polls`` unchanged polls."""
    return stalled_polls == 1 or (stalled_polls > 0 and stalled_polls % JOB_CHECK_EVERY == 0)


def job_check_due_by_clock(now: float, poll_interval: float) -> bool:
    """For polls that remember nothing (reschedule-mode pokes): whether this one reads the job too.

    Time is cut into slots of one poll interval, and the first slot of every ``JOB_CHECK_EVERY`` is
    due, so roughly one poke in ``JOB_CHECK_EVERY`` reads the job, with no state kept between pokes.
    """
    return int(now // max(float(poll_interval), 1.0)) % JOB_CHECK_EVERY == 0


def prefix_filter(prefix: str) -> str:
    """OData filter for tasks whose id starts with ``prefix``."""
    escaped = prefix.replace("'", "''")
    return f"startswith(id,'{escaped}')"


def is_failed_task(task: Mapping[str, Any]) -> bool:
    """Whether a completed task failed (a failure result or a failure info)."""
    info = task.get("executionInfo") or {}
    return lowered(task.get("state")) == "completed" and (
        lowered(info.get("result")) == "failure" or bool(info.get("failureInfo"))
    )


def counts_from_tasks(tasks: Sequence[Mapping[str, Any]]) -> TaskCounts:
    """Task counts computed from listed tasks (``preparing`` counts as running, as the service does)."""
    active = running = completed = succeeded = failed = 0
    for task in tasks:
        state = lowered(task.get("state"))
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


def requeued_tasks(tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The tasks requeued at least once, most requeued first: id, requeue count, and the node the task
    last ran on (while it waits to run again, the node that was preempted or lost)."""
    requeued: list[dict[str, Any]] = [
        {
            "id": task.get("id"),
            "requeue_count": int((task.get("executionInfo") or {}).get("requeueCount") or 0),
            "node_id": (task.get("nodeInfo") or {}).get("nodeId"),
            "waiting_again": lowered(task.get("state")) == "active",
        }
        for task in tasks
    ]
    requeued = [task for task in requeued if task["requeue_count"] > 0]
    return sorted(requeued, key=lambda task: (-int(task["requeue_count"]), str(task["id"])))


def requeue_note(requeued: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    """``task a requeued 2x (node n1), ...``: which tasks were requeued and where they last ran."""
    shown = [
        f"{task['id']} requeued {task['requeue_count']}x"
        + (
            f" (preempted node {task['node_id']})"
            if task.get("waiting_again") and task.get("node_id")
            else ""
        )
        for task in requeued[:limit]
    ]
    more = f", and {len(requeued) - limit} more" if len(requeued) > limit else ""
    return ", ".join(shown) + more


def progress_line(job_id: str, prefix: str | None, counts: TaskCounts) -> str:
    """The progress line logged whenever the counts change."""
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
    state = lowered(job.get("state"))
    reason = (job.get("executionInfo") or {}).get("terminateReason")
    if state in ("completed", "terminating") and reason and lowered(reason) != "alltaskscomplete":
        if lowered(reason) == "taskfailed":
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
    if lowered(reason) != "taskfailed":
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
    #: For ``failed``: ``tasks_failed`` (tasks completed with failures), ``job_ended`` (tasks left) or
    #: ``requeue_budget`` (a task requeued more than ``max_task_requeues`` times).
    reason: str | None = None
    #: Tasks requeued so far (Spot preemption, node loss), from :func:`requeued_tasks`.
    requeued: list[dict[str, Any]] = field(default_factory=list)

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
            "requeued_tasks": self.requeued,
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
    state = lowered(job.get("state"))
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


async def _tasks_failed_check(
    io: BatchIO,
    job_id: str,
    job: dict[str, Any] | None,
    prefix: str | None,
    counts: TaskCounts,
    failed_raw: list[dict[str, Any]],
    changed: bool,
    max_failed_tasks: int,
    max_failure_logs: int,
    tail_bytes: int,
) -> JobCheck:
    """The verdict on a job whose tasks all completed, some failed: the failures, and why the job ended."""
    details = await _failed_details(io, job_id, failed_raw, max_failed_tasks, max_failure_logs, tail_bytes)
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
    max_task_requeues: int | None = None,
) -> JobCheck:
    """One poll: are all tasks (or all under the prefix) complete, and did any fail?

    A poll that finds the work still running makes exactly one request. Without a prefix that is the
    job's ``taskcounts``; with a prefix, one filtered task list with a narrow ``$select``. When the
    counts stop moving, the next poll (and every ``JOB_CHECK_EVERY``-th after it) reads the job's state
    instead, so a job that ended early (max wall clock, manual terminate) with tasks that will never
    run ends the wait rather than hanging. The final poll reads more: completion is confirmed with a
    filtered list, because counts are eventually consistent, and failed tasks get their details.
    ``force_job_check`` reads the job's state as well, for a poll with no memory of earlier ones.

    Requeued tasks (Spot preemption, node loss) are reported with the node they last ran on; with
    ``max_task_requeues`` a task requeued more often fails the check (``reason="requeue_budget"``).
    Without a prefix that needs one more list per running poll (the tasks not completed yet).
    """
    prefix = task_id_prefix or None
    requeued: list[dict[str, Any]] = []
    try:
        job: dict[str, Any] | None = None
        if force_job_check or (last_counts is not None and job_check_due(stalled_polls)):
            job = await io.get_job(job_id, select=JOB_SELECT)
            if job is None:
                return JobCheck("error", job_id, prefix, last_counts or TaskCounts(), _missing_job(job_id))
            if not job_has_ended(job) and last_counts is not None:
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
            requeued = requeued_tasks(tasks)
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
                return await _tasks_failed_check(
                    io,
                    job_id,
                    job,
                    prefix,
                    counts,
                    failed_raw,
                    changed,
                    max_failed_tasks,
                    max_failure_logs,
                    tail_bytes,
                )
            return JobCheck(
                "success",
                job_id,
                prefix,
                counts,
                progress_line(job_id, prefix, counts),
                changed=changed,
                requeued=requeued,
            )
        if job is not None and job_has_ended(job):
            return await _job_ended_check(
                io, job, prefix, counts, failed_raw, changed, max_failed_tasks, max_failure_logs, tail_bytes
            )
        if not prefix and max_task_requeues is not None:
            requeued = requeued_tasks(
                await io.list_tasks(job_id, filter="state ne 'completed'", select=TASK_SELECT)
            )
        line = progress_line(job_id, prefix, counts)
        if requeued:
            total = sum(task["requeue_count"] for task in requeued)
            line += f"; {total} requeue(s) so far (Spot preemption or node loss): {requeue_note(requeued)}"
        over = [
            task
            for task in requeued
            if max_task_requeues is not None and task["requeue_count"] > max_task_requeues
        ]
        if over:
            message = (
                f"{len(over)} task(s) were requeued more than max_task_requeues={max_task_requeues} "
                f"times (Spot preemption or node loss): {requeue_note(over)}. Use dedicated nodes (or "
                "the spot_with_dedicated_fallback autoscale formula), or raise max_task_requeues."
            )
            return JobCheck(
                "failed",
                job_id,
                prefix,
                counts,
                message,
                changed=changed,
                reason="requeue_budget",
                requeued=requeued,
            )
        stalled = 0 if changed else stalled_polls + 1
        return JobCheck(
            "running", job_id, prefix, counts, line, changed=changed, stalled_polls=stalled, requeued=requeued
        )
    except ResourceNotFoundError:
        return JobCheck("error", job_id, prefix, last_counts or TaskCounts(), _missing_job(job_id))
