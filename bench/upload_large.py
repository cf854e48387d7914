"""``upload_large``: one 1 GiB file with our hook, against the raw SDK's parallel block upload.

After each of our uploads the same file is uploaded again, unchanged, with and without the digest
cache: reported (how long a rerun takes to find that nothing needs sending), not judged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.counting import RequestCounter
from bench.files import GIB, MIB, ensure_container, make_large_file, wait_until_settled
from bench.harness import Benchmark, Measurement, Target, Usage, median, ratio, stopwatch, usage

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "upload_large"
MIN_THROUGHPUT_VS_RAW = 0.9
RAW_MAX_CONCURRENCY = 8
CONTAINER = "bench-large"


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    file_bytes: int
    repeats: int


FULL = Sizes(file_bytes=GIB, repeats=3)
SMOKE = Sizes(file_bytes=8 * MIB, repeats=1)


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    sizes = SMOKE if smoke else FULL
    size = sizes.file_bytes
    path = make_large_file(env.scratch / "large.bin", size)
    wait_until_settled([path])
    service = env.raw_blob_service()
    ensure_container(service, CONTAINER)
    container = service.get_container_client(CONTAINER)

    ours: list[Usage] = []
    raw: list[Usage] = []
    reruns: list[float] = []
    reruns_uncached: list[float] = []
    ours_counter = RequestCounter()
    raw_counter = RequestCounter()

    def run_raw(attempt: int) -> None:
        raw_service = env.raw_blob_service(raw_counter)
        blob = raw_service.get_blob_client(CONTAINER, f"raw-{attempt}/{path.name}")
        raw_counter.reset()
        with usage(env.azurite_pid) as used, open(path, "rb") as handle:
            blob.upload_blob(handle, length=size, overwrite=True, max_concurrency=RAW_MAX_CONCURRENCY)
        raw.append(used)
        raw_service.close()
        container.delete_blob(f"raw-{attempt}/{path.name}")  # Azurite keeps blobs in memory

    def run_ours(attempt: int) -> None:
        hook = env.blob_hook(ours_counter)
        _ = hook.settings
        ours_counter.reset()
        with usage(env.azurite_pid) as used:
            result = hook.upload(CONTAINER, str(path), f"ours-{attempt}/")
        ours.append(used)
        if result.bytes_transferred != size:
            raise RuntimeError("our upload did not send the whole file")
        for use_cache, times in ((True, reruns), (False, reruns_uncached)):
            with stopwatch() as watch:
                again = hook.upload(CONTAINER, str(path), f"ours-{attempt}/", digest_cache=use_cache)
            if again.bytes_transferred:
                raise RuntimeError("the rerun of the unchanged file sent it again")
            times.append(watch.seconds)
        hook.close()
        container.delete_blob(f"ours-{attempt}/{path.name}")

    for attempt in range(sizes.repeats):
        for step in (run_raw, run_ours) if attempt % 2 == 0 else (run_ours, run_raw):
            step(attempt)
    service.close()
    path.unlink()

    ours_s, raw_s = median([run.seconds for run in ours]), median([run.seconds for run in raw])
    return Measurement(
        sizes={"file_bytes": size, "repeats": sizes.repeats},
        seconds={
            "ours": ours_s,
            "raw_sdk": raw_s,
            "client_cpu_ours": median([run.client_cpu for run in ours]),
            "client_cpu_raw": median([run.client_cpu for run in raw]),
            "azurite_cpu_ours": median([run.server_cpu for run in ours]),
            "azurite_cpu_raw": median([run.server_cpu for run in raw]),
            "ours_rerun_unchanged": median(reruns),
            "ours_rerun_unchanged_without_digest_cache": median(reruns_uncached),
        },
        requests={"ours": ours_counter.requests, "raw_sdk": raw_counter.requests},
        ratios={"throughput_vs_raw_sdk": ratio(raw_s, ours_s)},
        metrics={
            "ours_mib_per_s": size / ours_s / MIB,
            "raw_mib_per_s": size / raw_s / MIB,
            "ours_runs_s": [run.seconds for run in ours],
            "raw_runs_s": [run.seconds for run in raw],
        },
        notes=[
            f"Median of {sizes.repeats} run(s) each, raw and ours taking turns in alternating order; each "
            "blob is deleted after its run (Azurite keeps blobs in memory). Ours also computes the file's "
            "MD5 while uploading and records it (one extra request), which the raw upload does not.",
            "ours_rerun_unchanged: the same upload again right after ours, the file unchanged: one "
            "listing, and the MD5 from the digest cache. ..._without_digest_cache reads the whole file "
            "to compute it. Neither sends the file.",
        ],
    )


def explain(measurement: Measurement) -> list[str]:
    """CPU of the client and of Azurite during both uploads."""
    seconds = measurement.seconds
    if measurement.ratios["throughput_vs_raw_sdk"] >= MIN_THROUGHPUT_VS_RAW:
        return []
    return [
        f"Azurite used {seconds['azurite_cpu_ours']:.1f} s of CPU during ours ({seconds['ours']:.1f} s) and "
        f"{seconds['azurite_cpu_raw']:.1f} s during the raw upload ({seconds['raw_sdk']:.1f} s); this "
        f"process used {seconds['client_cpu_ours']:.2f} s (ours, which also hashes the file) against "
        f"{seconds['client_cpu_raw']:.2f} s, on a machine with {os.cpu_count()} CPUs."
    ]


BENCHMARK = Benchmark(
    name=NAME,
    what="Upload one 1 GiB file with BlobStorageHook.upload.",
    baseline=f"Raw SDK upload_blob(max_concurrency={RAW_MAX_CONCURRENCY}) on a default client.",
    method="The same generated file (already in the page cache for both) is uploaded to Azurite.",
    targets=(
        Target(
            "ratios.throughput_vs_raw_sdk",
            ">=",
            MIN_THROUGHPUT_VS_RAW,
            f"at least {MIN_THROUGHPUT_VS_RAW:g}x the raw SDK's throughput",
            "{seconds.ours} vs {seconds.raw_sdk}",
        ),
    ),
    run=run,
    headline=("seconds.ours", "seconds.raw_sdk"),
    explain=explain,
)
