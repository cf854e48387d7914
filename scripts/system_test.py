"""The provider on a real Airflow deployment: ``make system-test``.

1. makes sure PostgreSQL and Chromium are there (Debian packages, installed with ``apt-get`` when
   missing; that needs root, as on the project's machines), starts a throw-away PostgreSQL cluster,
   Azurite and the Batch emulator on free ports;
2. starts Airflow's ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` as separate
   processes (LocalExecutor, PostgreSQL metadata DB), with the example DAGs folder and the
   ``azbatch_default``/``azblob_default`` connections as ``AIRFLOW_CONN_*`` variables;
3. unpauses and triggers every example DAG through the REST API, as a user would: the workflow, a
   slow parameter sweep (its Batch tasks run for a while, so its wait defers to the triggerer, which is
   killed and restarted mid-wait), a sweep whose points all fail (the run must fail, its logs must
   name the failed task, its exit code and its stderr), and the storage round trip; then, with the
   system test's own DAG (``scripts/system_dags/``), a pool wait in the triggerer that reboots a node
   whose start task always fails: the triggerer is killed and restarted after the first reboot, and the
   node must boot three times in all, not four;
4. checks each run's state, task states, XComs and logs through the REST API;
5. opens the UI in headless Chromium (Playwright, the Debian binary, never a downloaded browser):
   the grid of a run, the sensor's log, the portal links and the ``azbatch`` connection form, with
   screenshots in ``.system-test/screenshots/`` (see ``scripts/system_browser.py``).

Prints ``system-test: ok ...`` and exits 0, or ``system-test: FAILED <what>`` and exits 1. Everything
it writes (logs of every process, screenshots) stays in ``.system-test/``, which is git-ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
# scripts/system_browser.py imports this module by name: run as a script, it is this very module.
sys.modules.setdefault("system_test", sys.modules[__name__])

WORK_DIR = Path(os.environ.get("AZURE_BATCH_SYSTEM_TEST_DIR") or REPO / ".system-test").resolve()
LOG_DIR = WORK_DIR / "logs"
SCREENSHOT_DIR = WORK_DIR / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
#: Seconds each point of the slow sweep runs: long enough to kill and replace the triggerer mid-wait.
SLOW_POINT_SECONDS = 45
#: How long every run together may take.
RUNS_TIMEOUT = 420
#: A dead triggerer's triggers go to another one after this many seconds without its heartbeat.
TRIGGERER_HEALTH_SECONDS = 10


class SystemTestFailure(Exception):
    """A check of the system test failed; the message says which and what was seen."""


def say(message: str) -> None:
    print(f"system-test: {message}", flush=True)


# -- machine prerequisites -----------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL server binaries (Debian layout)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3])
    )
    return versions[-1].parent if versions else None


def ensure_debian_packages() -> None:
    """Install PostgreSQL and Chromium from Debian's packages when they are missing (needs root)."""
    missing = []
    if postgres_bin() is None:
        missing.append("postgresql")
    if not CHROMIUM.exists():
        missing.append("chromium")
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemTestFailure(
            f"{', '.join(missing)} not installed, and installing needs root: "
            f"sudo apt-get install -y {' '.join(missing)}"
        )
    say(f"installing {' '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemTestFailure(
                f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )


# -- services ------------------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster on a free port, trusting local connections, database ``airflow``."""

    port: int
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="airflow-system-pg-")))

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def _run(self, *command: str) -> None:
        # The server refuses to run as root: as root, run it as the packages' ``postgres`` user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemTestFailure(
                f"{Path(command[0]).name} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}"
            )

    def start(self) -> None:
        binaries = postgres_bin()
        assert binaries is not None
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run(str(binaries / "initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        log = self.directory / "postgres.log"
        self._run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        self._run(
            str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow", "airflow"
        )

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        db = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="airflow")
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            db.close()

    def stop(self) -> None:
        binaries = postgres_bin()
        if binaries is not None and (self.directory / "data" / "postmaster.pid").exists():
            try:
                self._run(str(binaries / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop")
            except SystemTestFailure as err:
                say(f"warning: stopping PostgreSQL: {err}")
        log = self.directory / "postgres.log"
        if log.exists():
            shutil.copy(log, LOG_DIR / "postgres.log")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class AirflowDeployment:
    """Airflow's components as separate processes sharing one environment; logs in ``.system-test/logs``."""

    env: dict[str, str]
    api_port: int
    database: Postgres
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def airflow(self, *args: str, timeout: float = 300) -> str:
        command = [sys.executable, "-m", "airflow", *args]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise SystemTestFailure(
                f"airflow {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}"
            )
        return done.stdout

    def start(self, component: str, *args: str) -> None:
        self.starts[component] = self.starts.get(component, 0) + 1
        log = (LOG_DIR / f"{component}-{self.starts[component]}.log").open("wb")
        self.processes[component] = subprocess.Popen(
            [sys.executable, "-m", "airflow", component, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches its children too
        )
        log.close()

    def log_of(self, component: str, start: int | None = None) -> str:
        number = start or self.starts.get(component, 1)
        return (LOG_DIR / f"{component}-{number}.log").read_text(errors="replace")

    def kill(self, component: str) -> None:
        """SIGKILL a component and every process it started, as a crashed machine would."""
        process = self.processes.pop(component)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                tail = self.log_of(component)[-3000:]
                raise SystemTestFailure(f"airflow {component} exited with code {process.returncode}:\n{tail}")

    def stop(self) -> None:
        for component, process in list(self.processes.items()):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.processes.pop(component, None)


# -- the REST API --------------------------------------------------------------------------------------


@dataclass
class AirflowApi:
    """The parts of Airflow's REST API (``/api/v2``) the checks use, with a JWT from the auth manager."""

    base_url: str
    token: str = ""

    def request(self, method: str, path: str, body: Any = None, accept: str = "application/json") -> Any:
        headers = {"Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:2000]
            raise SystemTestFailure(f"{method} {path} answered {err.code}: {detail}") from err
        if accept != "application/json":
            return payload.decode(errors="replace")
        return json.loads(payload) if payload else None

    def login(self) -> None:
        """A token without credentials: the deployment runs the simple auth manager with all admins."""
        self.token = self.request("GET", "/auth/token")["access_token"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances?limit=200")
        return list(answer["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"
            f"/xcomEntries/return_value?map_index={map_index}&deserialize=true&stringify=false"
        )
        return self.request("GET", path)["value"]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}"
            f"/logs/{try_number}?map_index={map_index}&full_content=true"
        )
        content = self.request("GET", path)["content"]
        lines = []
        for entry in content if isinstance(content, list) else [content]:
            if isinstance(entry, dict):
                extra = {k: v for k, v in entry.items() if k not in ("event", "timestamp", "level", "logger")}
                lines.append(
                    " ".join(filter(None, [str(entry.get("event", "")), json.dumps(extra) if extra else ""]))
                )
            else:
                lines.append(str(entry))
        return "\n".join(lines)

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/links"
        return dict(self.request("GET", path)["extra_links"])


def quote(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; raise naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except SystemTestFailure:
            raise
        except Exception as err:  # a component still starting: connection refused, 503...
            last_error = err
        else:
            if result:
                return result
        time.sleep(interval)
    raise SystemTestFailure(f"{what} did not happen within {timeout:.0f}s (last error: {last_error})")


# -- the runs ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One triggered DAG run and what it must end as."""

    dag_id: str
    run_id: str
    conf: dict[str, Any]
    expect: str = "success"
    #: Task states seen while it ran (task id -> every state seen), to prove it deferred.
    seen: dict[str, set[str]] = field(default_factory=dict)
    #: The triggerer jobs that ran its trigger: before and after the restart.
    triggerers: list[int | None] = field(default_factory=list)

    def observe(self, instances: list[dict[str, Any]]) -> None:
        for instance in instances:
            self.seen.setdefault(instance["task_id"], set()).add(str(instance["state"]))


def plan_runs(work: Path) -> list[Run]:
    """Every example DAG, the sweep twice: slow (it defers) and failing (every point exits 2)."""
    from demo import generate_inputs

    inputs = work / "workflow-input"
    generate_inputs(inputs)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return [
        Run(
            "azure_batch_workflow",
            f"system-{stamp}-workflow",
            {"input_dir": str(inputs), "output_dir": str(work / "workflow-output")},
        ),
        Run(
            "azure_batch_parameter_sweep",
            f"system-{stamp}-slow-sweep",
            {"min_seconds": SLOW_POINT_SECONDS, "output_dir": str(work / "sweep-output")},
        ),
        Run(
            "azure_batch_parameter_sweep",
            f"system-{stamp}-failing-sweep",
            {"start": 1.5, "rates": [3.1, 3.6], "output_dir": str(work / "failing-sweep-output")},
            expect="failed",
        ),
        Run("storage_roundtrip", f"system-{stamp}-storage", {"work_dir": str(work / "roundtrip")}),
        Run(
            "azure_batch_application_package", f"system-{stamp}-app-package", {"work_dir": str(work / "app")}
        ),
        Run(
            "system_pool_reboots",
            f"system-{stamp}-reboots",
            {"pool_id": f"system-reboots-{stamp.lower()}"},
            expect="failed",
        ),
    ]


def trigger(api: AirflowApi, run: Run) -> None:
    api.request(
        "POST",
        f"/api/v2/dags/{run.dag_id}/dagRuns",
        {"dag_run_id": run.run_id, "logical_date": None, "conf": run.conf},
    )


def task_states(api: AirflowApi, run: Run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for instance in api.task_instances(run.dag_id, run.run_id):
        states.setdefault(instance["task_id"], []).append(str(instance["state"]))
    return states


def restart_triggerer_mid_wait(api: AirflowApi, airflow: AirflowDeployment, run: Run, sensor: str) -> None:
    """Wait until ``sensor`` defers, SIGKILL the triggerer, start a new one: the run must go on."""

    def deferred() -> bool:
        instances = api.task_instances(run.dag_id, run.run_id)
        run.observe(instances)
        state = api.dag_run(run.dag_id, run.run_id)["state"]
        if state in ("success", "failed"):
            raise SystemTestFailure(f"{run.run_id} ended ({state}) before {sensor} deferred: {run.seen}")
        return any(i["task_id"] == sensor and i["state"] == "deferred" for i in instances)

    def triggerer() -> int | None:
        rows = airflow.database.query(
            "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
            run.dag_id,
            run.run_id,
            sensor,
        )
        return rows[0][0] if rows else None

    wait_until(f"{sensor} of {run.run_id} deferring", deferred, timeout=240)
    first = wait_until(f"a triggerer taking {sensor}'s trigger", triggerer, timeout=60)
    time.sleep(2)  # it polls Batch
    say(f"{run.run_id}: {sensor} deferred (triggerer {first}); killing the triggerer, starting a new one")
    airflow.kill("triggerer")
    time.sleep(2)
    airflow.start("triggerer")
    second = wait_until(
        f"the new triggerer taking over {sensor}'s trigger",
        lambda: (triggerer() or first) != first,
        timeout=TRIGGERER_HEALTH_SECONDS + 60,
    )
    run.triggerers = [first, triggerer() if second else None]
    say(f"{run.run_id}: the trigger moved to triggerer {run.triggerers[1]}")


def batch_client(stack: Any) -> Any:
    """A plain SDK client on the emulator, to look at what the DAGs left in Batch."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    batch = stack.batch
    return BatchClient(batch.endpoint, AzureNamedKeyCredential(batch.account_name, batch.account_key))


def node_boots(client: Any, pool_id: str) -> int:
    """How often the only node of ``pool_id`` booted (its start task counts the boots)."""
    (node,) = list(client.list_nodes(pool_id))
    return b"".join(client.download_node_file(pool_id, node.id, "shared/boots")).decode().count("boot")


def restart_triggerer_after_a_reboot(
    api: AirflowApi, airflow: AirflowDeployment, client: Any, run: Run
) -> None:
    """Wait until ``create_pool`` deferred, its trigger rebooted the node once and the task deferred
    again with that reboot recorded (a new trigger row); then SIGKILL the triggerer and start a new
    one. The trigger the new triggerer re-creates must not reboot the node more than once more."""
    pool_id = run.conf["pool_id"]
    boot_times: set[str] = set()
    triggers: list[int] = []

    def trigger_id() -> int | None:
        rows = airflow.database.query(
            "SELECT trigger_id FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            run.dag_id,
            run.run_id,
            "create_pool",
        )
        return rows[0][0] if rows else None

    def deferred_again_after_a_reboot() -> bool:
        run.observe(api.task_instances(run.dag_id, run.run_id))
        if api.dag_run(run.dag_id, run.run_id)["state"] in ("success", "failed"):
            raise SystemTestFailure(f"{run.run_id} ended before the restart: {run.seen}")
        current = trigger_id()
        if current is not None and current not in triggers:
            triggers.append(current)
        with contextlib.suppress(Exception):  # no pool or node yet
            boot_times.update(str(node.last_boot_time) for node in client.list_nodes(pool_id))
        return len(boot_times) >= 2 and len(triggers) >= 2

    wait_until(
        f"create_pool of {run.run_id} deferring again after a reboot", deferred_again_after_a_reboot, 240
    )
    say(
        f"{run.run_id}: the node of {pool_id} was rebooted once and create_pool deferred again "
        f"(triggers {triggers}); killing the triggerer, starting a new one"
    )
    airflow.kill("triggerer")
    time.sleep(2)
    airflow.start("triggerer")


def check_pool_reboots(api: AirflowApi, client: Any, run: Run) -> None:
    """The wait failed after exactly two reboots, across the triggerer restart."""
    log = api.log(run.dag_id, run.run_id, "create_pool", 1)
    expect(
        "2 reboot(s) were tried before giving up" in log and "the mirror is down" in log,
        f"{run.run_id}: the create_pool log does not explain the failure:\n{log[-3000:]}",
    )
    expect(
        "start-task reboot(s) made so far" in log,
        f"{run.run_id}: the create_pool log shows no checkpoint:\n{log[-3000:]}",
    )
    boots = node_boots(client, run.conf["pool_id"])
    expect(boots == 3, f"{run.run_id}: the node booted {boots} times, not 3 (a reboot was repeated)")


def wait_for_runs(api: AirflowApi, airflow: AirflowDeployment, runs: list[Run], timeout: float) -> None:
    pending = {run.run_id: run for run in runs}

    def all_done() -> bool:
        airflow.check_alive()
        for run_id, run in list(pending.items()):
            run.observe(api.task_instances(run.dag_id, run_id))
            if api.dag_run(run.dag_id, run_id)["state"] in ("success", "failed"):
                say(f"{run_id}: {api.dag_run(run.dag_id, run_id)['state']}")
                del pending[run_id]
        return not pending

    wait_until(f"the end of the runs {sorted(pending)}", all_done, timeout=timeout, interval=2)


# -- checks --------------------------------------------------------------------------------------------


def expect(condition: object, message: str) -> None:
    if not condition:
        raise SystemTestFailure(message)


def check_workflow(api: AirflowApi, run: Run) -> None:
    states = task_states(api, run)
    expect(all(s == ["success"] for s in states.values()), f"{run.run_id}: task states {states}")
    waited = api.xcom(run.dag_id, run.run_id, "wait_for_tasks")
    summary = api.xcom(run.dag_id, run.run_id, "summarize")
    files = len(list(Path(run.conf["input_dir"]).glob("*.csv")))
    expect(waited["counts"]["succeeded"] == files, f"{run.run_id}: the wait saw {waited['counts']}")
    expect(summary["outputs"] == files, f"{run.run_id}: summary {summary}")
    # summarize reads the results from Blob Storage; the optional local download comes after it.
    times = {i["task_id"]: i for i in api.task_instances(run.dag_id, run.run_id)}
    summarized, downloaded = times["summarize"]["end_date"], times["download_outputs"]["start_date"]
    expect(
        datetime.fromisoformat(summarized) <= datetime.fromisoformat(downloaded),
        f"{run.run_id}: download_outputs started at {downloaded}, before summarize ended at {summarized}",
    )
    collected = api.log(run.dag_id, run.run_id, "collect_logs", 1)
    expect(
        "readings-north.csv" in collected,
        f"{run.run_id}: collect_logs has no task stdout:\n{collected[-2000:]}",
    )
    for teardown in ("delete_job", "delete_pool"):
        outcome = api.xcom(run.dag_id, run.run_id, teardown)["outcome"]
        expect(outcome in ("deleted", "being_deleted"), f"{run.run_id}: {teardown} returned {outcome}")


def check_slow_sweep(api: AirflowApi, airflow: AirflowDeployment, run: Run) -> None:
    states = task_states(api, run)
    expect(all(set(s) == {"success"} for s in states.values()), f"{run.run_id}: task states {states}")
    expect("deferred" in run.seen.get("wait_for_sweep", set()), f"{run.run_id}: never deferred: {run.seen}")
    checked = api.xcom(run.dag_id, run.run_id, "check_sweep")
    expect(
        checked["merged"] == 5 and checked["skipped"] == ["point-05"], f"{run.run_id}: check_sweep {checked}"
    )
    expect(airflow.starts.get("triggerer") == 3, "the triggerer was not restarted twice")
    expect(
        len(run.triggerers) == 2 and None not in run.triggerers and run.triggerers[0] != run.triggerers[1],
        f"{run.run_id}: the trigger did not move to the new triggerer: {run.triggerers}",
    )
    links = api.links(run.dag_id, run.run_id, "wait_for_sweep")
    expect(
        "portal.azure.com" in str(links.get("Azure Batch job")),
        f"{run.run_id}: the sensor's links are {links}",
    )
    sensor_log = api.log(run.dag_id, run.run_id, "wait_for_sweep", 1)
    expect(
        "defer" in sensor_log.lower(),
        f"{run.run_id}: the sensor's log shows no deferral:\n{sensor_log[-2000:]}",
    )


def failed_task_logs(api: AirflowApi, run: Run) -> dict[str, str]:
    """The log of every failed task instance of ``run``, by ``task_id[map_index]``."""
    logs = {}
    for instance in api.task_instances(run.dag_id, run.run_id):
        if instance["state"] == "failed":
            key = f"{instance['task_id']}[{instance['map_index']}]"
            logs[key] = api.log(
                run.dag_id,
                run.run_id,
                instance["task_id"],
                instance["try_number"] or 1,
                instance["map_index"],
            )
    return logs


def describe_failures(api: AirflowApi, run: Run) -> str:
    """The end of each failed task's log, so a failure in CI explains itself."""
    try:
        logs = failed_task_logs(api, run)
    except Exception as err:  # diagnostics must not hide the failure they explain
        return f"(could not read the failed tasks' logs: {err})"
    return "\n".join(f"--- log of failed {key}:\n{text[-2500:]}" for key, text in logs.items())


def check_failing_sweep(api: AirflowApi, run: Run) -> str:
    """The run failed, and the logs name a failed point with its exit code and stderr; returns that log."""
    states = task_states(api, run)
    # The first failed point ends the job: whichever step touches it next (a mapped add_point, the
    # add_merge or the wait) fails, and the steps after it do not run.
    failed = [
        task for task in ("add_point", "add_merge", "wait_for_sweep") if "failed" in states.get(task, [])
    ]
    expect(failed, f"{run.run_id}: no step failed: {states}\n{describe_failures(api, run)}")
    expect(states.get("check_sweep") == ["upstream_failed"], f"{run.run_id}: check_sweep ran: {states}")
    expect(
        states.get("delete_job") == ["success"] and states.get("delete_pool") == ["success"],
        f"{run.run_id}: teardowns {states}",
    )
    logs = failed_task_logs(api, run)
    explained = {
        key: text
        for key, text in logs.items()
        if "point-0" in text and "exit code 2" in text.lower() and "--start" in text
    }
    expect(
        explained,
        f"{run.run_id}: no failed task's log names the failed point, exit code 2 and stderr:\n"
        + "\n".join(f"--- {k}\n{v[-1500:]}" for k, v in logs.items()),
    )
    return next(iter(explained))


def check_application_package(api: AirflowApi, run: Run) -> None:
    """Published through Resource Manager with tokens from the emulator's Entra ID endpoint."""
    states = task_states(api, run)
    expect(all(s == ["success"] for s in states.values()), f"{run.run_id}: task states {states}")
    published = api.xcom(run.dag_id, run.run_id, "publish_package")
    expect(
        published == {"applicationId": "wordcount", "version": "1.0"}, f"{run.run_id}: published {published}"
    )
    added = api.xcom(run.dag_id, run.run_id, "add_tasks")
    expect(added["task_count"] == 3, f"{run.run_id}: add_tasks returned {added}")


def check_storage(api: AirflowApi, run: Run) -> None:
    states = task_states(api, run)
    expect(all(s == ["success"] for s in states.values()), f"{run.run_id}: task states {states}")
    compared = api.xcom(run.dag_id, run.run_id, "compare")
    expect(compared == 13, f"{run.run_id}: compare returned {compared}")


# -- the whole test ------------------------------------------------------------------------------------


def dags_folder() -> Path:
    """Every example DAG, and the system test's own (``scripts/system_dags/``), linked into one folder."""
    folder = WORK_DIR / "dags"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for source in (REPO / "example_dags", REPO / "scripts" / "system_dags"):
        for entry in source.iterdir():
            if entry.name != "__pycache__":
                (folder / entry.name).symlink_to(entry)
    return folder


@contextmanager
def deployment(stack_env: dict[str, str]) -> Iterator[AirflowDeployment]:
    from airflow_batch_provider.testing.lifecycle import free_port
    from airflow_batch_provider.testing.stack import ARM_CONN_ID

    postgres = Postgres(port=free_port())
    postgres.start()
    home = WORK_DIR / "airflow-home"
    api_port = free_port()
    env = {
        **os.environ,
        **stack_env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__FERNET_KEY": "",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_SECONDS),
        "AZURE_BATCH_WORKFLOW_POLL_SECONDS": "2",
        "AZURE_BATCH_SWEEP_POLL_SECONDS": "2",
        "BATCH_APP_POLL_SECONDS": "2",
        "BATCH_APP_ARM_CONN_ID": ARM_CONN_ID,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    airflow = AirflowDeployment(env=env, api_port=api_port, database=postgres)
    try:
        say("airflow db migrate")
        airflow.airflow("db", "migrate")
        airflow.start("api-server", "--port", str(api_port))
        airflow.start("scheduler")
        airflow.start("dag-processor")
        airflow.start("triggerer")
        yield airflow
    finally:
        airflow.stop()
        postgres.stop()


def system_test(started: float) -> str:
    from airflow_batch_provider.testing.emulator import BatchEmulatorServer
    from airflow_batch_provider.testing.stack import (
        EMULATED_RESOURCE_GROUP,
        EMULATED_SUBSCRIPTION_ID,
        LocalAzureStack,
    )

    ensure_debian_packages()
    with ExitStack() as cleanup:
        say("starting Azurite and the Batch emulator")
        # With the management plane and its Entra ID endpoint: the application package example
        # publishes through the azbatch_arm service-principal connection, offline, as on Azure.
        stack = LocalAzureStack(batch=BatchEmulatorServer(management=True)).start()
        cleanup.callback(stack.stop)
        connections = stack.airflow_connections()
        # Portal links need the account's subscription and resource group.
        connections["azbatch_default"]["extra"] = {
            "subscription_id": EMULATED_SUBSCRIPTION_ID,
            "resource_group": EMULATED_RESOURCE_GROUP,
        }
        stack_env = {f"AIRFLOW_CONN_{key.upper()}": json.dumps(value) for key, value in connections.items()}
        airflow = cleanup.enter_context(deployment(stack_env))
        api = AirflowApi(airflow.base_url)
        wait_until("the API server answering", lambda: api.request("GET", "/api/v2/monitor/health"), 180)
        api.login()
        runs = plan_runs(WORK_DIR)
        dag_ids = sorted({run.dag_id for run in runs})

        def parsed() -> bool:
            airflow.check_alive()
            found = {dag["dag_id"] for dag in api.request("GET", "/api/v2/dags?limit=100")["dags"]}
            return set(dag_ids) <= found

        wait_until("the dag-processor parsing every example DAG", parsed, 180, interval=2)
        for dag_id in dag_ids:
            api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        *examples, reboots = runs
        for run in examples:
            trigger(api, run)
            say(f"triggered {run.run_id}")
        slow = runs[1]
        restart_triggerer_mid_wait(api, airflow, slow, "wait_for_sweep")
        # The second restart: a pool wait in the triggerer, after its trigger rebooted a node.
        trigger(api, reboots)
        say(f"triggered {reboots.run_id}")
        client = batch_client(stack)
        restart_triggerer_after_a_reboot(api, airflow, client, reboots)
        wait_for_runs(api, airflow, runs, RUNS_TIMEOUT)

        failures = []
        for run in runs:
            state = api.dag_run(run.dag_id, run.run_id)["state"]
            if state != run.expect:
                failures.append(
                    f"{run.run_id} ended {state}, expected {run.expect}: {task_states(api, run)}\n"
                    + describe_failures(api, run)
                )
        expect(not failures, "; ".join(failures))
        check_workflow(api, runs[0])
        check_slow_sweep(api, airflow, runs[1])
        failed_task = check_failing_sweep(api, runs[2])
        check_storage(api, runs[3])
        check_application_package(api, runs[4])
        check_pool_reboots(api, client, reboots)

        from system_browser import browse

        shots = browse(api, airflow.base_url, runs, failed_task, SCREENSHOT_DIR)
    seconds = time.monotonic() - started
    return f"ok runs={len(runs)} deferred=2 triggerer_restarts=2 screenshots={shots} seconds={seconds:.0f}"


def main() -> int:
    started = time.monotonic()
    for directory in (LOG_DIR, SCREENSHOT_DIR):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    shutil.rmtree(WORK_DIR / "airflow-home", ignore_errors=True)
    try:
        line = system_test(started)
    except SystemTestFailure as err:
        say(f"FAILED {err}\n(logs of every process in {WORK_DIR / 'logs'})")
        return 1
    say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
