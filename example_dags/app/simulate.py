"""One point of a parameter sweep: iterate the logistic map x -> r*x*(1-x) and describe its orbit.

Usage: ``python3 simulate.py --point ID --rate R [--steps N] [--start X0] [--min-seconds S] --out DIR``

Writes ``DIR/<ID>.json`` with the mean and spread of the orbit after a burn-in, its Lyapunov exponent
(positive: chaotic) and the number of distinct values it settles on. Exit codes follow the sweep's
conventions: 0 done; 3 the rate is outside (0, 4], where the map leaves [0, 1], so the point is
skipped (the sweep treats 3 as "nothing to do"); 2 invalid arguments. ``--min-seconds`` makes the
point last at least that long, as a real simulation would (to watch a run wait in the triggerer).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

SKIP = 3
BURN_IN = 200


def simulate(rate: float, steps: int, start: float) -> dict[str, float | int | str]:
    x = start
    for _ in range(BURN_IN):
        x = rate * x * (1.0 - x)
    orbit: list[float] = []
    log_derivatives: list[float] = []
    for _ in range(steps):
        x = rate * x * (1.0 - x)
        orbit.append(x)
        log_derivatives.append(math.log(max(abs(rate * (1.0 - 2.0 * x)), 1e-300)))
    lyapunov = statistics.fmean(log_derivatives)
    return {
        "rate": rate,
        "steps": steps,
        "start": start,
        "mean": statistics.fmean(orbit),
        "stdev": statistics.pstdev(orbit),
        "lyapunov": lyapunov,
        "distinct_values": len({round(value, 6) for value in orbit}),
        "regime": "chaotic" if lyapunov > 0 else "periodic",
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--point", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--start", type=float, default=0.2)
    parser.add_argument("--min-seconds", type=float, default=0.0)
    parser.add_argument("--out", type=Path, required=True)
    started = time.monotonic()
    args = parser.parse_args(argv)  # exits 2 on invalid arguments
    if args.steps < 1 or not 0.0 < args.start < 1.0:
        parser.error("--steps must be at least 1 and --start inside (0, 1)")
    if not 0.0 < args.rate <= 4.0:
        print(f"point {args.point}: rate {args.rate} is outside (0, 4]; skipping it", file=sys.stderr)
        return SKIP
    result = {"point": args.point, **simulate(args.rate, args.steps, args.start)}
    time.sleep(max(0.0, args.min_seconds - (time.monotonic() - started)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.point}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(
        f"point {args.point}: rate={args.rate} mean={result['mean']:.6f} "
        f"lyapunov={result['lyapunov']:+.4f} ({result['regime']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
