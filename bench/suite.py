"""The benchmarks of ``make bench``, in the order they run."""

from __future__ import annotations

from bench import (
    emulator_big_inputs,
    emulator_throughput,
    import_time,
    live_output_poll,
    monitor_poll,
    task_submit_10k,
    triggers_concurrent,
    upload_large,
    upload_many_small,
    upload_rerun_unchanged,
)
from bench.harness import Benchmark

BENCHMARKS: tuple[Benchmark, ...] = (
    task_submit_10k.BENCHMARK,
    monitor_poll.BENCHMARK,
    live_output_poll.BENCHMARK,
    upload_many_small.BENCHMARK,
    upload_rerun_unchanged.BENCHMARK,
    upload_large.BENCHMARK,
    triggers_concurrent.BENCHMARK,
    emulator_throughput.BENCHMARK,
    emulator_big_inputs.BENCHMARK,
    import_time.BENCHMARK,
)
