"""``upload_many_small``: 2,000 files of 16 KiB uploaded with our hook, against two baselines.

Baselines: one ``upload_blob`` call per file in sequence (what the official ``LocalFilesystemToWasb``
operator does through ``WasbHook.load_file``); and a raw SDK thread pool (the fastest of several
pool sizes, each with a connection pool as large as the thread pool).

The upload and the sequential baseline also run over a :class:`~bench.network_link.DelayedLink`, which
adds a round trip to every request as a network does. The speed-up over the sequential upload is
judged over the 5 ms link, where requests wait on the wire as they do against Azure; on loopback
Azurite's own CPU time (it serves requests on one thread) caps any client, so the loopback speed-up is
reported against that cap, not judged. The throughput against a raw thread pool is judged on loopback.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.counting import RequestCounter
from bench.files import KIB, MIB, ensure_container, make_small_files
from bench.harness import Benchmark, Measurement, Target, Usage, median, ratio, usage
from bench.network_link import DelayedLink

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "upload_many_small"
MIN_SPEEDUP_VS_SEQUENTIAL = 8.0
MIN_THROUGHPUT_VS_RAW_POOL = 0.9
CONTAINER = "bench-small"


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    files: int
    file_bytes: int
    repeats: int
    pool_sizes: tuple[int, ...]
    #: Round trips (seconds) of the delayed links the upload also runs over, and its runs on each.
    link_round_trips: tuple[float, ...]
    link_repeats: int


FULL = Sizes(
    files=2_000,
    file_bytes=16 * KIB,
    repeats=5,
    pool_sizes=(8, 16, 32),
    link_round_trips=(0.002, 0.005, 0.010),
    link_repeats=3,
)
#: The round trip (seconds) of the link the speed-up over the sequential upload is judged on.
JUDGED_ROUND_TRIP = 0.005
JUDGED_LINK = f"{JUDGED_ROUND_TRIP * 1000:g}ms_link"
SMOKE = Sizes(
    files=40,
    file_bytes=16 * KIB,
    repeats=1,
    pool_sizes=(8,),
    link_round_trips=(0.002, JUDGED_ROUND_TRIP),
    link_repeats=1,
)


@dataclass(frozen=True)
class LinkRuns:
    """The sequential baseline and our upload over one delayed link."""

    round_trip: float
    sequential: Usage
    ours: list[Usage]

    @property
    def label(self) -> str:
        return f"{self.round_trip * 1000:g}ms_link"

    @property
    def ours_seconds(self) -> float:
        """The median time of our runs over the link."""
        return median([run.seconds for run in self.ours])


def sequential_upload(
    env: BenchEnvironment,
    paths: list[Path],
    container: str,
    counter: RequestCounter | None = None,
    via: DelayedLink | None = None,
) -> Usage:
    """One blocking ``upload_blob`` per file, in order, as ``WasbHook.load_file`` does."""
    service = env.raw_blob_service(counter, via=via)
    with usage(env.azurite_pid) as used:
        for path in paths:
            blob = service.get_blob_client(container, f"data/{path.name}")
            with open(path, "rb") as handle:
                blob.upload_blob(handle, overwrite=True)
    service.close()
    return used


def pool_upload(
    env: BenchEnvironment,
    paths: list[Path],
    container: str,
    workers: int,
    counter: RequestCounter | None = None,
) -> Usage:
    """A thread pool of ``workers`` calling ``upload_blob`` on one client with as many connections."""
    service = env.raw_blob_service(counter, connections=workers)
    client = service.get_container_client(container)

    def upload(path: Path) -> None:
        client.upload_blob(f"data/{path.name}", path.read_bytes(), overwrite=True)

    with usage(env.azurite_pid) as used, ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(upload, paths))
    service.close()
    return used


def ours_upload(
    env: BenchEnvironment,
    directory: Path,
    container: str,
    counter: RequestCounter | None = None,
    via: DelayedLink | None = None,
) -> Usage:
    """``BlobStorageHook.upload`` of the directory (skip-unchanged on, as by default)."""
    hook = env.blob_hook(counter, via=via)
    _ = hook.settings
    with usage(env.azurite_pid) as used:
        result = hook.upload(container, str(directory), "data/")
    hook.close()
    if not result.transferred:
        raise RuntimeError("our upload sent nothing")
    return used


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    sizes = SMOKE if smoke else FULL
    directory = env.scratch / "many-small"
    paths = make_small_files(directory, sizes.files, sizes.file_bytes)
    total_bytes = sizes.files * sizes.file_bytes
    admin = env.raw_blob_service()
    runs = itertools.count()

    def measured(upload: Callable[[str], Usage]) -> Usage:
        """Run one upload into a new, empty container, removed afterwards (Azurite keeps blobs in memory)."""
        container = f"{CONTAINER}-{next(runs)}"
        ensure_container(admin, container)
        try:
            return upload(container)
        finally:
            admin.delete_container(container)

    # Warm up Azurite and both client stacks.
    measured(lambda container: ours_upload(env, directory, container))
    measured(lambda container: pool_upload(env, paths, container, 8))

    sequential_counter = RequestCounter()
    sequential = measured(lambda container: sequential_upload(env, paths, container, sequential_counter))
    ours: list[Usage] = []
    pools: dict[int, list[Usage]] = {workers: [] for workers in sizes.pool_sizes}
    ours_counter = RequestCounter()
    pool_counter = RequestCounter()

    def run_pools() -> None:
        for workers in sizes.pool_sizes:
            pool_counter.reset()
            pools[workers].append(
                measured(lambda container: pool_upload(env, paths, container, workers, pool_counter))  # noqa: B023
            )

    def run_ours() -> None:
        ours_counter.reset()
        ours.append(measured(lambda container: ours_upload(env, directory, container, ours_counter)))

    for attempt in range(sizes.repeats):
        for step in (run_pools, run_ours) if attempt % 2 == 0 else (run_ours, run_pools):
            step()

    links: list[LinkRuns] = []
    for round_trip in sizes.link_round_trips:
        with DelayedLink(env.azurite.host, env.azurite.port, round_trip) as link:
            # Counted although never read: the same client pipelines as the loopback runs they are
            # compared with (added_ms_per_request_over_* subtracts the loopback sequential run).
            linked_sequential = measured(
                lambda container: sequential_upload(env, paths, container, RequestCounter(), via=link)
            )
            linked_ours = [
                measured(lambda container: ours_upload(env, directory, container, RequestCounter(), via=link))
                for _ in range(sizes.link_repeats)
            ]
        links.append(LinkRuns(round_trip, linked_sequential, linked_ours))
    admin.close()

    pool_medians = {workers: median([run.seconds for run in runs]) for workers, runs in pools.items()}
    best_workers = min(pool_medians, key=lambda workers: pool_medians[workers])
    ours_s, pool_s = median([run.seconds for run in ours]), pool_medians[best_workers]
    ours_server_cpu = median([run.server_cpu for run in ours])
    return Measurement(
        sizes={"files": sizes.files, "file_bytes": sizes.file_bytes, "repeats": sizes.repeats},
        seconds={
            "ours": ours_s,
            "sequential_baseline": sequential.seconds,
            "raw_thread_pool_best": pool_s,
            **{f"raw_thread_pool_{workers}": value for workers, value in pool_medians.items()},
            "azurite_cpu_ours": ours_server_cpu,
            "azurite_cpu_sequential": sequential.server_cpu,
            "client_cpu_ours": median([run.client_cpu for run in ours]),
            "client_cpu_sequential": sequential.client_cpu,
            **{f"sequential_over_{link.label}": link.sequential.seconds for link in links},
            **{f"ours_over_{link.label}": link.ours_seconds for link in links},
        },
        requests={
            "ours": ours_counter.requests,
            "sequential_baseline": sequential_counter.requests,
            "raw_thread_pool": pool_counter.requests,
        },
        ratios={
            "speedup_vs_sequential": ratio(sequential.seconds, ours_s),
            "throughput_vs_raw_pool": ratio(pool_s, ours_s),
            "azurite_busy_during_ours": ratio(ours_server_cpu, ours_s),
            "speedup_bound_vs_sequential": ratio(sequential.seconds, ours_server_cpu),
            **{
                f"speedup_vs_sequential_over_{link.label}": ratio(link.sequential.seconds, link.ours_seconds)
                for link in links
            },
        },
        metrics={
            "ours_mib_per_s": total_bytes / ours_s / MIB,
            "raw_pool_best_workers": best_workers,
            "ours_bytes_sent": ours_counter.bytes_sent,
            "ours_runs_s": [run.seconds for run in ours],
            **{
                # What the link added to each request, as the sequential baseline (one at a time) saw it.
                f"added_ms_per_request_over_{link.label}": (link.sequential.seconds - sequential.seconds)
                / sizes.files
                * 1000
                for link in links
            },
        },
        notes=[
            f"Our hook: median of {sizes.repeats} run(s), each into a new empty container (a first upload), "
            "removed after the run; its requests include creating the container (it exists already) and "
            "listing the prefix for skip-unchanged. Ours and the thread pools take turns, in alternating "
            "order; the sequential baseline runs first.",
            f"Raw thread pool: {sizes.pool_sizes} workers tried, each with as many pooled connections; "
            f"the fastest ({best_workers} workers) is the baseline. Sequential baseline: one run.",
            "azurite_cpu_* is the CPU time the Azurite process used during a run. Azurite serves requests "
            "on one thread, so no client can finish the upload faster than that: "
            "speedup_bound_vs_sequential (sequential time / Azurite's CPU time during ours) is the most "
            "any client could gain over the sequential baseline against this server on this machine.",
            f"*_over_<N>ms_link: the sequential baseline (one run) and our upload (median of "
            f"{sizes.link_repeats}) through a TCP relay in its own process that holds every chunk for half "
            "of N ms each way, so every request waits a round trip as over a network. "
            "added_ms_per_request_over_* is what that cost the sequential baseline per file. The speed-up "
            f"target is judged over the {JUDGED_ROUND_TRIP * 1000:g} ms link; on loopback it is reported "
            "against speedup_bound_vs_sequential, the cap Azurite's CPU puts on any client.",
        ],
    )


def explain(measurement: Measurement) -> list[str]:
    """Why a target was missed, from the numbers: the link, the server's CPU, or our client's CPU."""
    seconds, ratios = measurement.seconds, measurement.ratios
    lines = []
    linked = ratios.get(f"speedup_vs_sequential_over_{JUDGED_LINK}", float("nan"))
    if not linked >= MIN_SPEEDUP_VS_SEQUENTIAL:
        lines.append(
            f"Over the {JUDGED_ROUND_TRIP * 1000:g} ms link the sequential upload took "
            f"{seconds.get(f'sequential_over_{JUDGED_LINK}', float('nan')):.2f} s "
            f"({measurement.metrics.get(f'added_ms_per_request_over_{JUDGED_LINK}', float('nan')):.1f} ms "
            f"added per request) and ours {seconds.get(f'ours_over_{JUDGED_LINK}', float('nan')):.2f} s. "
            f"Azurite spent {seconds['azurite_cpu_ours']:.2f} s of CPU serving our loopback upload, which "
            f"caps any client at {ratios['speedup_bound_vs_sequential']:.1f}x the sequential upload on "
            "loopback; over the link ours cannot beat that CPU time either."
        )
    if ratios["throughput_vs_raw_pool"] < MIN_THROUGHPUT_VS_RAW_POOL:
        lines.append(
            f"Our upload used {seconds['client_cpu_ours']:.2f} s of client CPU in {seconds['ours']:.2f} s."
        )
    return lines


BENCHMARK = Benchmark(
    name=NAME,
    what="Upload 2,000 files of 16 KiB with BlobStorageHook.upload (BlobUploadFilesOperator's engine).",
    baseline=(
        "One upload_blob call per file in sequence (LocalFilesystemToWasb / WasbHook.load_file); a raw SDK "
        "thread pool, fastest of several sizes."
    ),
    method=(
        "All runs upload the same generated files to Azurite, each to a new prefix. Requests are counted "
        "by an azure-core policy after the retry policy; CPU time of Azurite is read from /proc."
    ),
    targets=(
        Target(
            f"ratios.speedup_vs_sequential_over_{JUDGED_LINK}",
            ">=",
            MIN_SPEEDUP_VS_SEQUENTIAL,
            f"at least {MIN_SPEEDUP_VS_SEQUENTIAL:g}x the sequential per-file upload, over a link adding a "
            f"{JUDGED_ROUND_TRIP * 1000:g} ms round trip to each request",
            f"{{seconds.ours_over_{JUDGED_LINK}}} vs {{seconds.sequential_over_{JUDGED_LINK}}}. On loopback "
            "(not judged): {ratios.speedup_vs_sequential} ({seconds.ours} vs {seconds.sequential_baseline}), "
            "against the {ratios.speedup_bound_vs_sequential} Azurite's CPU allows any client",
        ),
        Target(
            "ratios.throughput_vs_raw_pool",
            ">=",
            MIN_THROUGHPUT_VS_RAW_POOL,
            f"at least {MIN_THROUGHPUT_VS_RAW_POOL:g}x the throughput of the best raw thread pool",
            "{seconds.ours} vs {seconds.raw_thread_pool_best}",
        ),
    ),
    run=run,
    headline=("seconds.ours", "seconds.sequential_baseline", "seconds.raw_thread_pool_best"),
    explain=explain,
)
