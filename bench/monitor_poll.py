"""``monitor_poll``: one monitoring poll of a job of 100, 1,000 and 10,000 tasks.

Ours: the check the job trigger and sensor run each poll (:func:`check_job` over the async hook).
Baseline: listing every task of the job each poll, as a monitor that looks at each task's state does.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.batch_setup import create_job, delete_jobs, ensure_idle_pool, trivial_tasks
from bench.counting import RequestCounter
from bench.harness import Benchmark, Measurement, Target, median, ratio, stopwatch

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "monitor_poll"
REQUESTS_PER_POLL = 1
#: "Flat": the slowest size's poll takes at most this many times the fastest size's.
MAX_FLATNESS = 3.0


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    task_counts: tuple[int, ...]
    polls: int
    baseline_polls: int


FULL = Sizes(task_counts=(100, 1_000, 10_000), polls=30, baseline_polls=5)
SMOKE = Sizes(task_counts=(10, 50), polls=3, baseline_polls=2)


async def _measure(
    env: BenchEnvironment, job_id: str, polls: int, baseline_polls: int
) -> tuple[list[float], list[int], dict[str, int], list[float], list[int]]:
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
    from airflow_batch_provider.batch.monitor.job import TASK_SELECT, check_job

    counter = RequestCounter(keep_records=True)
    hook = env.batch_hook(counter)
    io = AsyncBatchIO(hook)
    try:
        await check_job(io, job_id)  # warm up: connection, client, connection pool
        ours: list[float] = []
        ours_requests: list[int] = []
        kinds: Counter[str] = Counter()
        last = None
        stalled = 0
        for _ in range(polls):
            counter.reset()
            with stopwatch() as watch:
                # Carry the poll state forward exactly as BatchJobTrigger does between polls.
                check = await check_job(io, job_id, last_counts=last, stalled_polls=stalled)
            last = check.counts
            stalled = check.stalled_polls
            ours.append(watch.seconds)
            ours_requests.append(counter.requests)
            for record in counter.records:
                path = urlsplit(record.path).path.replace(f"/jobs/{job_id}", "/jobs/{id}")
                kinds[f"{record.method} {path}"] += 1
        listing: list[float] = []
        listing_requests: list[int] = []
        for _ in range(baseline_polls):
            counter.reset()
            with stopwatch() as watch:
                tasks = await hook.alist_tasks(job_id, select=TASK_SELECT)
            listing.append(watch.seconds)
            listing_requests.append(counter.requests)
            del tasks
    finally:
        await hook.aclose()
    return ours, ours_requests, dict(kinds), listing, listing_requests


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    sizes = SMOKE if smoke else FULL
    admin = env.batch_hook()
    pool_id = ensure_idle_pool(admin)
    seconds: dict[str, float] = {}
    requests: dict[str, int] = {}
    metrics: dict[str, Any] = {}
    jobs: list[str] = []
    for count in sizes.task_counts:
        job_id = create_job(admin, f"monitor-{count}", pool_id)
        jobs.append(job_id)
        admin.add_tasks(job_id, trivial_tasks(count))
        env.emulator.clear_log()
        ours, ours_requests, kinds, listing, listing_requests = asyncio.run(
            _measure(env, job_id, sizes.polls, sizes.baseline_polls)
        )
        served = [
            responded - arrived
            for arrived, responded, method, path, _ in env.emulator.request_log()
            if method == "GET" and path == f"/jobs/{job_id}/taskcounts"
        ]
        seconds[f"emulator_taskcounts_{count}"] = median(served)
        seconds[f"ours_poll_{count}"] = median(ours)
        seconds[f"list_all_poll_{count}"] = median(listing)
        requests[f"ours_per_poll_{count}"] = max(ours_requests)
        requests[f"list_all_per_poll_{count}"] = max(listing_requests)
        metrics[f"ours_requests_per_poll_{count}"] = sorted(set(ours_requests))
        metrics[f"ours_request_kinds_{count}"] = kinds
    delete_jobs(admin, jobs)
    smallest, largest = sizes.task_counts[0], sizes.task_counts[-1]
    # Each size's median poll, smallest size first (read back from ``seconds``).
    ours_by_size = [seconds[f"ours_poll_{count}"] for count in sizes.task_counts]
    listing_by_size = [seconds[f"list_all_poll_{count}"] for count in sizes.task_counts]
    seconds["ours_poll_largest"] = ours_by_size[-1]
    seconds["list_all_poll_largest"] = listing_by_size[-1]
    requests["list_all_per_poll_largest"] = requests[f"list_all_per_poll_{largest}"]
    ours_max_per_poll = max(requests[f"ours_per_poll_{count}"] for count in sizes.task_counts)
    return Measurement(
        sizes={
            "task_counts": sizes.task_counts,
            "polls": sizes.polls,
            "baseline_polls": sizes.baseline_polls,
        },
        seconds=seconds,
        requests={**requests, "ours_max_per_poll": ours_max_per_poll},
        ratios={
            "ours_flatness": ratio(max(ours_by_size), min(ours_by_size)),
            "list_all_growth": ratio(listing_by_size[-1], listing_by_size[0]),
            f"list_all_vs_ours_at_{largest}": ratio(listing_by_size[-1], ours_by_size[-1]),
            f"list_all_vs_ours_at_{smallest}": ratio(listing_by_size[0], ours_by_size[0]),
        },
        metrics={"ours_polls_per_size": sizes.polls, **metrics},
        notes=[
            f"Each size: {sizes.polls} polls of ours (median), {sizes.baseline_polls} of the baseline; "
            "every poll after the first passes the previous counts, as the trigger does between polls.",
            "The job's tasks stay queued (a pool with no nodes), so each poll sees an unchanged job.",
            "emulator_taskcounts_*: the emulator's own time to answer the task-counts request (from its "
            "request log); the emulator counts the job's tasks on every request, while the service keeps "
            "counters, so part of the growth with the task count is the emulator's.",
        ],
    )


def explain(measurement: Measurement) -> list[str]:
    """Which requests the polls sent, and why some are not the task counts."""
    lines = []
    polls = measurement.sizes["polls"]
    largest = measurement.sizes["task_counts"][-1]
    kinds: dict[str, int] = measurement.metrics.get(f"ours_request_kinds_{largest}") or {}
    if kinds:
        listed = ", ".join(f"{kind} x{number}" for kind, number in sorted(kinds.items()))
        lines.append(f"Over {polls} polls of the {largest:,}-task job the check sent: {listed}.")
    if kinds.get("GET /jobs/{id}"):
        lines.append(
            "The job reads are check_job's watch for a job that ended early (terminated, max wall clock) "
            "with tasks that will never run: once the counts stop moving, the next poll and every "
            "JOB_CHECK_EVERY-th after it read the job's state instead of the counts, so such a poll is "
            "still one request."
        )
    return lines


BENCHMARK = Benchmark(
    name=NAME,
    what=(
        "One monitoring poll (check_job, as BatchJobTrigger runs it) of a job with 100, 1,000 and 10,000 "
        "tasks."
    ),
    baseline="Listing every task of the job (id, state, execution info) on each poll.",
    method=(
        "A job per size on a pool with no nodes; the warmed-up async hook polls it repeatedly. Requests "
        "per poll are counted by an azure-core policy; flatness is the slowest size's median poll time "
        "divided by the fastest size's."
    ),
    targets=(
        Target(
            "requests.ours_max_per_poll",
            "==",
            REQUESTS_PER_POLL,
            f"exactly {REQUESTS_PER_POLL} request per poll at every size",
            "listing every task: {requests.list_all_per_poll_largest} at the largest size",
        ),
        Target(
            "ratios.ours_flatness",
            "<=",
            MAX_FLATNESS,
            f"time per poll flat: slowest size at most {MAX_FLATNESS:g}x the fastest",
            "largest job {seconds.ours_poll_largest} per poll; listing every task "
            "{seconds.list_all_poll_largest}, {ratios.list_all_growth} growth",
        ),
    ),
    run=run,
    headline=("seconds.ours_poll_largest", "seconds.list_all_poll_largest"),
    explain=explain,
)
