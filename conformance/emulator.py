"""``python -m conformance.emulator``: the project's own emulator tests, as a conformance results file."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from conformance.results import RESULTS_DIR, from_junit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.emulator", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "emulator.json", help="results file")
    options, pytest_args = parser.parse_known_args(argv)
    junit = options.results.with_suffix(".junit.xml")
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)  # never report a previous run's results
    command = [sys.executable, "-m", "pytest", "tests/emulator", f"--junitxml={junit}", "-q", *pytest_args]
    code = subprocess.run(command).returncode
    if junit.exists():
        version = metadata.version("airflow-batch-provider")
        from_junit(junit, "Project emulator tests", version).write(options.results)
    return code


if __name__ == "__main__":
    sys.exit(main())
