"""Turn measurements into result records, console lines, ``results.json`` and the markdown report."""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import Any

from bench.harness import Benchmark, Measurement, rounded

_UNITS = {"seconds": "s", "ratios": "x", "requests": "", "metrics": ""}

#: Above this share of the machine's CPU taken by other processes, a benchmark is flagged as disturbed.
BUSY_SHARE = 0.10

#: The measuring conventions every benchmark follows (the per-benchmark sections add their own).
HOW_MEASURED = (
    "Our code and its baseline(s) run in the same `python -m bench` process, one after the other, "
    "against the same Azurite and Batch emulator; ratios compare those runs, never numbers from elsewhere.",
    "The Batch emulator runs in a process of its own (`bench/emulator_proc.py`), like a remote service, so "
    "its CPU time is not charged to the client code; Azurite is a Node.js process.",
    "HTTP requests are counted where they leave the client: an azure-core `SansIOHTTPPolicy` "
    "(`bench/counting.py`) placed after the retry policy, so every attempt counts. Our hooks take it "
    "through their `http_policies` argument, the raw SDK clients through `per_retry_policies` (Batch) "
    "or `_additional_pipeline_policies` (Storage).",
    "Times are wall-clock (`time.perf_counter`), medians of the repeats listed per benchmark; client and "
    "server CPU times come from `time.process_time` and `/proc/<pid>/stat`.",
    "The machine may be shared: each benchmark records the share of CPU time other processes took while "
    "it ran (from `/proc/stat`, minus this run's own processes) and is flagged when it exceeds "
    f"{BUSY_SHARE:.0%}.",
    "A missed target is reported as missed, with the measurements that explain it; targets are not "
    "adjusted to the results.",
)


def build_result(
    benchmark: Benchmark,
    measurement: Measurement,
    *,
    error: str | None,
    wall_seconds: float,
    load_before: float | None,
    load_after: float | None,
    other_cpu_share: float | None,
    machine: dict[str, Any],
    smoke: bool,
) -> dict[str, Any]:
    """One benchmark's record for ``results.json``: numbers, each target's verdict, and context."""
    targets = []
    for target in benchmark.targets:
        measured = None if error else measurement.value(target.metric)
        targets.append(
            {
                "metric": target.metric,
                "op": target.op,
                "limit": target.limit,
                "measured": rounded(measured),
                "met": error is None and target.check(measured),
                "description": target.description,
                "detail": "" if error else _resolve(target.detail, measurement),
            }
        )
    data = asdict(measurement)
    analysis: list[str] = []
    if error is None and benchmark.explain is not None and not all(item["met"] for item in targets):
        analysis = benchmark.explain(measurement)
    return {
        "name": benchmark.name,
        "what": benchmark.what,
        "baseline": benchmark.baseline,
        "method": benchmark.method,
        "smoke": smoke,
        "sizes": data["sizes"],
        "seconds": rounded(data["seconds"]),
        "requests": data["requests"],
        "ratios": rounded(data["ratios"]),
        "metrics": rounded(data["metrics"]),
        "baseline_sampled": data["baseline_sampled"],
        "target": "; ".join(target.description for target in benchmark.targets),
        "targets": targets,
        "met": error is None and all(item["met"] for item in targets),
        "error": error,
        "notes": data["notes"],
        "analysis": analysis,
        "wall_seconds": rounded(wall_seconds),
        "load_average_1m": {"before": load_before, "after": load_after},
        "other_processes_cpu_share": rounded(other_cpu_share, 2),
        "machine": machine,
    }


def target_tally(results: list[dict[str, Any]]) -> tuple[int, int]:
    """How many targets ``results`` (records from :func:`build_result`) have, and how many were met."""
    targets = [target for result in results for target in result["targets"]]
    return len(targets), sum(1 for target in targets if target["met"])


_PLACEHOLDER = re.compile(r"\{(\w+)\.(\w+)\}")


def _resolve(template: str, measurement: Measurement) -> str:
    """``template`` with each ``{section.key}`` replaced by that measured value, formatted."""

    def value(match: re.Match[str]) -> str:
        section, key = match.group(1), match.group(2)
        table = getattr(measurement, section, {})
        return format_value(table.get(key) if isinstance(table, dict) else None, _UNITS.get(section, ""))

    return _PLACEHOLDER.sub(value, template)


def format_value(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}{(' ' + unit) if unit and unit != 'x' else unit}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "n/a"
        if unit == "s" and abs(value) < 1:
            return f"{value * 1000:.3g} ms"
        text = f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return f"{text} {unit}" if unit == "s" else f"{text}{unit}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item, unit) for item in value) + "]"
    return str(value)


def _unit(metric: str) -> str:
    return _UNITS.get(metric.partition(".")[0], "")


def console_lines(result: dict[str, Any]) -> list[str]:
    """What the run prints for one benchmark: its numbers, then one line per target."""
    lines = []
    if result["error"]:
        lines.append(f"  ERROR {result['error']}")
    for section in ("seconds", "requests", "ratios"):
        values = result[section]
        if values:
            shown = ", ".join(
                f"{key}={format_value(value, _UNITS[section])}"
                for key, value in values.items()
                if not isinstance(value, list)
            )
            lines.append(f"  {section}: {shown}")
    share = result.get("other_processes_cpu_share")
    if share is not None:
        flag = " (busy machine: numbers may be slower)" if share > BUSY_SHARE else ""
        lines.append(f"  other processes took {share:.0%} of the machine's CPU meanwhile{flag}")
    for line in result.get("analysis") or []:
        lines.append(f"  why: {line}")
    for target in result["targets"]:
        verdict = "met   " if target["met"] else "MISSED"
        measured = format_value(target["measured"], _unit(target["metric"]))
        limit = format_value(float(target["limit"]), _unit(target["metric"]))
        if target.get("detail"):
            measured += f" ({target['detail']})"
        lines.append(
            f"  {verdict} {target['description']}: {target['metric']} = {measured} "
            f"(target {target['op']} {limit})"
        )
    return lines


def markdown(
    results: list[dict[str, Any]],
    machine: dict[str, Any],
    generated_at: str,
    smoke: bool,
    total_seconds: float | None = None,
) -> str:
    """The generated ``docs/benchmarks.md``."""
    met = sum(1 for result in results if result["met"])
    target_count, targets_met = target_tally(results)
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (python -m bench). Do not edit by hand: re-run it. -->",
        "",
    ]
    if smoke:
        out += ["**Smoke run with tiny sizes: these numbers only show that the harness works.**", ""]
    out += [
        f"Generated {generated_at} by `make bench`, which starts Azurite and the Batch emulator, runs each "
        "benchmark's code and its baseline in the same run, and writes these numbers and "
        "[`bench/results.json`](../bench/results.json). Nothing here is typed in by hand: targets are "
        "constants of the benchmark definitions in [`bench/`](../bench/), results are measured.",
        "",
        f"**{met} of {len(results)} benchmarks met all their targets ({targets_met} of {target_count} "
        "targets).**",
        "",
        "| Benchmark | Target | Measured | Met |",
        "|---|---|---|---|",
    ]
    for result in results:
        first = True
        for target in result["targets"]:
            name = f"[`{result['name']}`](#{result['name']})" if first else ""
            measured = format_value(target["measured"], _unit(target["metric"]))
            if target.get("detail"):
                measured += f" ({target['detail']})"
            verdict = "yes" if target["met"] else "**MISSED**"
            out.append(f"| {name} | {target['description']} | {measured} | {verdict} |")
            first = False
        if result["error"]:
            out.append(f"| `{result['name']}` | ran without error | {result['error']} | **ERROR** |")
    out += ["", "## How the numbers are taken", ""]
    out += [f"- {line}" for line in HOW_MEASURED]
    took = f" This run took {format_value(total_seconds, 's')}." if total_seconds is not None else ""
    out += [
        "",
        "Run it again with `make bench` (or `python -m bench`); `python -m bench --only NAME --output DIR` "
        "runs one benchmark and `python -m bench --smoke --output DIR` all of them with tiny sizes (the "
        f"test suite does this), neither touching the files committed here.{took}",
    ]
    out += ["", "## Machine", ""]
    out += [
        f"- CPUs: {machine.get('cpu_count')}, memory: {machine.get('memory_gib')} GiB",
        f"- Python {machine.get('python')} ({machine.get('python_implementation')}) on "
        f"{machine.get('platform')}",
        "- Packages: "
        + ", ".join(f"{name} {version}" for name, version in machine.get("packages", {}).items() if version),
        "",
    ]
    for result in results:
        out += _section(result)
    return "\n".join(out).rstrip() + "\n"


def _section(result: dict[str, Any]) -> list[str]:
    out = [
        f"## {result['name']}",
        "",
        f"**What:** {result['what']}",
        "",
        f"**Baseline:** {result['baseline']}",
        "",
        f"**Method:** {result['method']}",
        "",
    ]
    sizes = ", ".join(f"{key} {format_value(value)}" for key, value in result["sizes"].items())
    if sizes:
        out += [f"**Sizes:** {sizes}.", ""]
    if result["error"]:
        out += [f"**Error:** `{result['error']}`", ""]
    rows = [
        (section, key, value)
        for section in ("seconds", "requests", "ratios", "metrics")
        for key, value in result[section].items()
    ]
    if rows:
        out += ["| Measurement | Value |", "|---|---|"]
        for section, key, value in rows:
            out.append(f"| {section}.{key} | {format_value(value, _UNITS[section])} |")
        out.append("")
    if result.get("analysis"):
        out += ["**Why a target was missed** (read from the measurements above):", ""]
        out += [f"- {line}" for line in result["analysis"]]
        out.append("")
    for note in result["notes"]:
        out.append(f"- {note}")
    if result["baseline_sampled"]:
        out.append("- The baseline was measured on a sample and extrapolated (`baseline_sampled`).")
    load = result["load_average_1m"]
    out.append(
        f"- Wall time {format_value(result['wall_seconds'], 's')}; one-minute load average "
        f"{load['before']} before, {load['after']} after."
    )
    share = result.get("other_processes_cpu_share")
    if share is not None:
        out.append(
            f"- Other processes on the machine (not this run, Azurite or the emulator) used {share:.0%} "
            "of its CPU time meanwhile"
            + (": these numbers may be slower than on an idle machine." if share > BUSY_SHARE else ".")
        )
    out.append("")
    return out
