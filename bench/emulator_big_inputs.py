"""``emulator_big_inputs``: get-task latency while the emulator handles the largest inputs a task may carry.

Two phases, each probed by a client reading one task in a loop: a task with a 1 MB command line
starts and runs (the command line is split into arguments), then a task waits on a dependency range
of 3 million task ids while other tasks of its job keep the scheduler busy (every pass checks it).
No baseline: the targets are absolute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.batch_setup import pool_spec, wait_for_idle_nodes
from bench.harness import Benchmark, Measurement, Target, median, percentile

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from bench.environment import BenchEnvironment

NAME = "emulator_big_inputs"
MAX_P95_GET_TASK_S = 0.050
POOL_ID = "bench-big-inputs-pool"
#: Words of a long command line: exec takes at most 128 KiB per argument.
_WORD = "a" * 99_999


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    command_line_bytes: int
    range_ids: int
    busy_tasks: int
    probe_s: float


FULL = Sizes(command_line_bytes=1_000_000, range_ids=3_000_000, busy_tasks=200, probe_s=5.0)
SMOKE = Sizes(command_line_bytes=200_000, range_ids=300_000, busy_tasks=20, probe_s=1.0)


def _long_command_line(size: int) -> str:
    """``/bin/true`` with words of 100,000 characters, ``size`` bytes in all."""
    words, length = ["/bin/true"], len("/bin/true")
    while length + 1 + len(_WORD) <= size:
        words.append(_WORD)
        length += 1 + len(_WORD)
    words.append("a" * max(0, size - length - 1))
    return " ".join(words)


def _probe_while(client: BatchClient, job_id: str, task_id: str, work: Callable[[], None]) -> list[float]:
    """Get-task latencies measured while ``work`` runs (and for as long as it takes)."""
    latencies: list[float] = []
    stop = threading.Event()

    def read_repeatedly() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            client.get_task(job_id, task_id)
            latencies.append(time.perf_counter() - start)

    reader = threading.Thread(target=read_repeatedly, name="get-task-probe", daemon=True)
    reader.start()
    try:
        work()
    finally:
        stop.set()
        reader.join()
    return latencies


def _wait_completed(client: BatchClient, job_id: str, task_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get_task(job_id, task_id)
        if task.state == "completed":
            result = task.execution_info.result if task.execution_info else None
            return str(getattr(result, "value", result))
        time.sleep(0.02)
    raise RuntimeError(f"task {task_id} did not complete within {timeout:g}s")


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    from azure.batch import models as m

    sizes = SMOKE if smoke else FULL
    admin = env.batch_hook()
    admin.create_pool(pool_spec(POOL_ID, 1, 4))
    wait_for_idle_nodes(admin, POOL_ID, 1)
    client = env.raw_batch_client()
    job_id = "big-inputs"
    admin.create_job({"id": job_id, "poolInfo": {"poolId": POOL_ID}, "usesTaskDependencies": True})
    client.create_task(job_id, m.BatchTaskCreateOptions(id="probe", command_line="/bin/true"))
    _wait_completed(client, job_id, "probe", 30)

    # 1. A task with a command line at the service's limit starts and runs.
    command_line = _long_command_line(sizes.command_line_bytes)
    outcome: dict[str, str] = {}

    def start_long_task() -> None:
        started = time.perf_counter()
        client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line=command_line))
        outcome["result"] = _wait_completed(client, job_id, "long", 120)
        outcome["seconds"] = str(time.perf_counter() - started)
        time.sleep(max(0.0, sizes.probe_s - (time.perf_counter() - started)))

    long_command = _probe_while(client, job_id, "probe", start_long_task)

    # 2. A task waits on a range of millions of ids while the job's other tasks keep the scheduler busy.
    waiter = m.BatchTaskCreateOptions(
        id="waiter",
        command_line="/bin/true",
        depends_on=m.BatchTaskDependencies(task_id_ranges=[m.BatchTaskIdRange(start=1, end=sizes.range_ids)]),
    )
    # Ids 1, 2, ...: in the range, so every pass counts them towards it (never all of it).
    busy = [{"id": str(number), "commandLine": "/bin/true"} for number in range(1, sizes.busy_tasks + 1)]

    def keep_scheduler_busy() -> None:
        client.create_task(job_id, waiter)
        started = time.perf_counter()
        admin.add_tasks(job_id, busy)
        time.sleep(max(0.0, sizes.probe_s - (time.perf_counter() - started)))

    dependency_range = _probe_while(client, job_id, "probe", keep_scheduler_busy)
    counts = admin.get_task_counts(job_id)
    state = client.get_task(job_id, "waiter").state
    waiter_state = str(getattr(state, "value", state))
    client.close()
    admin.delete_job(job_id)
    admin.delete_pool(POOL_ID)
    if outcome.get("result") != "success":
        raise RuntimeError(f"the task with a long command line did not succeed: {outcome}")
    if waiter_state != "active":
        raise RuntimeError(f"the task waiting on a range of {sizes.range_ids} ids is {waiter_state}")
    return Measurement(
        sizes={
            "command_line_bytes": sizes.command_line_bytes,
            "range_ids": sizes.range_ids,
            "busy_tasks": sizes.busy_tasks,
        },
        seconds={
            "get_task_p95_long_command_line": percentile(long_command, 0.95),
            "get_task_max_long_command_line": max(long_command, default=float("nan")),
            "get_task_median_long_command_line": median(long_command),
            "long_command_line_task_completed": float(outcome["seconds"]),
            "get_task_p95_dependency_range": percentile(dependency_range, 0.95),
            "get_task_max_dependency_range": max(dependency_range, default=float("nan")),
            "get_task_median_dependency_range": median(dependency_range),
        },
        requests={
            "probes_long_command_line": len(long_command),
            "probes_dependency_range": len(dependency_range),
        },
        metrics={"busy_tasks_completed": counts.completed},
        notes=[
            f"Phase 1: a task whose command line is {sizes.command_line_bytes:,} bytes (/bin/true and words "
            "of 100,000 characters) is added, starts and completes; a raw SDK client reads another task "
            f"in a loop meanwhile (at least {sizes.probe_s:g} s).",
            f"Phase 2: a task depending on the task id range 1-{sizes.range_ids:,} is added, then "
            f"{sizes.busy_tasks} trivial tasks to the same job: each add and completion is a scheduling "
            f"pass that checks the range. The same client reads the other task for {sizes.probe_s:g} s.",
        ],
    )


BENCHMARK = Benchmark(
    name=NAME,
    what="Get-task latency while a 1 MB command line starts and while a 3-million-id dependency range waits.",
    baseline="None (absolute targets).",
    method="A raw SDK client reads one task in a loop during each phase; latencies measured at the client.",
    targets=(
        Target(
            "seconds.get_task_p95_long_command_line",
            "<",
            MAX_P95_GET_TASK_S,
            f"p95 get-task latency under {MAX_P95_GET_TASK_S * 1000:g} ms while a 1 MB command line starts",
            "max {seconds.get_task_max_long_command_line}; the task completed in "
            "{seconds.long_command_line_task_completed}",
        ),
        Target(
            "seconds.get_task_p95_dependency_range",
            "<",
            MAX_P95_GET_TASK_S,
            f"p95 get-task latency under {MAX_P95_GET_TASK_S * 1000:g} ms while a 3-million-id range waits",
            "max {seconds.get_task_max_dependency_range}; {metrics.busy_tasks_completed} tasks completed",
        ),
    ),
    run=run,
    headline=("seconds.get_task_p95_long_command_line", "seconds.get_task_p95_dependency_range"),
)
