"""A whole DAG through Airflow's own task runner (``airflow dags test``) against the local Azure stack.

Exercises what only a real run shows: Jinja in nested specs, XCom between operators, a mapped
``.partial().expand()``, deferral through the real triggers, extra links persisted before deferring,
failure of the wait when a task fails, and teardown running anyway.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_batch_provider.operators.job import BatchCreateJobOperator, BatchDeleteJobOperator
    from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
    from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
    from airflow_batch_provider.sensors.job import BatchJobSensor

    with DAG("batch_e2e", schedule=None, start_date=datetime(2026, 1, 1), params={"code": 4}) as dag:
        pool = BatchCreatePoolOperator(
            task_id="pool",
            pool_id="e2e-{{ run_id }}",
            vm_size="standard_d2s_v3",
            image="ubuntu-24.04",
            target_dedicated_nodes=1,
            metadata={"run": "{{ run_id }}"},
            poll_interval=0.2,
            deferrable=True,
        )
        job = BatchCreateJobOperator(
            task_id="job",
            job_id="{{ dag.dag_id }}-{{ run_id }}",
            pool_id="{{ ti.xcom_pull('pool')['pool_id'] }}",
            max_wall_clock_time=600,
        )
        add = BatchAddTasksOperator.partial(
            task_id="add", job_id="{{ ti.xcom_pull('job')['job_id'] }}"
        ).expand(
            tasks=[
                [{"command_line": "/bin/sh -c 'echo ok'"}],
                [{"command_line": "/bin/sh -c 'echo broken >&2; exit {{ params.code }}'"}],
            ]
        )
        wait = BatchJobSensor(
            task_id="wait",
            job_id="{{ ti.xcom_pull('job')['job_id'] }}",
            deferrable=True,
            poke_interval=0.2,
            timeout=120,
        )
        delete_job = BatchDeleteJobOperator(task_id="delete_job", job_id="{{ dag.dag_id }}-{{ run_id }}")
        delete_pool = BatchDeletePoolOperator(task_id="delete_pool", pool_id="e2e-{{ run_id }}")
        pool >> job >> add >> wait >> delete_job >> delete_pool
        delete_job.as_teardown(setups=[job])
        delete_pool.as_teardown(setups=[pool])
    """
)

REPORT = textwrap.dedent(
    """
    import json
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = [
            {"task_id": ti.task_id, "map_index": ti.map_index, "state": str(ti.state)}
            for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == "batch_e2e")
        ]
        xcoms = [
            {"task_id": x.task_id, "map_index": x.map_index, "key": x.key, "value": x.value}
            for x in session.query(XComModel).filter(XComModel.dag_id == "batch_e2e")
        ]
    print("REPORT" + json.dumps({"tis": tis, "xcoms": xcoms}, default=str))
    """
)


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_dag_runs_end_to_end_and_reports_the_failed_task(local_azure_stack: Any, tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "batch_e2e.py").write_text(DAG_FILE)
    batch_conn = json.loads(os.environ["AIRFLOW_CONN_AZBATCH_DEFAULT"])
    batch_conn["extra"] = {"subscription_id": "sub-1", "resource_group": "rg-1"}
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_AZBATCH_DEFAULT": json.dumps(batch_conn),
    }
    migrate = _run([sys.executable, "-m", "airflow", "db", "migrate"], env, tmp_path)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    run = _run([sys.executable, "-m", "airflow", "dags", "test", "batch_e2e"], env, tmp_path)
    output = run.stdout + run.stderr
    report_run = _run([sys.executable, "-c", REPORT], env, tmp_path)
    lines = [line for line in report_run.stdout.splitlines() if line.startswith("REPORT")]
    assert lines, (report_run.stdout + report_run.stderr)[-3000:] + output[-3000:]
    line = lines[0]
    report = json.loads(line[len("REPORT") :])
    states = {(t["task_id"], t["map_index"]): t["state"] for t in report["tis"]}
    xcoms = {(x["task_id"], x["map_index"], x["key"]): x["value"] for x in report["xcoms"]}

    assert states[("pool", -1)] == "success", output[-3000:]
    assert states[("job", -1)] == "success", output[-8000:]
    assert states[("add", 0)] == "success" and states[("add", 1)] == "success"
    assert states[("wait", -1)] == "failed"  # one Batch task exited 4: the DAG must not go green
    assert states[("delete_job", -1)] == "success", output[-6000:]
    assert states[("delete_pool", -1)] == "success"

    def value(task: str, key: str = "return_value", index: int = -1) -> Any:
        raw = xcoms[(task, index, key)]
        if isinstance(raw, str):
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return raw
        return raw

    run_id = value("job")["job_id"].removeprefix("batch_e2e-")
    assert value("pool")["pool_id"].startswith("e2e-") and value("pool")["usable_nodes"] == 1
    prefixes = {value("add", index=i)["task_id_prefix"] for i in (0, 1)}
    assert len(prefixes) == 2  # each mapped instance has its own task ids
    pool_link = value("pool", "_link_BatchPoolLink")
    assert pool_link.startswith("https://portal.azure.com/#resource/subscriptions/sub-1/resourceGroups/rg-1/")
    assert value("wait", "_link_BatchJobLink").endswith("/jobs/" + value("job")["job_id"])
    assert "exit code 4" in output and "broken" in output
    assert run_id
