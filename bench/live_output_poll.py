"""``live_output_poll``: the cost of one live-output poll (new stdout/stderr lines of running tasks).

Ours: :class:`~airflow_batch_provider.batch.monitor.live_output.OutputFollower`, as the job sensor and
trigger run it each poll, over jobs with more and more chatty running tasks.
Baseline: reading both files of every running task whole on each poll.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.batch_setup import create_job, delete_jobs, pool_spec, wait_for_idle_nodes
from bench.counting import RequestCounter
from bench.harness import Benchmark, Measurement, Target, median, ratio, stopwatch

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "live_output_poll"
MAX_TASKS = 5
MAX_BYTES = 16384
#: One list request, then at most a properties and a ranged read per file (two files) per task.
MAX_REQUESTS_PER_POLL = 1 + 2 * 2 * MAX_TASKS
POOL_ID = "bench-live-output-pool"
#: Prints a line every 0.1 s for about a minute.
CHATTY = "/bin/sh -c 'i=0; while [ $i -lt 600 ]; do echo line-$i; i=$((i+1)); sleep 0.1; done'"


@dataclass(frozen=True)
class Sizes:
    running_tasks: tuple[int, ...]
    polls: int


FULL = Sizes(running_tasks=(5, 20, 60), polls=10)
SMOKE = Sizes(running_tasks=(2, 6), polls=2)


async def _measure(env: BenchEnvironment, job_id: str, polls: int) -> dict[str, list[float]]:
    from airflow_batch_provider.batch.monitor.io import AsyncBatchIO
    from airflow_batch_provider.batch.monitor.live_output import STD_FILES, OutputFollower

    counter = RequestCounter()
    hook = env.batch_hook(counter)
    io = AsyncBatchIO(hook)
    follower = OutputFollower(job_id=job_id, max_tasks=MAX_TASKS, max_bytes=MAX_BYTES)
    out: dict[str, list[float]] = {"seconds": [], "requests": [], "bytes": [], "base_s": [], "base_b": []}
    try:
        await follower.poll(io)  # warm up; then every poll reads only what is new
        for _ in range(polls):
            await asyncio.sleep(0.3)
            before = sum(follower.offsets.values())
            counter.reset()
            with stopwatch() as watch:
                await follower.poll(io)
            out["seconds"].append(watch.seconds)
            out["requests"].append(counter.requests)
            out["bytes"].append(sum(follower.offsets.values()) - before)
            with stopwatch() as watch:
                running = await io.list_tasks(job_id, filter="state eq 'running'", select=["id"])
                read = 0
                for task in running:
                    for name in STD_FILES:
                        read += len(
                            await io.read_task_file_from(job_id, str(task["id"]), name, 0, 1 << 30) or b""
                        )
            out["base_s"].append(watch.seconds)
            out["base_b"].append(read)
    finally:
        await hook.aclose()
    return out


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    sizes = SMOKE if smoke else FULL
    admin = env.batch_hook()
    largest = sizes.running_tasks[-1]
    admin.create_pool(pool_spec(POOL_ID, 1, slots_per_node=largest))
    wait_for_idle_nodes(admin, POOL_ID, 1)
    seconds: dict[str, float] = {}
    requests: dict[str, int] = {}
    metrics: dict[str, Any] = {}
    jobs: list[str] = []
    for count in sizes.running_tasks:
        job_id = create_job(admin, f"live-output-{count}-{int(time.time())}", POOL_ID)
        jobs.append(job_id)
        admin.add_tasks(job_id, [{"id": f"t{i:03d}", "commandLine": CHATTY} for i in range(count)])
        deadline = time.monotonic() + 60
        while admin.get_task_counts(job_id).running < count and time.monotonic() < deadline:
            time.sleep(0.1)
        measured = asyncio.run(_measure(env, job_id, sizes.polls))
        admin.terminate_job(job_id)
        seconds[f"ours_poll_{count}"] = median(measured["seconds"])
        seconds[f"read_all_poll_{count}"] = median(measured["base_s"])
        requests[f"ours_per_poll_{count}"] = int(max(measured["requests"]))
        metrics[f"ours_new_bytes_per_poll_{count}"] = max(measured["bytes"])
        metrics[f"read_all_bytes_per_poll_{count}"] = max(measured["base_b"])
    delete_jobs(admin, jobs)
    admin.delete_pool(POOL_ID)
    ours = [seconds[f"ours_poll_{count}"] for count in sizes.running_tasks]
    base = [seconds[f"read_all_poll_{count}"] for count in sizes.running_tasks]
    seconds["ours_poll_largest"] = ours[-1]
    seconds["read_all_poll_largest"] = base[-1]
    return Measurement(
        sizes={"running_tasks": sizes.running_tasks, "polls": sizes.polls, "max_tasks": MAX_TASKS},
        seconds=seconds,
        requests={
            **requests,
            "ours_max_per_poll": max(requests[f"ours_per_poll_{count}"] for count in sizes.running_tasks),
        },
        ratios={
            "ours_flatness": ratio(max(ours), min(ours)),
            f"read_all_vs_ours_at_{largest}": ratio(base[-1], ours[-1]),
        },
        metrics={
            **metrics,
            "ours_max_bytes_per_poll": max(
                metrics[f"ours_new_bytes_per_poll_{count}"] for count in sizes.running_tasks
            ),
        },
        notes=[
            f"Each size: that many tasks printing a line every 0.1 s on one node; {sizes.polls} polls 0.3 s "
            f"apart, at most {MAX_TASKS} tasks and {MAX_BYTES} bytes per file read per poll.",
        ],
    )


BENCHMARK = Benchmark(
    name=NAME,
    what="One live-output poll (new stdout/stderr lines of the running tasks) as the job sensor runs it.",
    baseline="Reading stdout.txt and stderr.txt of every running task whole on each poll.",
    method=(
        "Jobs of chatty running tasks on the emulator; the warmed-up async hook polls with ranged reads "
        "from the last offsets. Requests per poll are counted by an azure-core policy."
    ),
    targets=(
        Target(
            "requests.ours_max_per_poll",
            "<=",
            MAX_REQUESTS_PER_POLL,
            f"at most {MAX_REQUESTS_PER_POLL} requests per poll whatever the number of running tasks",
        ),
        Target(
            "metrics.ours_max_bytes_per_poll",
            "<=",
            2 * MAX_TASKS * MAX_BYTES,
            "bytes read per poll bounded by max_tasks x 2 files x max_bytes",
        ),
    ),
    run=run,
    headline=("seconds.ours_poll_largest", "seconds.read_all_poll_largest"),
)
