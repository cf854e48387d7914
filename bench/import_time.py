"""``import_time``: what a DAG file pays to import every operator and sensor of the provider, against
the official Microsoft Azure provider's Batch operator.

Each import runs in a fresh interpreter after ``airflow.sdk`` (which every DAG file imports anyway),
so only the provider's own modules and what they pull in are timed. Ours and the official provider's
take turns; each side's figure is the median of its runs. The target is judged on the CPU time the
imports take, which other processes on a busy machine do not inflate; wall-clock time is reported.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.harness import Benchmark, Measurement, Target, median, ratio

if TYPE_CHECKING:
    from bench.environment import BenchEnvironment

NAME = "import_time"
MAX_RATIO_VS_OFFICIAL = 1.0
FULL_RUNS = 9
SMOKE_RUNS = 1

#: Every public operator and sensor module of the provider.
OURS = (
    "airflow_batch_provider.operators.application",
    "airflow_batch_provider.operators.job",
    "airflow_batch_provider.operators.output",
    "airflow_batch_provider.operators.pool",
    "airflow_batch_provider.operators.run_job",
    "airflow_batch_provider.operators.storage",
    "airflow_batch_provider.operators.tasks",
    "airflow_batch_provider.sensors.job",
    "airflow_batch_provider.sensors.pool",
)
OFFICIAL = ("airflow.providers.microsoft.azure.operators.batch",)

_TIMED_IMPORT = """
import importlib, sys, time
import airflow.sdk
wall, cpu = time.perf_counter(), time.process_time()
for name in sys.argv[1:]:
    importlib.import_module(name)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


@dataclass(frozen=True)
class ImportTime:
    wall: float
    cpu: float


def import_time(modules: tuple[str, ...]) -> ImportTime:
    """Wall-clock and CPU seconds to import ``modules`` in a fresh interpreter after ``airflow.sdk``."""
    completed = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT, *modules], capture_output=True, text=True, check=True
    )
    wall, cpu = completed.stdout.strip().splitlines()[-1].split()
    return ImportTime(float(wall), float(cpu))


def run(env: BenchEnvironment, smoke: bool) -> Measurement:
    runs = SMOKE_RUNS if smoke else FULL_RUNS
    import_time(OURS), import_time(OFFICIAL)  # warm the file system cache and bytecode
    ours: list[ImportTime] = []
    official: list[ImportTime] = []
    for attempt in range(runs):
        pair = ((ours, OURS), (official, OFFICIAL))
        for times, modules in pair if attempt % 2 == 0 else reversed(pair):
            times.append(import_time(modules))
    ours_cpu, official_cpu = median([t.cpu for t in ours]), median([t.cpu for t in official])
    ours_wall, official_wall = median([t.wall for t in ours]), median([t.wall for t in official])
    return Measurement(
        sizes={"runs": runs, "modules_ours": len(OURS)},
        seconds={
            "ours_cpu": ours_cpu,
            "official_batch_operator_cpu": official_cpu,
            "ours_wall": ours_wall,
            "official_batch_operator_wall": official_wall,
        },
        ratios={
            "import_cpu_vs_official": ratio(ours_cpu, official_cpu),
            "import_wall_vs_official": ratio(ours_wall, official_wall),
        },
        metrics={
            "ours_wall_runs_s": [t.wall for t in ours],
            "official_wall_runs_s": [t.wall for t in official],
        },
        notes=[
            f"Each figure is the median of {runs} fresh interpreter(s), timed from after "
            "`import airflow.sdk` to the end of the imports; ours and the official provider alternate.",
            "Judged on CPU time (what the imports cost, whatever else the machine runs); wall-clock time "
            "is reported beside it.",
            "Ours: every operator and sensor module; the Azure SDKs load with the first client, not at "
            "import. Official: `airflow.providers.microsoft.azure.operators.batch` (AzureBatchOperator).",
        ],
    )


BENCHMARK = Benchmark(
    name=NAME,
    what="Import every operator and sensor module of the provider, as a DAG file does.",
    baseline=(
        "Importing the official provider's AzureBatchOperator (apache-airflow-providers-microsoft-azure)."
    ),
    method="Fresh interpreters after `import airflow.sdk`, alternating ours and the official import.",
    targets=(
        Target(
            "ratios.import_cpu_vs_official",
            "<=",
            MAX_RATIO_VS_OFFICIAL,
            "no slower to import than the official provider's Batch operator",
            "CPU {seconds.ours_cpu} vs {seconds.official_batch_operator_cpu}; wall clock "
            "{seconds.ours_wall} vs {seconds.official_batch_operator_wall}",
        ),
    ),
    run=run,
    headline=("seconds.ours_cpu", "seconds.official_batch_operator_cpu"),
)
