"""``triggers_concurrent``: 500 ``BatchJobTrigger.run()`` generators in one event loop, each on its own job.

No baseline: the targets are absolute (memory per trigger, lateness of the polls).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import tracemalloc
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.batch_setup import create_job, delete_jobs, ensure_idle_pool, trivial_tasks
from bench.files import MIB
from bench.harness import Benchmark, Measurement, Target, median, percentile

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "triggers_concurrent"
MAX_MIB_PER_TRIGGER = 1.0
MAX_P95_LATENESS_S = 1.0


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    triggers: int
    poll_interval_s: float
    lateness_run_s: float
    memory_run_s: float


FULL = Sizes(triggers=500, poll_interval_s=1.0, lateness_run_s=15.0, memory_run_s=8.0)
SMOKE = Sizes(triggers=10, poll_interval_s=0.5, lateness_run_s=2.0, memory_run_s=1.5)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


async def _consume(trigger: Any, events: list[Any]) -> None:
    async for event in trigger.run():
        events.append(event)
        return


async def _run_triggers(
    job_ids: list[str], warmup_job: str, poll_interval: float, seconds: float, trace_memory: bool
) -> dict[str, Any]:
    """Run one trigger per job for ``seconds``, then cancel them all; memory measured if asked."""
    from airflow_batch_provider.triggers.job import BatchJobTrigger
    from bench.environment import BATCH_CONN_ID

    events: list[Any] = []
    # Warm up imports and lazily built SDK state with one trigger, so it is not charged to the 500.
    warm = asyncio.create_task(
        _consume(
            BatchJobTrigger(warmup_job, azbatch_conn_id=BATCH_CONN_ID, poll_interval=poll_interval), events
        )
    )
    await asyncio.sleep(poll_interval * 1.5)
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    gc.collect()

    if trace_memory:
        tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0] if trace_memory else 0
    rss_before = _rss_bytes()
    triggers = [
        BatchJobTrigger(job_id, azbatch_conn_id=BATCH_CONN_ID, poll_interval=poll_interval)
        for job_id in job_ids
    ]
    tasks = [asyncio.create_task(_consume(trigger, events)) for trigger in triggers]
    await asyncio.sleep(seconds)
    gc.collect()
    traced_now, traced_peak = tracemalloc.get_traced_memory() if trace_memory else (0, 0)
    rss_now = _rss_bytes()
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    if trace_memory:
        tracemalloc.stop()
    errors = [repr(item) for item in outcomes if isinstance(item, Exception)]
    return {
        "traced_bytes": traced_now - traced_before,
        "traced_peak_bytes": traced_peak - traced_before,
        "rss_bytes": (rss_now - rss_before) if rss_now is not None and rss_before is not None else None,
        "events": len(events),
        "errors": errors[:3],
    }


def _without_job(
    log: list[tuple[float, float, str, str, int]], job_id: str
) -> list[tuple[float, float, str, str, int]]:
    """The log without the requests about ``job_id`` (the warm-up trigger's)."""
    marker = f"/jobs/{job_id}"
    return [entry for entry in log if entry[3] != marker and not entry[3].startswith(marker + "/")]


def _lateness(log: list[tuple[float, float, str, str, int]], poll_interval: float) -> dict[str, Any]:
    """Per job: next poll's arrival minus (previous poll's last response + the poll interval)."""
    by_job: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for arrived, responded, _method, path, _status in log:
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "jobs":
            by_job[parts[1]].append((arrived, responded, path))
    lateness: list[float] = []
    requests_per_poll: list[int] = []
    server_seconds = [responded - arrived for arrived, responded, *_ in log]
    for entries in by_job.values():
        entries.sort()
        starts = [index for index, entry in enumerate(entries) if entry[2].endswith("/taskcounts")]
        for current, following in itertools.pairwise(starts):
            poll = entries[current:following]
            requests_per_poll.append(len(poll))
            poll_end = max(responded for _, responded, _ in poll)
            lateness.append(entries[following][0] - poll_end - poll_interval)
    return {
        "lateness": lateness,
        "requests_per_poll": requests_per_poll,
        "server_seconds": server_seconds,
        "jobs_seen": len(by_job),
    }


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    sizes = SMOKE if smoke else FULL
    count, interval = sizes.triggers, sizes.poll_interval_s
    admin = env.batch_hook()
    pool_id = ensure_idle_pool(admin)
    job_ids = [f"trigger-{index:04d}" for index in range(count)]

    def prepare(job_id: str) -> None:
        create_job(admin, job_id, pool_id)
        admin.add_tasks(job_id, trivial_tasks(1))

    warmup_job = "trigger-warmup"
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(prepare, [*job_ids, warmup_job]))

    env.emulator.clear_log()
    timing = asyncio.run(
        _run_triggers(job_ids, warmup_job, interval, sizes.lateness_run_s, trace_memory=False)
    )
    polls = _lateness(_without_job(env.emulator.request_log(), warmup_job), interval)
    env.emulator.clear_log()
    memory = asyncio.run(_run_triggers(job_ids, warmup_job, interval, sizes.memory_run_s, trace_memory=True))
    memory_polls = _lateness(_without_job(env.emulator.request_log(), warmup_job), interval)
    delete_jobs(admin, [*job_ids, warmup_job])

    lateness = polls["lateness"]
    return Measurement(
        sizes={"triggers": count, "poll_interval_s": interval, "run_s": sizes.lateness_run_s},
        seconds={
            "poll_lateness_p50": median(lateness),
            "poll_lateness_p95": percentile(lateness, 0.95),
            "poll_lateness_max": max(lateness) if lateness else float("nan"),
            "emulator_request_p50": median(polls["server_seconds"]),
            "emulator_request_p95": percentile(polls["server_seconds"], 0.95),
        },
        requests={
            "total": len(polls["server_seconds"]),
            "per_poll_max": max(polls["requests_per_poll"], default=0),
            "per_poll_min": min(polls["requests_per_poll"], default=0),
        },
        metrics={
            "memory_per_trigger_mib": memory["traced_bytes"] / count / MIB,
            "memory_peak_per_trigger_mib": memory["traced_peak_bytes"] / count / MIB,
            "rss_per_trigger_mib": (timing["rss_bytes"] / count / MIB)
            if timing["rss_bytes"] is not None
            else None,
            "polls_measured": len(lateness),
            "jobs_polled": polls["jobs_seen"],
            "jobs_polled_in_memory_run": memory_polls["jobs_seen"],
            "trigger_errors": timing["errors"] + memory["errors"],
            "events_before_cancel": timing["events"] + memory["events"],
        },
        notes=[
            f"{count} triggers, poll interval {interval:g} s, all started at once (the worst case for "
            f"lateness); lateness over {sizes.lateness_run_s:g} s, memory over "
            f"{sizes.memory_run_s:g} s.",
            "Lateness is read from the emulator's request log: for each trigger, the arrival of a poll's "
            "first request minus (the previous poll's last response + the poll interval). It includes the "
            "loopback transit and the client's own work, so it is an upper bound on the event loop's delay.",
            "Memory: tracemalloc (Python allocations) retained after every trigger has polled, divided by "
            "the number of triggers; measured in a second run, since tracing slows the loop. RSS growth per "
            "trigger (from the lateness run) is reported for reference.",
        ],
    )


def explain(measurement: Measurement) -> list[str]:
    """How fast the emulator answered while the triggers were late."""
    seconds = measurement.seconds
    return [
        f"The emulator answered in {seconds['emulator_request_p95'] * 1000:.1f} ms (p95, its app's own "
        f"time); polls were late by {seconds['poll_lateness_p95'] * 1000:.0f} ms (p95)."
    ]


BENCHMARK = Benchmark(
    name=NAME,
    what="500 BatchJobTrigger.run() generators in one event loop, each polling its own job on the emulator.",
    baseline="None (absolute targets).",
    method=(
        "Every trigger is the unmodified BatchJobTrigger with the real async hook; the jobs never finish "
        "(their task stays queued on a pool with no nodes), and the triggers are cancelled at the end."
    ),
    targets=(
        Target(
            "metrics.memory_per_trigger_mib",
            "<",
            MAX_MIB_PER_TRIGGER,
            f"under {MAX_MIB_PER_TRIGGER:g} MiB of memory per trigger",
            "MiB per trigger (tracemalloc); RSS growth {metrics.rss_per_trigger_mib} MiB per trigger",
        ),
        Target(
            "seconds.poll_lateness_p95",
            "<",
            MAX_P95_LATENESS_S,
            f"p95 poll lateness under {MAX_P95_LATENESS_S:g} s",
            "p50 {seconds.poll_lateness_p50}, max {seconds.poll_lateness_max}, "
            "{metrics.polls_measured} polls",
        ),
    ),
    run=run,
    headline=("seconds.poll_lateness_p95", "metrics.memory_per_trigger_mib"),
    explain=explain,
)
