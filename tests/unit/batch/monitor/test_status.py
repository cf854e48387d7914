"""How pools and jobs are judged: ready, waiting or failed, and what the user is told."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from airflow_batch_provider.batch.monitor.counts import TaskCounts
from airflow_batch_provider.batch.monitor.io import run_sync
from airflow_batch_provider.batch.monitor.job import (
    check_job,
    counts_from_tasks,
    job_check_due_by_clock,
    prefix_filter,
)
from airflow_batch_provider.batch.monitor.pool import (
    StartTaskReboots,
    check_pool,
    evaluate_pool,
    is_fatal_resize_error,
)


def _pool(**kw: Any) -> dict[str, Any]:
    base = {"id": "p1", "state": "active", "allocationState": "steady", "targetDedicatedNodes": 2}
    base.update(kw)
    return base


def _nodes(*states: str) -> list[dict[str, Any]]:
    return [{"id": f"n{i}", "state": s} for i, s in enumerate(states)]


def test_steady_pool_with_all_nodes_usable_is_ready() -> None:
    verdict = evaluate_pool(_pool(), _nodes("idle", "running"))
    assert verdict.status == "ready" and verdict.usable_nodes == 2


def test_resizing_pool_waits() -> None:
    assert evaluate_pool(_pool(allocationState="resizing"), _nodes("creating")).status == "waiting"


def test_nodes_still_starting_wait() -> None:
    assert evaluate_pool(_pool(), _nodes("idle", "waitingforstarttask")).status == "waiting"


def test_min_usable_nodes_lowers_the_bar() -> None:
    assert evaluate_pool(_pool(), _nodes("idle", "waitingforstarttask"), 1).status == "ready"


def test_quota_error_fails_fast_with_the_service_message() -> None:
    pool = _pool(
        allocationState="resizing",
        resizeErrors=[{"code": "AccountCoreQuotaReached", "message": "The core quota of 10 is reached."}],
    )
    verdict = evaluate_pool(pool, [])
    assert verdict.status == "failed"
    assert "AccountCoreQuotaReached: The core quota of 10 is reached." in verdict.message


@pytest.mark.parametrize(
    ("code", "fatal"),
    [
        ("AccountCoreQuotaReached", True),
        ("AccountLowPriorityCoreQuotaReached", True),
        ("VMSizeNotSupported", True),
        ("InvalidImageReference", True),
        ("ImageNotFound", True),
        ("AllocationTimedout", False),
        ("SomethingNew", False),
    ],
)
def test_resize_error_classification(code: str, fatal: bool) -> None:
    assert is_fatal_resize_error(code) is fatal


def test_allocation_timeout_on_autoscale_keeps_waiting() -> None:
    pool = _pool(
        enableAutoScale=True,
        targetDedicatedNodes=0,
        resizeErrors=[{"code": "AllocationTimedout", "message": "timed out"}],
    )
    verdict = evaluate_pool(pool, [], 2)
    assert verdict.status == "waiting" and "AllocationTimedout" in verdict.message


def test_allocation_timeout_on_fixed_pool_fails_when_short() -> None:
    pool = _pool(resizeErrors=[{"code": "AllocationTimedout", "message": "timed out"}])
    verdict = evaluate_pool(pool, _nodes("idle"))
    assert verdict.status == "failed" and "1 usable node(s) but 2 are required" in verdict.message


def test_stale_resize_error_on_a_ready_pool_is_ignored() -> None:
    pool = _pool(resizeErrors=[{"code": "AccountCoreQuotaReached", "message": "old"}])
    assert evaluate_pool(pool, _nodes("idle", "idle")).status == "ready"


def test_all_start_tasks_failed_fails() -> None:
    verdict = evaluate_pool(_pool(), _nodes("starttaskfailed", "starttaskfailed"))
    assert verdict.status == "failed" and "start task failed on 2 node(s)" in verdict.message
    assert verdict.start_task_failed_nodes == ["n0", "n1"]


def test_unusable_nodes_are_reported() -> None:
    nodes = [{"id": "n0", "state": "unusable", "errors": [{"code": "DiskFull", "message": "disk"}]}]
    verdict = evaluate_pool(_pool(targetDedicatedNodes=1), nodes)
    assert verdict.status == "failed" and "n0: DiskFull: disk" in verdict.message


def test_pool_without_nodes_or_autoscale_fails_instead_of_hanging() -> None:
    verdict = evaluate_pool(_pool(targetDedicatedNodes=0), [], 1)
    assert verdict.status == "failed" and "0 usable node(s) but 1 are required" in verdict.message


def test_missing_pool_fails() -> None:
    assert "does not exist" in evaluate_pool(None, [], pool_id="p9").message


class FakeIO:
    """A scripted Batch account."""

    def __init__(self) -> None:
        self.pool: dict[str, Any] | None = _pool()
        self.nodes: list[dict[str, Any]] = []
        self.files: dict[tuple[str, str], str] = {}
        self.counts = TaskCounts()
        self.tasks: list[dict[str, Any]] = []
        self.job: dict[str, Any] | None = {"id": "j", "state": "active"}
        self.calls: list[str] = []
        #: What a reboot request raises (``None``: accepted, and the node shows ``rebooting``).
        self.reboot_error: Exception | None = None
        #: Accepted reboots leave the listed state unchanged, as a listing lagging behind would.
        self.listing_lags = False

    async def get_pool(self, pool_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        self.calls.append("get_pool")
        return self.pool

    async def list_nodes(self, pool_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        self.calls.append("list_nodes")
        return self.nodes

    async def read_node_file_tail(self, pool_id: str, node_id: str, path: str, max_bytes: int) -> str | None:
        self.calls.append(f"node_file:{node_id}:{path}")
        return self.files.get((node_id, path))

    async def reboot_node(self, pool_id: str, node_id: str) -> None:
        self.calls.append(f"reboot:{node_id}")
        if self.reboot_error is not None:
            raise self.reboot_error
        if not self.listing_lags:
            node = next(n for n in self.nodes if n["id"] == node_id)
            node["state"] = "rebooting"

    async def get_job(self, job_id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        self.calls.append("get_job")
        return self.job

    async def get_task_counts(self, job_id: str) -> TaskCounts:
        self.calls.append("counts")
        if self.job is None:
            raise ResourceNotFoundError("nope")
        return self.counts

    async def list_tasks(
        self,
        job_id: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        self.calls.append(f"list:{filter}")
        tasks = self.tasks
        if filter == "state ne 'completed'":
            tasks = [t for t in tasks if t["state"] != "completed"]
        elif filter and filter.startswith("executionInfo/result"):
            tasks = [t for t in tasks if (t.get("executionInfo") or {}).get("result") == "failure"]
        elif filter and filter.startswith("startswith"):
            prefix = filter.split("'")[1]
            tasks = [t for t in tasks if t["id"].startswith(prefix)]
        return tasks[:limit] if limit else tasks

    async def read_task_file_tail(self, job_id: str, task_id: str, path: str, max_bytes: int) -> str | None:
        self.calls.append(f"task_file:{task_id}")
        return self.files.get((task_id, path))


def _done(task_id: str, exit_code: int = 0) -> dict[str, Any]:
    info: dict[str, Any] = {"exitCode": exit_code, "result": "success" if exit_code == 0 else "failure"}
    if exit_code:
        info["failureInfo"] = {"category": "usererror", "code": "FailureExitCode", "message": "non-zero exit"}
    return {"id": task_id, "state": "completed", "executionInfo": info}


def test_start_task_failure_includes_stderr_tail() -> None:
    io = FakeIO()
    io.nodes = [{"id": "n0", "state": "starttaskfailed", "startTaskInfo": {"exitCode": 3}}]
    io.pool = _pool(targetDedicatedNodes=1)
    io.files[("n0", "startup/stderr.txt")] = "pip: command not found\n"
    verdict = run_sync(check_pool(io, "p1"))
    assert verdict.status == "failed"
    assert "exit code 3" in verdict.message and "pip: command not found" in verdict.message


def test_counts_mode_uses_one_request_per_poll_while_running() -> None:
    io = FakeIO()
    io.counts = TaskCounts(active=5, running=3, completed=2, succeeded=2)
    check = asyncio.run(check_job(io, "j"))
    assert check.status == "running" and io.calls == ["counts"]
    assert "2/10 completed" in check.message


def test_counts_mode_confirms_completion_with_a_list() -> None:
    io = FakeIO()
    io.counts = TaskCounts(completed=2, succeeded=2)
    io.tasks = [_done("a"), {"id": "b", "state": "running"}]  # counts lag behind
    check = asyncio.run(check_job(io, "j", last_counts=TaskCounts()))
    assert check.status == "running"
    io.tasks = [_done("a"), _done("b")]
    check = asyncio.run(check_job(io, "j"))
    assert check.status == "success"


def test_failures_report_ids_exit_codes_and_stderr() -> None:
    io = FakeIO()
    io.counts = TaskCounts(completed=3, succeeded=1, failed=2)
    io.tasks = [_done("ok"), _done("bad-2", 2), _done("bad-1", 1)]
    io.files[("bad-1", "stderr.txt")] = "Traceback...\nValueError: boom\n"
    check = asyncio.run(check_job(io, "j", max_failure_logs=1))
    assert check.status == "failed" and check.failed_count == 2 and check.reason == "tasks_failed"
    assert [t["id"] for t in check.failed_tasks] == ["bad-1", "bad-2"]
    assert "bad-1: exit code 1; FailureExitCode: non-zero exit" in check.message
    assert "ValueError: boom" in check.message
    assert io.calls.count("task_file:bad-1") == 1 and "task_file:bad-2" not in io.calls


def test_prefix_mode_watches_only_its_own_tasks() -> None:
    io = FakeIO()
    io.tasks = [_done("runA-1"), _done("runB-1", 1), {"id": "runB-2", "state": "active"}]
    check = asyncio.run(check_job(io, "j", "runA-"))
    assert check.status == "success" and check.counts.total == 1
    assert io.calls == ["list:startswith(id,'runA-')"]


def test_job_terminated_with_pending_tasks_ends_the_wait() -> None:
    io = FakeIO()
    io.counts = TaskCounts(active=4)
    last, stalled, polls = None, 0, 0
    check = None
    while polls < 5:
        polls += 1
        check = asyncio.run(check_job(io, "j", last_counts=last, stalled_polls=stalled))
        if check.status != "running":
            break
        last, stalled = check.counts, check.stalled_polls
        io.job = {
            "id": "j",
            "state": "completed",
            "executionInfo": {"terminateReason": "MaxWallClockTimeExpiry"},
        }
    assert check is not None and check.status == "failed"
    assert polls == 3  # counts, counts (unchanged), then the job: ended
    assert "MaxWallClockTimeExpiry" in check.message and "4 task(s) never completed" in check.message
    assert check.to_event()["reason"] == "job_ended"


def test_missing_job_is_an_error() -> None:
    io = FakeIO()
    io.job = None
    check = asyncio.run(check_job(io, "j"))
    assert check.status == "error" and "does not exist" in check.message


def test_expected_count_keeps_waiting_for_late_tasks() -> None:
    io = FakeIO()
    io.counts = TaskCounts(completed=2, succeeded=2)
    io.tasks = [_done("a"), _done("b")]
    assert asyncio.run(check_job(io, "j", expected_task_count=3)).status == "running"


def test_counts_from_tasks_and_prefix_filter_quoting() -> None:
    counts = counts_from_tasks([_done("a"), _done("b", 1), {"id": "c", "state": "preparing"}])
    assert counts == TaskCounts(active=0, running=1, completed=2, succeeded=1, failed=1)
    assert prefix_filter("o'k") == "startswith(id,'o''k')"


def test_run_sync_works_inside_a_running_loop() -> None:
    async def inner() -> int:
        async def value() -> int:
            return 7

        return run_sync(value())

    assert asyncio.run(inner()) == 7


def test_prefix_mode_shows_requeues_of_preempted_tasks() -> None:
    io = FakeIO()
    io.tasks = [{"id": "p-1", "state": "active", "executionInfo": {"requeueCount": 2}}, _done("p-2")]
    check = asyncio.run(check_job(io, "j", "p-"))
    assert check.status == "running" and "2 requeue(s) so far" in check.message


def test_a_running_job_costs_exactly_one_request_per_poll() -> None:
    io = FakeIO()
    io.counts = TaskCounts(running=5)
    last, stalled, per_poll, read = None, 0, [], []
    for _ in range(22):
        before = len(io.calls)
        check = asyncio.run(check_job(io, "j", last_counts=last, stalled_polls=stalled))
        assert check.status == "running" and check.counts == TaskCounts(running=5)
        per_poll.append(len(io.calls) - before)
        read.append(io.calls[-1])
        last, stalled = check.counts, check.stalled_polls
    assert per_poll == [1] * 22
    # The counts stop moving at poll 2; poll 3 reads the job instead, then every 10th poll does.
    assert [index + 1 for index, call in enumerate(read) if call == "get_job"] == [3, 12, 22]


def test_counts_moving_again_reset_the_job_check_schedule() -> None:
    io = FakeIO()
    io.counts = TaskCounts(running=5)
    last, stalled = None, 0
    for running in (5, 5, 4, 4):  # the job is read on the third poll only: the fourth sees movement
        io.counts = TaskCounts(running=running, completed=5 - running, succeeded=5 - running)
        check = asyncio.run(check_job(io, "j", last_counts=last, stalled_polls=stalled))
        last, stalled = check.counts, check.stalled_polls
    assert io.calls == ["counts", "counts", "get_job", "counts"]
    assert check.counts == TaskCounts(running=4, completed=1, succeeded=1) and check.changed


def test_memoryless_pokes_read_the_job_about_once_in_ten_by_the_clock() -> None:
    interval = 30.0
    due = [job_check_due_by_clock(start + 0.5, interval) for start in range(0, 600, 30)]
    assert due.count(True) == 2 and due[0] and due[10]  # slots 0 and 10 of 20 pokes
    # A poll interval under a second counts as one second, so a zero interval cannot divide by zero.
    assert job_check_due_by_clock(0.0, 0) and not job_check_due_by_clock(1.0, 0)


def test_forced_job_check_for_memoryless_reschedule_pokes() -> None:
    io = FakeIO()
    io.counts = TaskCounts(active=1)
    io.job = {"id": "j", "state": "completed", "executionInfo": {"terminateReason": "UserTerminate"}}
    check = asyncio.run(check_job(io, "j", force_job_check=True))
    assert check.status == "failed" and check.reason == "job_ended"


# -- rebooting nodes whose start task failed ---------------------------------------------------------


def _failed_node(node_id: str = "n0", boot: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "id": node_id,
        "state": "starttaskfailed",
        "lastBootTime": boot,
        "startTaskInfo": {"exitCode": 3, "endTime": boot.replace("00:00Z", "00:09Z")},
    }


def _reboot_io(*nodes: dict[str, Any]) -> FakeIO:
    io = FakeIO()
    io.pool = _pool(targetDedicatedNodes=len(nodes))
    io.nodes = list(nodes)
    for node in nodes:
        io.files[(node["id"], "startup/stderr.txt")] = "E: dpkg lock held\n"
    return io


def _reboots(io: FakeIO) -> list[str]:
    return [call for call in io.calls if call.startswith("reboot:")]


def test_failed_start_task_is_rebooted_and_the_wait_goes_on() -> None:
    io = _reboot_io(_failed_node())
    reboots = StartTaskReboots(2)
    verdict = run_sync(check_pool(io, "p1", reboots=reboots))
    assert verdict.status == "waiting" and _reboots(io) == ["reboot:n0"]
    assert reboots.counts == {"n0": 1}
    (line,) = verdict.reboot_messages
    assert line.startswith(
        "Rebooting node n0 of pool 'p1' (reboot 1 of 2): its start task failed (exit code 3)"
    )
    assert line.endswith("--- tail of startup/stderr.txt on n0 ---\nE: dpkg lock held")
    assert verdict.message.startswith("Rebooted 1 node(s) whose start task failed. Waiting")


def test_spent_budget_fails_naming_the_reboots_and_the_stderr() -> None:
    io = _reboot_io(_failed_node())
    reboots = StartTaskReboots(2, counts={"n0": 2})
    verdict = run_sync(check_pool(io, "p1", reboots=reboots))
    assert verdict.status == "failed" and not _reboots(io) and not verdict.reboot_messages
    assert (
        "2 reboot(s) were tried before giving up (max_start_task_reboots=2 per node; reboots by node: n0 2)"
        in (verdict.message)
    )
    assert "exit code 3" in verdict.message and "E: dpkg lock held" in verdict.message


def test_no_budget_is_exactly_the_old_behaviour() -> None:
    without = run_sync(check_pool(_reboot_io(_failed_node()), "p1"))
    io = _reboot_io(_failed_node())
    with_zero = run_sync(check_pool(io, "p1", reboots=StartTaskReboots(0)))
    assert with_zero == without and with_zero.status == "failed" and not _reboots(io)


def test_a_lagging_listing_gets_one_poll_before_the_failure_counts_again() -> None:
    io = _reboot_io(_failed_node())
    io.listing_lags = True
    reboots = StartTaskReboots(1)
    assert run_sync(check_pool(io, "p1", reboots=reboots)).status == "waiting"
    second = run_sync(check_pool(io, "p1", reboots=reboots))  # same failed start still listed
    assert second.status == "waiting" and "1 rebooting" in second.message
    third = run_sync(check_pool(io, "p1", reboots=reboots))  # still the same: the reboot did not help
    assert third.status == "failed" and "1 reboot(s) were tried" in third.message
    assert _reboots(io) == ["reboot:n0"]


def test_a_new_failed_start_after_a_reboot_uses_the_next_reboot() -> None:
    io = _reboot_io(_failed_node())
    reboots = StartTaskReboots(2)
    run_sync(check_pool(io, "p1", reboots=reboots))
    io.nodes = [_failed_node(boot="2026-01-01T00:05:00Z")]  # booted again, failed again
    verdict = run_sync(check_pool(io, "p1", reboots=reboots))
    assert verdict.status == "waiting" and "(reboot 2 of 2)" in verdict.reboot_messages[0]
    assert reboots.counts == {"n0": 2}


def test_no_reboot_when_the_pool_is_ready_without_the_node() -> None:
    io = _reboot_io(_failed_node(), {"id": "n1", "state": "idle"})
    verdict = run_sync(check_pool(io, "p1", 1, reboots=StartTaskReboots(3)))
    assert verdict.status == "ready" and not _reboots(io)


def test_no_reboot_when_the_pool_would_fail_anyway() -> None:
    io = _reboot_io(_failed_node(), {"id": "n1", "state": "unusable"})
    verdict = run_sync(check_pool(io, "p1", reboots=StartTaskReboots(3)))
    assert verdict.status == "failed" and not _reboots(io)
    assert "No node was rebooted (max_start_task_reboots=3)" in verdict.message


def test_stderr_tails_are_read_for_the_first_few_rebooted_nodes_only() -> None:
    io = _reboot_io(*(_failed_node(f"n{i}") for i in range(5)))
    verdict = run_sync(check_pool(io, "p1", reboots=StartTaskReboots(1)))
    assert verdict.status == "waiting" and len(_reboots(io)) == 5
    assert len([call for call in io.calls if call.startswith("node_file:")]) == 3
    assert sum("tail of startup/stderr.txt" in line for line in verdict.reboot_messages) == 3


def _conflict(code: str) -> ResourceExistsError:
    error = ResourceExistsError("conflict")
    error.error = SimpleNamespace(code=code, message=code, details=[])  # type: ignore[assignment]
    return error


@pytest.mark.parametrize(
    ("error", "counted"),
    [
        (_conflict("NodeBeingRebooted"), True),  # most likely our own retried request
        (_conflict("OperationNotValidOnNode"), False),
        (ResourceNotFoundError("gone"), False),
    ],
)
def test_a_refused_reboot_is_counted_only_when_the_node_is_rebooting(error: Exception, counted: bool) -> None:
    io = _reboot_io(_failed_node())
    io.reboot_error = error
    reboots = StartTaskReboots(1)
    verdict = run_sync(check_pool(io, "p1", reboots=reboots))
    assert verdict.status == "waiting"
    assert reboots.counts == ({"n0": 1} if counted else {})
    assert len(verdict.reboot_messages) == (1 if counted else 0)


def test_an_unexpected_reboot_error_propagates() -> None:
    io = _reboot_io(_failed_node())
    io.reboot_error = RuntimeError("boom")
    with pytest.raises(RuntimeError):
        run_sync(check_pool(io, "p1", reboots=StartTaskReboots(1)))


def test_reboot_counts_survive_json() -> None:
    reboots = StartTaskReboots(2, counts={"n0": 1}, rebooted_for={"n0": "a|b"})
    again = StartTaskReboots.from_json(2, reboots.to_json())
    assert again == reboots and StartTaskReboots.from_json(1, None) == StartTaskReboots(1)
