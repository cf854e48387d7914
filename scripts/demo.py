"""Run the Azure Batch workflow and application-package examples offline: ``make demo``.

1. generates a handful of CSV files of sensor readings in ``.demo/input/``;
2. starts Azurite (Blob Storage) and the local Azure Batch emulator on free ports, with its HTTPS
   management endpoint and Entra ID token endpoint (the ``azbatch_arm`` service-principal connection);
3. makes a fresh Airflow home in ``.demo/airflow-home/`` with a SQLite metadata DB, runs
   ``airflow db migrate`` and then ``airflow dags test azure_batch_workflow`` as subprocesses, with the
   ``azbatch_default``/``azblob_default`` connections given as ``AIRFLOW_CONN_*`` variables;
4. checks the run: every Airflow task succeeded, one result per input in ``.demo/outputs/`` whose
   statistics match the ones recomputed here, the tasks' stdout/stderr collected, the job and the pool
   deleted by the teardown tasks;
5. runs ``airflow dags test azure_batch_application_package``: the program is published as an
   application package through ``azbatch_arm`` (tokens from the emulator), then run by three tasks;
6. stops both services and prints one line, ``demo: ok files=<n> tasks=<n> succeeded=<n> outputs=<n>
   app_package=<application>/<version> app_tasks=<n> seconds=<s>``.

Exits non-zero, saying what failed, when any step fails. ``.demo/`` is git-ignored; the Airflow
output of the DAG runs is kept in ``.demo/dags-test.log`` and ``.demo/app-package.log``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAG_ID = "azure_batch_workflow"
#: Everything the demo writes; ``AZURE_BATCH_DEMO_DIR`` moves it (the tests do).
DEMO_DIR = Path(os.environ.get("AZURE_BATCH_DEMO_DIR") or REPO / ".demo").resolve()
INPUT_DIR = DEMO_DIR / "input"
OUTPUT_DIR = DEMO_DIR / "outputs"
HOME_DIR = DEMO_DIR / "airflow-home"
RUN_LOG = DEMO_DIR / "dags-test.log"
APP_DAG_ID = "azure_batch_application_package"
APP_DIR = DEMO_DIR / "app-package"
APP_RUN_LOG = DEMO_DIR / "app-package.log"
#: Every Airflow task of the application-package example, all of which must succeed.
APP_DAG_TASKS = {
    "build_app",
    "publish_package",
    "create_pool",
    "create_job",
    "add_tasks",
    "wait_for_tasks",
    "delete_job",
    "delete_pool",
}
SENSORS = ("north", "south", "east", "west", "roof", "cellar")
ROWS = 240
NUMERIC_COLUMNS = ("minute", "temperature_c", "humidity_pct", "pressure_hpa")
#: Every Airflow task of the DAG, all of which must succeed.
DAG_TASKS = {
    "upload_inputs",
    "upload_app",
    "create_output_container",
    "create_pool",
    "create_job",
    "add_tasks",
    "wait_for_tasks",
    "collect_logs",
    "download_outputs",
    "summarize",
    "delete_job",
    "delete_pool",
}


class DemoFailure(Exception):
    """A step of the demo failed; the message says which and why."""


def show(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


# -- inputs and the expected results ------------------------------------------------------------------


def generate_inputs(directory: Path) -> list[Path]:
    """One CSV of a day's readings per sensor, deterministic (seeded), with a non-numeric column."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, sensor in enumerate(SENSORS):
        rng = random.Random(f"sensor-{sensor}")
        path = directory / f"readings-{sensor}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sensor", *NUMERIC_COLUMNS])
            for minute in range(0, ROWS * 6, 6):
                daily = math.sin(2 * math.pi * minute / 1440)
                writer.writerow(
                    [
                        sensor,
                        minute,
                        round(12 + 3 * index + 6 * daily + rng.gauss(0, 0.8), 3),
                        round(min(100.0, max(0.0, 60 - 15 * daily + rng.gauss(0, 4))), 2),
                        round(1013 + rng.gauss(0, 3.5), 1),
                    ]
                )
        paths.append(path)
    return paths


def expected_statistics(path: Path) -> dict[str, dict[str, float]]:
    """The statistics the Batch tasks must have computed, recomputed here independently."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    result = {}
    for column in NUMERIC_COLUMNS:
        values = [float(row[column]) for row in rows]
        q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
        result[column] = {
            "count": float(len(values)),
            "sum": math.fsum(values),
            "mean": statistics.fmean(values),
            "stdev": statistics.stdev(values),
            "min": min(values),
            "p25": q1,
            "median": q2,
            "p75": q3,
            "max": max(values),
        }
    return result


def check_outputs(inputs: list[Path], run_dir: Path) -> int:
    """Every input has exactly one correct result and its task logs; returns the number of results."""
    results: dict[str, Path] = {}
    for path in run_dir.rglob("*.stats.json"):
        name = json.loads(path.read_text()).get("file")
        if name in results:
            raise DemoFailure(f"two results for {name}: {results[name]} and {path}")
        results[name] = path
    missing = sorted({p.name for p in inputs} - set(results))
    unexpected = sorted(set(results) - {p.name for p in inputs})
    if missing or unexpected:
        raise DemoFailure(f"results missing for {missing}, unexpected for {unexpected}, in {run_dir}")
    for source in inputs:
        result = results[source.name]
        got = json.loads(result.read_text())["columns"]
        if "sensor" in got:
            raise DemoFailure(f"{result}: the non-numeric column 'sensor' was analysed")
        for column, stats in expected_statistics(source).items():
            for name, value in stats.items():
                actual = (got.get(column) or {}).get(name)
                if actual is None or not math.isclose(actual, value, rel_tol=1e-9, abs_tol=1e-9):
                    raise DemoFailure(f"{show(result)}: {column}.{name} is {actual}, expected {value}")
        logs = result.parent / "logs"
        stdout = logs / "stdout.txt"
        if not stdout.is_file() or source.name not in stdout.read_text():
            raise DemoFailure(f"the task's stdout.txt was not collected next to {show(result)}")
        if not (logs / "stderr.txt").is_file():
            raise DemoFailure(f"the task's stderr.txt was not collected next to {show(result)}")
    return len(results)


# -- running Airflow ------------------------------------------------------------------------------------


def run_step(
    name: str, command: list[str], env: dict[str, str], timeout: float, log: Path | None = None
) -> str:
    """Run one Airflow command, its output kept in ``log``; on failure raise with the tail of it."""
    try:
        done = subprocess.run(
            command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        output = _text(err.stdout) + _text(err.stderr)
        if log is not None:
            log.write_text(output)
        raise DemoFailure(f"{name} did not finish within {timeout:.0f}s{explain(output, log)}") from err
    output = done.stdout + done.stderr
    if log is not None:
        log.write_text(output)
    if done.returncode != 0:
        raise DemoFailure(f"{name} exited with code {done.returncode}{explain(output, log)}")
    return output


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def explain(output: str, log: Path | None = None) -> str:
    """The last error of a command's output (with its detail lines), then its tail."""
    lines = output.splitlines()
    pattern = re.compile(r"^\s*[\w.]+(Error|Exception|Failure|Timeout): ")
    positions = [index for index, line in enumerate(lines) if pattern.match(line)]
    headline = ""
    if positions:
        first = positions[-1]
        detail = [lines[first].strip()]
        for line in lines[first + 1 : first + 8]:
            if not line.startswith("  "):
                break
            detail.append(line.rstrip())
        headline = ": " + "\n".join(detail)
    tail = "\n".join(lines[-10:])
    where = f" (all of it in {show(log)})" if log is not None else ""
    return f"{headline}\n--- last lines of its output{where} ---\n{tail}"


def run_record(database: Path, dag_id: str = DAG_ID) -> tuple[dict[str, str], dict[str, Any]]:
    """Task states and ``return_value`` XComs of the (only) run of ``dag_id``, read from the metadata DB."""
    with sqlite3.connect(database) as db:
        states = {
            task_id: str(state)
            for task_id, state in db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (dag_id,)
            )
        }
        xcoms: dict[str, Any] = {}
        for task_id, value in db.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND key = 'return_value'", (dag_id,)
        ):
            while isinstance(value, str | bytes):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    break
            xcoms[task_id] = value
    return states, xcoms


def check_released(env: dict[str, str], job_id: str, pool_id: str) -> None:
    """The teardown tasks deleted the job and the pool (gone, or on their way out)."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW_CONN_")})
    from airflow_batch_provider.hooks.batch import BatchHook

    hook = BatchHook("azbatch_default")
    try:
        job = hook.get_job(job_id)
        pool = hook.get_pool(pool_id)
    finally:
        hook.close()
    if job is not None and str(job.get("state")).lower() != "deleting":
        raise DemoFailure(f"job {job_id} still exists ({job.get('state')}) after the teardown")
    if pool is not None and str(pool.get("state")).lower() != "deleting":
        raise DemoFailure(f"pool {pool_id} still exists ({pool.get('state')}) after the teardown")


def run_application_package(airflow: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Run the application-package example; returns ``<application>/<version>`` and the tasks it added."""
    app_env = {
        **env,
        "BATCH_APP_ARM_CONN_ID": "azbatch_arm",
        "BATCH_APP_WORK_DIR": str(APP_DIR),
        "BATCH_APP_POLL_SECONDS": "0.5",
    }
    command = [*airflow, "dags", "test", APP_DAG_ID]
    run_step(f"airflow dags test {APP_DAG_ID}", command, app_env, 600, log=APP_RUN_LOG)
    states, xcoms = run_record(HOME_DIR / "airflow.db", APP_DAG_ID)
    not_ok = {task: state for task, state in states.items() if state != "success"}
    if not_ok or set(states) != APP_DAG_TASKS:
        missing = sorted(APP_DAG_TASKS - set(states))
        raise DemoFailure(
            f"the {APP_DAG_ID} run did not succeed: task states {not_ok}, tasks missing {missing} "
            f"(its Airflow log: {show(APP_RUN_LOG)})"
        )
    published = xcoms.get("publish_package") or {}
    added = (xcoms.get("add_tasks") or {}).get("task_count")
    if not published.get("applicationId") or not published.get("version") or added != 3:
        raise DemoFailure(f"{APP_DAG_ID}: published {published}, added {added} tasks (expected 3)")
    return f"{published['applicationId']}/{published['version']}", int(added)


def demo(started: float) -> str:
    from airflow_batch_provider.testing.emulator import BatchEmulatorServer
    from airflow_batch_provider.testing.stack import LocalAzureStack

    inputs = generate_inputs(INPUT_DIR)
    HOME_DIR.mkdir(parents=True)
    OUTPUT_DIR.mkdir(parents=True)
    RUN_LOG.parent.mkdir(parents=True, exist_ok=True)
    try:
        stack = LocalAzureStack(batch=BatchEmulatorServer(management=True)).start()
    except Exception as err:
        raise DemoFailure(f"starting Azurite and the Batch emulator: {err}") from err
    try:
        env = {
            **os.environ,
            **stack.environ(),
            "AIRFLOW_HOME": str(HOME_DIR),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME_DIR / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AZURE_BATCH_WORKFLOW_INPUT_DIR": str(INPUT_DIR),
            "AZURE_BATCH_WORKFLOW_OUTPUT_DIR": str(OUTPUT_DIR),
            "AZURE_BATCH_WORKFLOW_POLL_SECONDS": "0.5",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        airflow = [sys.executable, "-m", "airflow"]
        run_step("airflow db migrate", [*airflow, "db", "migrate"], env, timeout=300)
        run_step(f"airflow dags test {DAG_ID}", [*airflow, "dags", "test", DAG_ID], env, 600, log=RUN_LOG)

        states, xcoms = run_record(HOME_DIR / "airflow.db")
        not_ok = {task: state for task, state in states.items() if state != "success"}
        if not_ok or set(states) != DAG_TASKS:
            missing = sorted(DAG_TASKS - set(states))
            raise DemoFailure(f"the DAG run did not succeed: task states {not_ok}, tasks missing {missing}")
        waited, summary = xcoms.get("wait_for_tasks") or {}, xcoms.get("summarize") or {}
        counts = waited.get("counts") or {}
        if counts.get("completed") != len(inputs) or counts.get("succeeded") != len(inputs):
            raise DemoFailure(f"expected {len(inputs)} successful Batch tasks, the wait saw {counts}")
        for task in ("delete_job", "delete_pool"):
            if (xcoms.get(task) or {}).get("outcome") not in ("deleted", "being_deleted"):
                raise DemoFailure(f"{task} returned {xcoms.get(task)}")
        check_released(env, xcoms["delete_job"]["job_id"], xcoms["delete_pool"]["pool_id"])
        package, app_tasks = run_application_package(airflow, env)
    finally:
        stack.stop()

    run_dirs = [path for path in OUTPUT_DIR.iterdir() if path.is_dir()]
    if len(run_dirs) != 1:
        raise DemoFailure(f"expected the results of one run in {OUTPUT_DIR}, found {len(run_dirs)}")
    outputs = check_outputs(inputs, run_dirs[0])
    if summary.get("outputs") != outputs or summary.get("files") != len(inputs):
        raise DemoFailure(f"the DAG's summary {summary} does not match {outputs} results")
    seconds = time.monotonic() - started
    return (
        f"demo: ok files={len(inputs)} tasks={counts['completed']} succeeded={counts['succeeded']} "
        f"outputs={outputs} app_package={package} app_tasks={app_tasks} seconds={seconds:.1f}"
    )


def main() -> int:
    started = time.monotonic()
    # Only what an earlier demo wrote is removed, never the directory itself.
    for directory in (INPUT_DIR, OUTPUT_DIR, HOME_DIR, APP_DIR):
        shutil.rmtree(directory, ignore_errors=True)
    RUN_LOG.unlink(missing_ok=True)
    APP_RUN_LOG.unlink(missing_ok=True)
    try:
        line = demo(started)
    except DemoFailure as err:
        print(f"demo: FAILED {err}", file=sys.stderr)
        return 1
    except Exception as err:
        print(f"demo: FAILED unexpectedly: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(f"outputs: {show(OUTPUT_DIR)}/ (Airflow log: {show(RUN_LOG)})")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
