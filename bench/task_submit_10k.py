"""``task_submit_10k``: add 10,000 tasks to one job with our operator, against two baselines.

Baselines: one ``create_task`` request per task, which is how Airflow's official Azure Batch operator
adds tasks; and the raw SDK's ``create_tasks(max_concurrency=8)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.batch_setup import create_job, delete_jobs, ensure_idle_pool, trivial_tasks
from bench.counting import RequestCounter
from bench.harness import Benchmark, Measurement, Target, Usage, median, ratio, stopwatch, usage

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "task_submit_10k"
#: The service takes at most 100 tasks per add-collection request: 10,000 tasks need 100 requests.
API_MAX_TASKS_PER_REQUEST = 100
MIN_SPEEDUP_VS_PER_TASK = 30.0
MAX_SLOWDOWN_VS_RAW_SDK = 1.15
RAW_SDK_CONCURRENCY = 8
#: A run whose client CPU time is at least this share of its wall time is called CPU-bound.
CPU_BOUND_SHARE = 0.75


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    tasks: int
    per_task_sample: int
    repeats: int


FULL = Sizes(tasks=10_000, per_task_sample=10_000, repeats=5)
SMOKE = Sizes(tasks=200, per_task_sample=50, repeats=1)


class _NullTaskInstance:
    """Stands in for the task instance outside a DAG run (the operator pushes its portal link)."""

    def xcom_push(self, key: str, value: Any) -> None:
        return None


def _run_operator(
    env: BenchEnvironment, job_id: str, tasks: list[dict[str, Any]], counter: RequestCounter
) -> Usage:
    from airflow.sdk.bases.operator import ExecutorSafeguard

    from airflow_batch_provider.operators.tasks import BatchAddTasksOperator

    operator = BatchAddTasksOperator(
        task_id="add_tasks",
        job_id=job_id,
        tasks=tasks,
        task_id_prefix="bench",
        azbatch_conn_id="unused",
    )
    hook = env.batch_hook(counter)
    operator.hook = hook  # the counting hook instead of the one built from the connection
    context: Any = {"ti": _NullTaskInstance(), "run_id": "bench"}
    # Called the way the task runner calls it (otherwise Airflow warns that it is called directly).
    runner_call = {f"{type(operator).__name__}__sentinel": ExecutorSafeguard.sentinel_value}
    _ = hook.settings, hook.client  # read the connection and build the client outside the clock
    with usage(env.emulator_pid) as used:
        result = operator.execute(context, **runner_call)
    hook.close()
    if result["added"] != len(tasks):
        raise RuntimeError(f"the operator added {result['added']} of {len(tasks)} tasks")
    return used


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    from azure.batch import models as batch_models

    sizes = SMOKE if smoke else FULL
    count, sample, repeats = sizes.tasks, sizes.per_task_sample, sizes.repeats
    admin = env.batch_hook()
    pool_id = ensure_idle_pool(admin)
    jobs: list[str] = []

    def new_job(label: str) -> str:
        job_id = create_job(admin, f"submit-{label}-{len(jobs)}", pool_id)
        jobs.append(job_id)
        return job_id

    tasks = trivial_tasks(count)
    api_minimum = math.ceil(count / API_MAX_TASKS_PER_REQUEST)

    def task_models(items: list[dict[str, Any]]) -> list[batch_models.BatchTaskCreateOptions]:
        return [batch_models.BatchTaskCreateOptions(id=t["id"], command_line=t["commandLine"]) for t in items]

    ours: list[Usage] = []
    hook_only: list[float] = []
    raw: list[Usage] = []
    ours_counter = RequestCounter(keep_records=True)
    hook_counter = RequestCounter()
    raw_counter = RequestCounter()

    # Per-task baseline first, on the emptiest emulator: one create_task request per task, in sequence.
    per_task_counter = RequestCounter()
    per_task_client = env.raw_batch_client(per_task_counter)
    job_id = new_job("per-task")
    sample_models = task_models(tasks[:sample])
    with usage(env.emulator_pid) as per_task:
        for model in sample_models:
            per_task_client.create_task(job_id, model)
    per_task_client.close()
    per_task_measured = per_task.seconds
    per_task_seconds = per_task_measured / sample * count

    def run_raw() -> None:
        # The task models are built before the clock starts (the strictest comparison).
        models = task_models(tasks)
        job_id = new_job("raw")
        raw_client = env.raw_batch_client(raw_counter)  # a new client each run, as ours gets a new hook
        raw_counter.reset()
        with usage(env.emulator_pid) as used:
            raw_client.create_tasks(job_id, models, max_concurrency=RAW_SDK_CONCURRENCY)
        raw.append(used)
        raw_client.close()

    def run_operator() -> None:
        ours_counter.reset()
        ours.append(_run_operator(env, new_job("operator"), [dict(t) for t in tasks], ours_counter))

    def run_hook() -> None:
        hook = env.batch_hook(hook_counter)
        _ = hook.client
        hook_counter.reset()
        job_id = new_job("hook")
        with stopwatch() as watch:
            outcome = hook.add_tasks(job_id, tasks)
        if outcome.added != count:
            raise RuntimeError(f"the hook added {outcome.added} of {count} tasks")
        hook_only.append(watch.seconds)
        hook.close()

    variants = [run_raw, run_operator, run_hook]
    for attempt in range(repeats):
        # Rotate the order, so no variant always runs first (or last) in a round.
        for variant in variants[attempt % 3 :] + variants[: attempt % 3]:
            variant()

    add_requests = sum(1 for record in ours_counter.records if record.path.endswith("/addtaskcollection"))
    ours_s, raw_s, hook_s = (
        median([u.seconds for u in ours]),
        median([u.seconds for u in raw]),
        median(hook_only),
    )
    delete_jobs(admin, jobs)
    sampled = sample < count
    notes = [
        f"Our operator (BatchAddTasksOperator.execute, validation included) and hook (BatchHook.add_tasks): "
        f"median of {repeats} run(s); the raw SDK create_tasks(max_concurrency={RAW_SDK_CONCURRENCY}) "
        "likewise, its task models built before timing. The three take turns, in a rotating order; the "
        "per-task baseline runs first.",
        "Tasks go to a job on a pool with no nodes, so they stay queued and only submission is timed.",
    ]
    if sampled:
        notes.append(
            f"Per-task baseline measured on {sample} tasks ({per_task_measured:.2f} s) and extrapolated "
            f"linearly to {count}."
        )
    else:
        notes.append(f"Per-task baseline measured in full: {count} sequential create_task requests.")
    return Measurement(
        sizes={"tasks": count, "per_task_baseline_tasks": sample, "repeats": repeats},
        seconds={
            "ours_operator": ours_s,
            "ours_hook": hook_s,
            "raw_sdk_create_tasks": raw_s,
            "per_task_baseline": per_task_seconds,
            "per_task_baseline_measured": per_task_measured,
            "client_cpu_ours_operator": median([u.client_cpu for u in ours]),
            "emulator_cpu_ours_operator": median([u.server_cpu for u in ours]),
            "client_cpu_raw_sdk": median([u.client_cpu for u in raw]),
            "emulator_cpu_raw_sdk": median([u.server_cpu for u in raw]),
            "client_cpu_per_task_baseline": per_task.client_cpu,
            "emulator_cpu_per_task_baseline": per_task.server_cpu,
        },
        requests={
            "ours_operator_total": ours_counter.requests,
            "ours_operator_add_collection": add_requests,
            "ours_hook": hook_counter.requests,
            "raw_sdk_create_tasks": raw_counter.requests,
            "per_task_baseline": per_task_counter.requests,
            "api_minimum": api_minimum,
        },
        ratios={
            "speedup_vs_per_task": ratio(per_task_seconds, ours_s),
            "raw_sdk_speedup_vs_per_task": ratio(per_task_seconds, raw_s),
            "time_vs_raw_sdk": ratio(ours_s, raw_s),
            "hook_time_vs_raw_sdk": ratio(hook_s, raw_s),
            "add_requests_vs_api_minimum": ratio(add_requests, api_minimum),
        },
        metrics={
            "ours_operator_runs_s": [u.seconds for u in ours],
            "ours_hook_runs_s": hook_only,
            "raw_sdk_runs_s": [u.seconds for u in raw],
        },
        notes=notes,
        baseline_sampled=sampled,
    )


def explain(measurement: Measurement) -> list[str]:
    """Where the time went, from the CPU and request numbers of the run."""
    seconds, ratios, sizes = measurement.seconds, measurement.ratios, measurement.sizes
    lines = []
    if ratios["speedup_vs_per_task"] < MIN_SPEEDUP_VS_PER_TASK:
        per_request = seconds["per_task_baseline_measured"] / sizes["per_task_baseline_tasks"]
        client = seconds["client_cpu_per_task_baseline"] / sizes["per_task_baseline_tasks"]
        lines.append(
            f"One create_task round trip costs {per_request * 1000:.2f} ms here, "
            f"{client * 1000:.2f} ms of it client CPU: the emulator is on loopback, with no network "
            "latency for the bulk path to hide. "
            f"The raw SDK's own create_tasks reaches {ratios['raw_sdk_speedup_vs_per_task']:.1f}x. Our "
            f"operator used {seconds['client_cpu_ours_operator']:.2f} s of client CPU in its "
            f"{seconds['ours_operator']:.2f} s"
            + (
                ": the bulk path is bound by client CPU."
                if seconds["client_cpu_ours_operator"] >= CPU_BOUND_SHARE * seconds["ours_operator"]
                else "."
            )
        )
    if ratios["time_vs_raw_sdk"] > MAX_SLOWDOWN_VS_RAW_SDK:
        lines.append(
            f"Our operator used {seconds['client_cpu_ours_operator']:.2f} s of client CPU against the raw "
            f"SDK's {seconds['client_cpu_raw_sdk']:.2f} s. The hook alone takes "
            f"{ratios['hook_time_vs_raw_sdk']:.2f}x the raw SDK's time; the rest "
            f"({seconds['ours_operator'] - seconds['ours_hook']:.2f} s) is the operator planning and "
            "validating the tasks and reading the job and pool before it submits."
        )
    if ratios["time_vs_raw_sdk"] < 1:
        lines.append(
            f"Our operator used {seconds['client_cpu_ours_operator']:.2f} s of client CPU against the raw "
            f"SDK's {seconds['client_cpu_raw_sdk']:.2f} s: the hook sends the tasks' JSON as it is and reads "
            "the per-task results as JSON, while the SDK's create_tasks turns every task into a model and "
            "every result back into one."
        )
    return lines


BENCHMARK = Benchmark(
    name=NAME,
    what="Add 10,000 tasks to one job with BatchAddTasksOperator (BatchHook.add_tasks underneath).",
    baseline=(
        "One create_task request per task (the official Airflow Azure Batch operator's way); the raw SDK's "
        f"create_tasks(max_concurrency={RAW_SDK_CONCURRENCY})."
    ),
    method=(
        "Each run adds the same tasks to a fresh job on a pool with no nodes (tasks stay queued). Requests "
        "are counted by an azure-core policy placed after the retry policy, so retries would count. The "
        "operator's two lookups (the job and its pool, for validation) are counted in its total; the "
        "target applies to its add-collection requests, which is what the API minimum is about."
    ),
    targets=(
        Target(
            "ratios.add_requests_vs_api_minimum",
            "<=",
            1.0,
            f"add-collection requests at most the API minimum (tasks / {API_MAX_TASKS_PER_REQUEST})",
            "{requests.ours_operator_add_collection} add requests, API minimum {requests.api_minimum}; "
            "{requests.ours_operator_total} in all with the operator's job and pool lookups",
        ),
        Target(
            "ratios.speedup_vs_per_task",
            ">=",
            MIN_SPEEDUP_VS_PER_TASK,
            f"at least {MIN_SPEEDUP_VS_PER_TASK:g}x faster than one request per task",
            "operator {seconds.ours_operator} vs per-task {seconds.per_task_baseline}; the raw SDK's "
            "create_tasks reaches {ratios.raw_sdk_speedup_vs_per_task}",
        ),
        Target(
            "ratios.time_vs_raw_sdk",
            "<=",
            MAX_SLOWDOWN_VS_RAW_SDK,
            f"within {MAX_SLOWDOWN_VS_RAW_SDK:g}x of the raw SDK's create_tasks",
            "operator {seconds.ours_operator}, hook alone {seconds.ours_hook} "
            "({ratios.hook_time_vs_raw_sdk}), raw SDK {seconds.raw_sdk_create_tasks}",
        ),
    ),
    run=run,
    headline=("seconds.ours_operator", "seconds.per_task_baseline", "seconds.raw_sdk_create_tasks"),
    explain=explain,
)
