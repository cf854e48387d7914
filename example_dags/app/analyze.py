"""Summary statistics of one CSV file of measurements; runs on a Batch node with only python3.

Usage: ``python3 analyze.py INPUT.csv OUTPUT_DIR``

The CSV has a header row; every column whose values all parse as numbers is analysed (count, sum,
mean, sample standard deviation, min, quartiles, max), other columns are ignored. The result goes to
``OUTPUT_DIR/<input stem>.stats.json`` and a one-line summary per column to stdout. Exits 2 on bad
input (no numeric column, unreadable file) with the reason on stderr.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from pathlib import Path


def quantile(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (the usual "type 7" definition)."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def describe(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "sum": math.fsum(ordered),
        "mean": statistics.fmean(ordered),
        "stdev": statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        "min": ordered[0],
        "p25": quantile(ordered, 0.25),
        "median": quantile(ordered, 0.5),
        "p75": quantile(ordered, 0.75),
        "max": ordered[-1],
    }


def numeric_columns(path: Path) -> dict[str, list[float]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path.name} has no data rows")
    columns: dict[str, list[float]] = {}
    for name in rows[0]:
        try:
            columns[name] = [float(row[name]) for row in rows]
        except (TypeError, ValueError):
            continue  # not a numeric column
    if not columns:
        raise ValueError(f"{path.name} has no numeric column")
    return columns


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: analyze.py INPUT.csv OUTPUT_DIR", file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    try:
        columns = numeric_columns(source)
    except (OSError, ValueError) as err:
        print(f"analyze: {err}", file=sys.stderr)
        return 2
    described = {name: describe(values) for name, values in columns.items()}
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"{source.stem}.stats.json"
    document = {"file": source.name, "columns": described}
    out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    for name, stats in described.items():
        print(
            f"{source.name} {name}: n={stats['count']} mean={stats['mean']:.4f} "
            f"stdev={stats['stdev']:.4f} min={stats['min']:.4f} max={stats['max']:.4f}"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
