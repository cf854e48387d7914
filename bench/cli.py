"""``python -m bench [--smoke] [--output DIR] [--only NAME ...]``: run the benchmark suite.

Without ``--output``, a complete full run writes ``bench/results.json`` and ``docs/benchmarks.md``
in the repository; a smoke run (tiny sizes) or a partial one (``--only``) never does, and writes to a
temporary directory unless ``--output`` names one. A missed target prints a ``MISSED`` line and is
recorded, but the exit code is non-zero only when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.environment import REPO_ROOT, BenchEnvironment, prepare_airflow

RESULTS_FILE = "results.json"
MARKDOWN_FILE = "benchmarks.md"


def _parser(names: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the harness (seconds)")
    parser.add_argument(
        "--output", type=Path, default=None, help="directory for results.json and benchmarks.md"
    )
    parser.add_argument("--only", action="append", choices=list(names), help="run only this benchmark")
    return parser


def _quiet_logs() -> None:
    """Keep the console to the benchmark lines: the code under test logs at INFO and WARNING."""
    import airflow.sdk  # noqa: F401  # Airflow configures logging on import; quieten it afterwards

    for name in ("airflow", "airflow.task", "airflow_batch_provider", "azure", "urllib3", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    airflow_home = tempfile.TemporaryDirectory(prefix="bench-airflow-home-")
    prepare_airflow(Path(airflow_home.name))

    from bench.harness import Contention, Measurement, load_average, machine_info, to_json
    from bench.report import build_result, console_lines, markdown, target_tally
    from bench.suite import BENCHMARKS

    args = _parser([benchmark.name for benchmark in BENCHMARKS]).parse_args(argv)
    _quiet_logs()
    if args.output is not None:
        results_path, markdown_path = args.output / RESULTS_FILE, args.output / MARKDOWN_FILE
    elif args.smoke or args.only:
        # Only a complete full run replaces the committed results.
        output = Path(tempfile.mkdtemp(prefix="bench-smoke-" if args.smoke else "bench-partial-"))
        results_path, markdown_path = output / RESULTS_FILE, output / MARKDOWN_FILE
    else:
        results_path, markdown_path = REPO_ROOT / "bench" / RESULTS_FILE, REPO_ROOT / "docs" / MARKDOWN_FILE
    selected = [b for b in BENCHMARKS if not args.only or b.name in args.only]

    machine = machine_info()
    mode = "smoke" if args.smoke else "full"
    print(
        f"bench: {len(selected)} benchmark(s), {mode} sizes, {machine['cpu_count']} CPU(s), "
        f"Python {machine['python']}, load {load_average()}",
        flush=True,
    )
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    errors = 0
    try:
        env = BenchEnvironment().start()
    except Exception:
        traceback.print_exc()
        print("bench: ERROR the local stack (Azurite + Batch emulator) did not start", file=sys.stderr)
        return 2
    try:
        for index, benchmark in enumerate(selected):
            print(f"\n[{benchmark.name}] {benchmark.what}", flush=True)
            error: str | None = None
            measurement = Measurement()
            contention: float | None = None
            load_before, clock = load_average(), time.perf_counter()
            try:
                if index:
                    env.fresh()
                load_before = load_average()
                clock = time.perf_counter()
                servers = (env.azurite_pid, env.emulator_pid)
                watch = Contention(own_before=Contention.own_cpu(servers))
                measurement = benchmark.run(env, args.smoke)
                contention = watch.other_share(servers)
            except Exception as err:
                traceback.print_exc()
                errors += 1
                error = f"{type(err).__name__}: {err}"
            result = build_result(
                benchmark,
                measurement,
                error=error,
                wall_seconds=time.perf_counter() - clock,
                load_before=load_before,
                load_after=load_average(),
                other_cpu_share=contention,
                machine=machine,
                smoke=args.smoke,
            )
            results.append(result)
            for line in console_lines(result):
                print(line, flush=True)
    finally:
        env.stop()

    generated_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    total_seconds = round(time.perf_counter() - started, 1)
    document = {
        "generated_at": generated_at,
        "mode": mode,
        "total_seconds": total_seconds,
        "machine": machine,
        "benchmarks": results,
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(to_json(document))
    markdown_path.write_text(markdown(results, machine, generated_at, args.smoke, total_seconds))

    missed = [
        (result["name"], target)
        for result in results
        for target in result["targets"]
        if not target["met"] and not result["error"]
    ]
    targets, met = target_tally(results)
    print()
    for name, target in missed:
        print(
            f"MISSED {name}: {target['description']} ({target['metric']} = {target['measured']}, "
            f"target {target['op']} {target['limit']:g})"
        )
    for result in results:
        if result["error"]:
            print(f"ERROR {result['name']}: {result['error']}")
    print(f"bench: wrote {results_path} and {markdown_path}")
    print(
        f"bench: {len(results)} benchmarks, {targets} targets: {met} met, {len(missed)} missed, "
        f"{errors} error(s) in {total_seconds} s"
    )
    airflow_home.cleanup()
    return 1 if errors else 0
