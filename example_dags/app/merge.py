"""Merge the results of a parameter sweep into one table; runs after every point (Batch dependencies).

Usage: ``python3 merge.py RESULTS_DIR OUTPUT.json --expect ID[,ID...]``

Reads every ``*.json`` point result below RESULTS_DIR, sorts them by rate and writes OUTPUT.json with
the points, which expected points are missing (skipped ones upload nothing) and the rate where chaos
first appears. Exits 1 when no point produced a result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def load_points(root: Path) -> list[dict[str, Any]]:
    points = []
    for path in sorted(root.rglob("*.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict) and "point" in document and "rate" in document:
            points.append(document)
    return sorted(points, key=lambda point: (point["rate"], point["point"]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--expect", default="", help="comma-separated point ids")
    args = parser.parse_args(argv)
    points = load_points(args.results) if args.results.is_dir() else []
    expected = [item for item in args.expect.split(",") if item]
    found = {point["point"] for point in points}
    chaotic = [point["rate"] for point in points if point["regime"] == "chaotic"]
    missing = [item for item in expected if item not in found]
    merged = {
        "merged": len(points),
        "expected": expected,
        "missing": missing,
        "first_chaotic_rate": min(chaotic) if chaotic else None,
        "points": points,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    for point in points:
        print(
            f"{point['point']:>10}  r={point['rate']:<6} lyapunov={point['lyapunov']:+.4f}  {point['regime']}"
        )
    print(f"merged {len(points)} point(s); missing: {', '.join(missing) or 'none'}")
    if not points:
        print("merge: no point produced a result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
