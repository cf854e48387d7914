"""Run the storage round-trip example DAG for real, offline: ``make demo``.

Starts Azurite, makes a fresh Airflow home under ``.demo/`` with a SQLite metadata DB, runs
``airflow db migrate`` and ``airflow dags test storage_roundtrip`` as subprocesses, checks that the
downloaded files match the uploaded ones byte for byte, prints one summary line and stops Azurite.
Exits non-zero, saying what failed, when any step fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from airflow_batch_provider.testing.azurite import AzuriteServer  # noqa: E402

DAG_ID = "storage_roundtrip"
CONTAINER = "storage-roundtrip"
DEMO_DIR = REPO / ".demo"


class DemoFailure(Exception):
    """A step of the demo failed; the message says which and why."""


def run_step(name: str, command: list[str], env: dict[str, str], timeout: float) -> str:
    """Run one Airflow command; on failure raise with the tail of its output."""
    try:
        done = subprocess.run(
            command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise DemoFailure(f"{name} did not finish within {timeout:.0f}s") from err
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise DemoFailure(f"{name} exited with code {done.returncode}{explain(output)}")
    return output


def explain(output: str) -> str:
    """The last error line of a command's output, then its tail, for the failure message."""
    lines = output.splitlines()
    errors = [line.strip() for line in lines if re.match(r"^\s*[\w.]+(Error|Exception|Failure): ", line)]
    headline = f": {errors[-1]}" if errors else ""
    tail = "\n".join(lines[-30:])
    return f"{headline}\n--- last lines of its output ---\n{tail}"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    home, work = DEMO_DIR / "airflow-home", DEMO_DIR / "work"
    home.mkdir(parents=True)
    work.mkdir(parents=True)
    try:
        server = AzuriteServer().start()
    except Exception as err:
        print(f"demo: FAILED starting Azurite: {err}", file=sys.stderr)
        return 1
    try:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AZBLOB_DEFAULT": json.dumps(
                {"conn_type": "azblob", "extra": {"connection_string": server.connection_string}}
            ),
            "STORAGE_ROUNDTRIP_DIR": str(work),
            "STORAGE_ROUNDTRIP_CONTAINER": CONTAINER,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        airflow = [sys.executable, "-m", "airflow"]
        run_step("airflow db migrate", [*airflow, "db", "migrate"], env, timeout=300)
        output = run_step(f"airflow dags test {DAG_ID}", [*airflow, "dags", "test", DAG_ID], env, timeout=600)
        if "state=success" not in output.replace("'", "").replace(": ", "="):
            raise DemoFailure(f"the DAG run of {DAG_ID} did not succeed{explain(output)}")

        source, target = tree(work / "input"), tree(work / "output")
        if not source:
            raise DemoFailure(f"the DAG generated no input files in {work / 'input'}")
        if source != target:
            differ = sorted(
                set(source) ^ set(target)
                | {k for k in source.keys() & target.keys() if source[k] != target[k]}
            )
            raise DemoFailure(f"downloaded files differ from the uploaded ones: {differ[:5]}")
        total = sum(len(data) for data in source.values())
        seconds = time.monotonic() - started
        print(f"demo: ok files={len(source)} bytes={total} container={CONTAINER} seconds={seconds:.1f}")
        return 0
    except DemoFailure as err:
        print(f"demo: FAILED {err}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
