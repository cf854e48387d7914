"""What every benchmark shares: targets, measurements, timing helpers and machine information."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

Comparison = Literal["<=", ">=", "<", ">", "=="]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda measured, limit: measured <= limit,
    ">=": lambda measured, limit: measured >= limit,
    "<": lambda measured, limit: measured < limit,
    ">": lambda measured, limit: measured > limit,
    "==": lambda measured, limit: measured == limit,
}

#: Packages whose versions go into every result, so numbers can be compared across upgrades.
PACKAGES = (
    "airflow-batch-provider",
    "apache-airflow",
    "apache-airflow-task-sdk",
    "azure-batch",
    "azure-storage-blob",
    "azure-core",
    "aiohttp",
    "requests",
    "fastapi",
    "uvicorn",
)


@dataclass(frozen=True)
class Target:
    """A claim: the measured value at ``metric`` (``"section.key"``) compared with ``limit``."""

    metric: str
    op: Comparison
    limit: float
    description: str
    #: Shown next to the measured value, with ``{section.key}`` replaced by measured values.
    detail: str = ""

    def check(self, measured: float | None) -> bool:
        if measured is None or (isinstance(measured, float) and math.isnan(measured)):
            return False
        return _COMPARE[self.op](float(measured), float(self.limit))

    def text(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass
class Measurement:
    """What one benchmark run measured; targets look values up as ``section.key``."""

    sizes: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    baseline_sampled: bool | None = None

    def value(self, metric: str) -> float | None:
        section, _, key = metric.partition(".")
        table = getattr(self, section, None)
        if not isinstance(table, dict):
            raise KeyError(f"unknown measurement section {section!r} in {metric!r}")
        value = table.get(key)
        return None if value is None else float(value)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: what it runs, against which baseline, and the targets it must meet."""

    name: str
    what: str
    baseline: str
    method: str
    targets: tuple[Target, ...]
    run: Callable[[BenchEnvironment, bool], Measurement]
    #: The ``ratios``/``seconds`` keys shown in the summary table (ours, baseline, ratio).
    headline: tuple[str, ...] = ()
    #: Reads a measurement and says, from its numbers, why a target was missed (when they show it).
    explain: Callable[[Measurement], list[str]] | None = None


# -- timing ------------------------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    """Elapsed wall-clock seconds of a ``with`` block."""

    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


def process_cpu_seconds(pid: int | None, *, children: bool = False) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``); 0 when unknown.

    With ``children``, the time of its children that have ended and been waited for is added.
    """
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have run so far (user, nice, system; ``/proc/stat``).

    Interrupt handling (loopback network traffic, mostly) is left out: the kernel charges it to no
    process, so it could not be told apart from this run's own.
    """
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
        user, nice, system = (int(value) for value in fields[1:4])
        return (user + nice + system) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


@dataclass
class Contention:
    """How much CPU other processes took while a benchmark ran (its own servers excluded)."""

    started: float = field(default_factory=time.perf_counter)
    busy_before: float = field(default_factory=machine_busy_seconds)
    own_before: float = 0.0

    @staticmethod
    def own_cpu(pids: Sequence[int | None]) -> float:
        """CPU of this process and the given server processes, with their ended children."""
        return sum(process_cpu_seconds(pid, children=True) for pid in (os.getpid(), *pids))

    def other_share(self, pids: Sequence[int | None]) -> float | None:
        """Share of the machine's CPUs (0..1) busy with other processes since this was created."""
        seconds = time.perf_counter() - self.started
        busy = machine_busy_seconds() - self.busy_before
        if seconds <= 0 or busy <= 0:
            return None
        others = max(0.0, busy - (self.own_cpu(pids) - self.own_before))
        return others / seconds / (os.cpu_count() or 1)


@dataclass
class Usage:
    """Wall-clock seconds of a ``with`` block and the CPU seconds spent meanwhile, per process."""

    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0


@contextmanager
def usage(server_pid: int | None) -> Iterator[Usage]:
    """Measure a block: wall time, this process's CPU time and the server process's CPU time."""
    result = Usage()
    server_before = process_cpu_seconds(server_pid)
    client_before = time.process_time()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        result.client_cpu = time.process_time() - client_before
        result.server_cpu = process_cpu_seconds(server_pid) - server_before


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return float(ordered[rank])


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def rounded(value: Any, digits: int = 4) -> Any:
    """Round floats for the report (keeps ints, None and strings as they are)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    return value


# -- machine -----------------------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _azurite_version() -> str | None:
    try:
        from airflow_batch_provider.testing.azurite import find_azurite

        output = subprocess.run(
            [find_azurite(), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        return output.stdout.strip() or None
    except Exception:
        return None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    """CPU count, memory, Python, platform and the versions of the packages under test."""
    versions = {name: _package_version(name) for name in PACKAGES}
    versions["azurite"] = _azurite_version()
    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
    }


def load_average() -> float | None:
    """The one-minute load average, to spot a machine busy with other work during a run."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"
