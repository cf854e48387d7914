"""``python -m conformance.sdk [--results FILE] [pytest args...]``: run azure-batch's tests live."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.results import RESULTS_DIR
from conformance.sdk.suite import SuiteError, main


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.sdk", description=__doc__)
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR / "sdk.json", help="results file to write"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(".conformance"), help="download cache and extracted sdist"
    )
    options, pytest_args = parser.parse_known_args(argv)
    try:
        return main(options.work, options.results, pytest_args)
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
