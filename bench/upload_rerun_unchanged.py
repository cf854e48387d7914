"""``upload_rerun_unchanged``: the same 2,000 files uploaded again, unchanged, with our hook.

Baseline: the first upload of those files. The rerun lists the prefix once, compares size and MD5
of each file with its blob, and sends nothing that matches. The MD5s come from the upload's digest
cache, as on any rerun on the same machine; a rerun without it, which reads every file, is measured
as well.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from bench.counting import RequestCounter
from bench.files import KIB, ensure_container, make_small_files, wait_until_settled
from bench.harness import Benchmark, Measurement, Target, Usage, median, ratio, stopwatch, usage

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "upload_rerun_unchanged"
MAX_BYTES_SENT = 0
MAX_TIME_VS_FIRST = 0.10
CONTAINER = "bench-rerun"
#: The storage REST API version of the bare listing (Azurite runs with --skipApiVersionCheck).
_API_VERSION = "2025-05-05"
PREFIX = "data/"


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark is: full for ``make bench``, tiny for the smoke run."""

    files: int
    file_bytes: int
    repeats: int
    #: Extra pairs whose second step is Azurite's bare listing instead of our rerun.
    floor_repeats: int


FULL = Sizes(files=2_000, file_bytes=16 * KIB, repeats=5, floor_repeats=3)
SMOKE = Sizes(files=40, file_bytes=16 * KIB, repeats=1, floor_repeats=1)


def _listing_seconds(env: BenchEnvironment, container: str, prefix: str) -> float:
    """Time for the raw SDK to list the uploaded prefix: the read a rerun cannot avoid."""
    service = env.raw_blob_service()
    with stopwatch() as watch:
        for _blob in service.get_container_client(container).list_blobs(name_starts_with=prefix):
            pass
    service.close()
    return watch.seconds


def _azurite_listing_seconds(env: BenchEnvironment, container: str, prefix: str) -> float:
    """Azurite's own time to answer that listing: one bare HTTP GET, no SDK, nothing parsed.

    The floor under any rerun that learns what is uploaded from the service, whatever the client.
    """
    from azure.storage.blob import generate_container_sas

    sas = generate_container_sas(
        env.azurite.account_name,
        container,
        account_key=env.azurite.account_key,
        permission="rl",
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    url = urlsplit(f"{env.azurite.blob_endpoint}/{container}")
    query = f"restype=container&comp=list&prefix={quote(prefix, safe='')}&{sas}"
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    try:
        with stopwatch() as watch:
            connection.request("GET", f"{url.path}?{query}", headers={"x-ms-version": _API_VERSION})
            response = connection.getresponse()
            body = response.read()
    finally:
        connection.close()
    if response.status != 200 or b"<EnumerationResults" not in body:
        raise RuntimeError(f"Azurite answered the bare listing with HTTP {response.status}")
    return watch.seconds


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    sizes = SMOKE if smoke else FULL
    directory = env.scratch / "rerun"
    wait_until_settled(make_small_files(directory, sizes.files, sizes.file_bytes))
    admin = env.raw_blob_service()
    warm = env.blob_hook()
    # Azurite and the client stack warmed up on both paths measured: a first upload and its rerun.
    warm.upload(f"{CONTAINER}-warmup", str(directory), PREFIX)
    warm.upload(f"{CONTAINER}-warmup", str(directory), PREFIX)
    warm.close()
    admin.delete_container(f"{CONTAINER}-warmup")

    first: list[Usage] = []
    rerun: list[Usage] = []
    uncached: list[Usage] = []
    listing: list[float] = []
    azurite_listing: list[float] = []
    first_counter = RequestCounter()
    rerun_counter = RequestCounter()
    rerun_skipped = 0
    for attempt in range(sizes.repeats):
        container = f"{CONTAINER}-{attempt}"  # a new container each pair, removed afterwards
        ensure_container(admin, container)
        hook = env.blob_hook(first_counter)
        _ = hook.settings
        first_counter.reset()
        with usage(env.azurite_pid) as used:
            hook.upload(container, str(directory), PREFIX)
        first.append(used)
        hook.close()

        hook = env.blob_hook(rerun_counter)
        _ = hook.settings
        rerun_counter.reset()
        with usage(env.azurite_pid) as used:
            result = hook.upload(container, str(directory), PREFIX)
        rerun.append(used)
        rerun_skipped = len(result.skipped)
        hook.close()
        hook = env.blob_hook()
        _ = hook.settings
        with usage(env.azurite_pid) as used:
            hook.upload(container, str(directory), PREFIX, digest_cache=False)
        uncached.append(used)
        hook.close()
        listing.append(_listing_seconds(env, container, PREFIX))
        azurite_listing.append(_azurite_listing_seconds(env, container, PREFIX))
        admin.delete_container(container)

    # The same first upload, then Azurite's bare listing in the rerun's place: what the service alone
    # takes to answer the first listing after an upload (later ones are faster).
    first_listing: list[float] = []
    for attempt in range(sizes.floor_repeats):
        container = f"{CONTAINER}-floor-{attempt}"
        ensure_container(admin, container)
        hook = env.blob_hook()
        hook.upload(container, str(directory), PREFIX)
        hook.close()
        first_listing.append(_azurite_listing_seconds(env, container, PREFIX))
        admin.delete_container(container)
    admin.close()
    listing_s = median(listing)
    azurite_listing_s = median(azurite_listing)
    first_listing_s = median(first_listing)

    first_s, rerun_s = median([run.seconds for run in first]), median([run.seconds for run in rerun])
    uncached_s = median([run.seconds for run in uncached])
    return Measurement(
        sizes={"files": sizes.files, "file_bytes": sizes.file_bytes, "repeats": sizes.repeats},
        seconds={
            "ours_rerun": rerun_s,
            "first_upload": first_s,
            "ours_rerun_without_digest_cache": uncached_s,
            "client_cpu_rerun": median([run.client_cpu for run in rerun]),
            "azurite_cpu_rerun": median([run.server_cpu for run in rerun]),
            "raw_sdk_listing_alone": listing_s,
            "azurite_listing_alone": azurite_listing_s,
            "azurite_first_listing_after_upload": first_listing_s,
        },
        requests={"ours_rerun": rerun_counter.requests, "first_upload": first_counter.requests},
        ratios={
            "rerun_time_vs_first": ratio(rerun_s, first_s),
            "rerun_without_digest_cache_vs_first": ratio(uncached_s, first_s),
            "raw_listing_alone_vs_first": ratio(listing_s, first_s),
            "azurite_listing_alone_vs_first": ratio(azurite_listing_s, first_s),
            "azurite_first_listing_after_upload_vs_first": ratio(first_listing_s, first_s),
        },
        metrics={
            "rerun_bytes_sent": rerun_counter.bytes_sent,
            "first_bytes_sent": first_counter.bytes_sent,
            "rerun_files_skipped": rerun_skipped,
            "rerun_runs_s": [run.seconds for run in rerun],
            "first_runs_s": [run.seconds for run in first],
        },
        notes=[
            f"Median of {sizes.repeats} pairs (a first upload into a new empty container, then the same "
            "upload again; the container is removed after each pair). "
            "Bytes sent are the request bodies counted by an azure-core policy. The files are older "
            "than the digest cache's settling time, as files found by a rerun usually are.",
            "ours_rerun reads the MD5s from the digest cache the first upload wrote (the default). "
            "ours_rerun_without_digest_cache is the same rerun with digest_cache=False, which hashes "
            "every file; it runs right after ours_rerun, so Azurite answers it a second time.",
            "raw_sdk_listing_alone: the raw SDK listing the same prefix (median), what a rerun built on "
            "the SDK's list_blobs cannot go below.",
            "azurite_listing_alone: Azurite answering that listing to a bare HTTP GET (SAS-signed, no SDK, "
            "the body read but not parsed; median, after the rerun): the floor for any rerun that learns "
            "what is already uploaded from the service.",
            f"azurite_first_listing_after_upload: the same bare listing in the rerun's place, right after "
            f"a first upload (median of {sizes.floor_repeats} more pairs). Azurite takes longer to answer "
            "the first listing after an upload than later ones, and the rerun is measured in that place.",
        ],
    )


def explain(measurement: Measurement) -> list[str]:
    """How much of the rerun the one listing it cannot avoid takes, in Azurite and in the SDK."""
    seconds, ratios = measurement.seconds, measurement.ratios
    if ratios["rerun_time_vs_first"] <= MAX_TIME_VS_FIRST:
        return []
    floor = seconds["azurite_first_listing_after_upload"]
    first = seconds["first_upload"]
    line = (
        f"Azurite alone takes {floor * 1000:.0f} ms to answer the first listing after an upload "
        f"({ratios['azurite_first_listing_after_upload_vs_first']:.1%} of the first upload, {first:.2f} s; "
        f"{seconds['azurite_listing_alone'] * 1000:.0f} ms for a later one); "
        f"the rerun took {(seconds['ours_rerun'] - floor) * 1000:.0f} ms more (reading the listing and "
        f"walking the files, on the same CPUs as Azurite). It used {seconds['client_cpu_rerun']:.2f} s of "
        f"CPU in this process and {seconds['azurite_cpu_rerun']:.2f} s in Azurite. The raw SDK's listing "
        f"alone takes {seconds['raw_sdk_listing_alone']:.2f} s."
    )
    if ratios["azurite_first_listing_after_upload_vs_first"] > MAX_TIME_VS_FIRST:
        line += " A rerun that learns what is uploaded from one listing cannot meet the target here."
    return [line]


BENCHMARK = Benchmark(
    name=NAME,
    what="Upload the same 2,000 files of 16 KiB again with BlobStorageHook.upload (skip-unchanged).",
    baseline="The first upload of the same files.",
    method=(
        "Each pair uploads the files to a new prefix, then again with a new hook (no state kept in "
        "between): the rerun reads the blob listing and each file's MD5, then sends only changed files."
    ),
    targets=(
        Target(
            "metrics.rerun_bytes_sent",
            "<=",
            MAX_BYTES_SENT,
            "0 bytes sent on the rerun",
            "{requests.ours_rerun} requests, {metrics.rerun_files_skipped} files skipped",
        ),
        Target(
            "ratios.rerun_time_vs_first",
            "<=",
            MAX_TIME_VS_FIRST,
            f"the rerun takes at most {MAX_TIME_VS_FIRST:.0%} of the first run's time",
            "{seconds.ours_rerun} vs {seconds.first_upload}; Azurite alone answers the first listing after "
            "an upload in {seconds.azurite_first_listing_after_upload}, a later one in "
            "{seconds.azurite_listing_alone}; the raw SDK lists it in {seconds.raw_sdk_listing_alone}",
        ),
    ),
    run=run,
    headline=("seconds.ours_rerun", "seconds.first_upload"),
    explain=explain,
)
