"""A Batch workflow that ships its program as an application package instead of resource files.

1. ``build_app`` writes the program (a small word-count script) into a local directory;
2. ``publish_package`` zips it deterministically and publishes it as application ``wordcount``, version
   ``1.0``, through Azure Resource Manager; a re-run with the same program uploads nothing;
3. a pool and a job are created, and tasks reference the package with
   ``applicationPackageReferences``; on the node, each task finds the program in
   ``$AZ_BATCH_APP_PACKAGE_wordcount_1_0`` (Linux: periods and hyphens become underscores). Command
   lines are not run by a shell on Batch, hence ``/bin/sh -c '...'`` to expand the variable;
4. a sensor waits for the tasks, then the job and the pool are deleted (teardown tasks: they run
   even when something before them failed).

Connections: ``azbatch_default`` for the Batch data plane and, for publishing, the connection named by
``BATCH_APP_ARM_CONN_ID`` (default ``azbatch_default``). Publishing goes through Resource Manager, so
that connection must use Entra ID (not the account key) and carry the extras ``subscription_id`` and
``resource_group``; on Azure one Entra ID connection serves both. Against the local emulator, the data
plane uses the account key and publishing uses a second connection pointing at the emulator's HTTPS
management endpoint (see the README).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_provider.operators.application import BatchPublishApplicationPackageOperator
from airflow_batch_provider.operators.job import BatchCreateJobOperator, BatchDeleteJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor

ARM_CONN_ID = os.environ.get("BATCH_APP_ARM_CONN_ID", "azbatch_default")
WORK_DIR = os.environ.get("BATCH_APP_WORK_DIR") or os.path.join(tempfile.gettempdir(), "batch_app_package")
VM_SIZE = os.environ.get("BATCH_APP_VM_SIZE", "standard_d2s_v3")
#: Seconds between status checks of the pool and the job (small against the local emulator).
POLL_SECONDS = float(os.environ.get("BATCH_APP_POLL_SECONDS", "15"))
#: The job id as created (valid for Batch), read from the create_job task's result.
JOB_ID = "{{ ti.xcom_pull('create_job')['job_id'] }}"

WORDCOUNT = """\
import sys

text = " ".join(sys.argv[1:])
print(f"{len(text.split())} words in: {text}")
"""

with DAG(
    dag_id="azure_batch_application_package",
    description="Publish a program as a Batch application package and run tasks that use it.",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    tags=["example", "azure-batch-provider", "application-packages"],
    params={
        "application_id": Param("wordcount", type="string", description="Application name."),
        "version": Param("1.0", type="string", description="Package version."),
        "work_dir": Param(WORK_DIR, type="string", description="Where the program is written."),
    },
) as dag:

    @task
    def build_app(params: dict[str, Any] | None = None) -> str:
        """Write the program into ``<work_dir>/app``; the same content each run keeps publishing a no-op."""
        assert params is not None
        app_dir = Path(params["work_dir"]) / "app"
        app_dir.mkdir(parents=True, exist_ok=True)
        (app_dir / "wordcount.py").write_text(WORDCOUNT)
        return str(app_dir)

    app_dir = build_app()

    publish = BatchPublishApplicationPackageOperator(
        task_id="publish_package",
        application_id="{{ params.application_id }}",
        version="{{ params.version }}",
        source=app_dir,
        set_default=True,
        azbatch_conn_id=ARM_CONN_ID,
    )

    pool = BatchCreatePoolOperator(
        task_id="create_pool",
        # One pool and one job per run; the operators turn the run id into valid Batch ids.
        pool_id="wordcount-pool-{{ run_id }}",
        vm_size=VM_SIZE,
        target_dedicated_nodes=1,
        poll_interval=POLL_SECONDS,
    )

    job = BatchCreateJobOperator(
        task_id="create_job",
        job_id="wordcount-{{ run_id }}",
        pool_id="{{ ti.xcom_pull('create_pool')['pool_id'] }}",
    )

    # The variable names the application and version with periods and hyphens turned into underscores.
    package_dir = "$AZ_BATCH_APP_PACKAGE_{{ params.application_id | replace('-', '_') }}_" + (
        "{{ params.version | replace('.', '_') | replace('-', '_') }}"
    )
    add_tasks = BatchAddTasksOperator(
        task_id="add_tasks",
        job_id=JOB_ID,
        tasks=[
            {
                "id": f"count-{index}",
                "commandLine": f"/bin/sh -c 'python3 \"{package_dir}/wordcount.py\" {sentence}'",
            }
            for index, sentence in enumerate(["to be or not to be", "packages travel well", "hello"])
        ],
        application_package_references=[publish.output],
    )

    wait = BatchJobSensor(task_id="wait_for_tasks", job_id=JOB_ID, poke_interval=POLL_SECONDS)

    delete_job = BatchDeleteJobOperator(task_id="delete_job", job_id="wordcount-{{ run_id }}")
    delete_pool = BatchDeletePoolOperator(task_id="delete_pool", pool_id="wordcount-pool-{{ run_id }}")
    delete_job.as_teardown(setups=[job])
    delete_pool.as_teardown(setups=[pool])

    publish >> pool >> job >> add_tasks >> wait >> delete_job >> delete_pool
