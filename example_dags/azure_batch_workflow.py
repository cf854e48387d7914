"""The whole Azure Batch workflow as one DAG: upload, pool, job, tasks, wait, collect, clean up.

1. ``upload_inputs`` sends every ``*.csv`` of the local input directory to Blob Storage,
   ``upload_app`` sends the application, ``app/analyze.py`` next to this file (summary statistics of a
   CSV of numbers, standard library only), and ``create_output_container`` makes sure the container
   the tasks upload their results to exists;
2. ``create_pool`` (a setup task) creates a pool of Ubuntu nodes whose start task checks that
   ``python3`` is there, and waits until the nodes are idle;
3. ``create_job`` (a setup task) creates the run's job on it, and ``add_tasks`` adds one task per
   uploaded CSV: the CSV is the task's resource file, the application a common resource file, and the
   task's ``out/*`` plus its ``stdout.txt``/``stderr.txt`` are uploaded to the output container;
4. ``wait_for_tasks`` waits for the job's tasks in the triggerer (deferrable);
5. ``collect_logs`` writes every task's stdout/stderr into the Airflow log (failed ones too);
   ``summarize`` reads the results straight from Blob Storage through ``ObjectStoragePath``
   (``azblob://<output container>/<run key>/results/`` on ``azblob_default``), checks one result per
   input and writes ``summary.json`` next to them; then the optional ``download_outputs`` fetches
   results and summary into ``<output_dir>/<run key>/``;
6. ``delete_job`` and ``delete_pool`` are teardown tasks: they run, and release the nodes, even when a
   step in between fails.

Pool, job and blob prefixes are derived from the DAG and run ids with the provider's
:func:`~airflow_batch_provider.batch.ids.make_batch_id` (the ``batch_id`` macro here), so runs never
collide and an Airflow retry re-attaches to its own resources.

Connections: ``azbatch_default`` (Batch account) and ``azblob_default`` (storage account). The same
DAG runs against the local emulator and Azurite (``make demo``) and against Azure; only the
connections change. Params (defaults from environment variables):

* ``input_dir`` (``AZURE_BATCH_WORKFLOW_INPUT_DIR``): local directory with the ``*.csv`` files;
* ``output_dir`` (``AZURE_BATCH_WORKFLOW_OUTPUT_DIR``): where ``download_outputs`` puts a local copy;
* ``data_container`` / ``output_container``: Blob containers for inputs+application and results;
* ``vm_size``, ``image``, ``nodes``: the pool (``standard_d2s_v3``, ``ubuntu-24.04``, 2 nodes).

``AZURE_BATCH_WORKFLOW_POLL_SECONDS`` sets how often the pool and job are polled (default 15).
No step reads a local file another step wrote: results pass through Blob Storage, so the DAG runs
unchanged on any number of workers. Only ``download_outputs`` writes to ``output_dir``, for whoever
wants a local copy; remove it if nobody does.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_batch_provider.batch.ids import make_batch_id
from airflow_batch_provider.batch.task_factories import TasksFromUpload
from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator, BatchDeleteJobOperator
from airflow_batch_provider.operators.output import BatchCollectTaskOutputOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.storage import (
    BlobDownloadFilesOperator,
    BlobUploadApplicationFilesOperator,
    BlobUploadFilesOperator,
)
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor

#: The application shipped with the example (relative to this file, wherever the DAGs folder is).
APP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app")
_WORK = os.path.join(tempfile.gettempdir(), "azure_batch_workflow")
INPUT_DIR = os.environ.get("AZURE_BATCH_WORKFLOW_INPUT_DIR") or os.path.join(_WORK, "input")
OUTPUT_DIR = os.environ.get("AZURE_BATCH_WORKFLOW_OUTPUT_DIR") or os.path.join(_WORK, "outputs")
POLL_SECONDS = float(os.environ.get("AZURE_BATCH_WORKFLOW_POLL_SECONDS", "15"))

#: One key per DAG run, a valid Batch id: the job id and the root of the run's blob prefixes.
RUN_KEY = "{{ batch_id(dag.dag_id ~ '-' ~ run_id) }}"
POOL_ID = "{{ batch_id('pool-' ~ dag.dag_id ~ '-' ~ run_id) }}"
INPUT_PREFIX = f"{RUN_KEY}/inputs/"
APP_PREFIX = f"{RUN_KEY}/app/"
RESULTS_PREFIX = f"{RUN_KEY}/results"

with DAG(
    dag_id="azure_batch_workflow",
    description="Upload CSVs and an analysis script, run one Batch task per file, collect the results.",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    tags=["example", "azure-batch-provider", "batch"],
    user_defined_macros={"batch_id": make_batch_id},
    params={
        "input_dir": Param(INPUT_DIR, type="string", description="Local directory of *.csv inputs."),
        "output_dir": Param(OUTPUT_DIR, type="string", description="Local directory for the results."),
        "data_container": Param("batch-workflow", type="string", description="Inputs and application."),
        "output_container": Param("batch-workflow-output", type="string", description="Task outputs."),
        "vm_size": Param("standard_d2s_v3", type="string", description="VM size of the pool's nodes."),
        "image": Param("ubuntu-24.04", type="string", description="Node image alias."),
        "nodes": Param(2, type="integer", minimum=1, description="Dedicated nodes in the pool."),
    },
) as dag:
    upload_inputs = BlobUploadFilesOperator(
        task_id="upload_inputs",
        source="{{ params.input_dir }}/*.csv",
        container="{{ params.data_container }}",
        prefix=INPUT_PREFIX,
    )
    upload_app = BlobUploadApplicationFilesOperator(
        task_id="upload_app",
        source=f"{APP_DIR}/*.py",
        container="{{ params.data_container }}",
        prefix=APP_PREFIX,
    )

    @task
    def create_output_container(params: dict[str, Any] | None = None) -> str:
        """Batch uploads output files only into a container that exists."""
        assert params is not None
        BlobStorageHook(azblob_conn_id="azblob_default").create_container(params["output_container"])
        return str(params["output_container"])

    output_container = create_output_container()

    create_pool = BatchCreatePoolOperator(
        task_id="create_pool",
        pool_id=POOL_ID,
        vm_size="{{ params.vm_size }}",
        image="{{ params.image }}",
        target_dedicated_nodes="{{ params.nodes }}",  # rendered to a string, then parsed
        # Runs on every node as it joins; no shell on Batch, hence /bin/sh -c.
        start_task={
            "command_line": "/bin/sh -c 'python3 --version && python3 -c \"import statistics, csv, json\"'",
            "wait_for_success": True,
        },
        metadata={"airflow_dag": "{{ dag.dag_id }}", "airflow_run": "{{ run_id }}"},
        poll_interval=POLL_SECONDS,
        deferrable=True,
    ).as_setup()

    create_job = BatchCreateJobOperator(
        task_id="create_job",
        job_id=RUN_KEY,
        pool_id=POOL_ID,
        max_wall_clock_time=3600,  # the job's kill switch; tasks' SAS tokens last this long (+margin)
        metadata={"airflow_dag": "{{ dag.dag_id }}", "airflow_run": "{{ run_id }}"},
    ).as_setup()

    add_tasks = BatchAddTasksOperator(
        task_id="add_tasks",
        job_id=RUN_KEY,
        task_id_prefix="analyze",
        # One task per uploaded CSV; the CSV is downloaded to {file_path} in the working directory.
        task_factory=TasksFromUpload(
            upload_inputs.output,
            f"python3 {APP_PREFIX}analyze.py {{file_path}} out",
            suffix=".csv",
        ),
        # The application, downloaded under its blob name (<run key>/app/analyze.py) for every task.
        common_resource_files=[
            {"container": "{{ params.data_container }}", "blob_prefix": APP_PREFIX, "file_mode": "0755"}
        ],
        output_container="{{ params.output_container }}",
        output_path=RESULTS_PREFIX,
        output_patterns=["out/*"],  # plus stdout.txt/stderr.txt on completion (upload_std_logs)
        constraints={"max_wall_clock_time": "PT10M", "max_task_retry_count": 1},
    )

    wait_for_tasks = BatchJobSensor(
        task_id="wait_for_tasks",
        job_id=RUN_KEY,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=3600,
    )

    collect_logs = BatchCollectTaskOutputOperator(
        task_id="collect_logs",
        job_id=RUN_KEY,
        only_failed=False,
        trigger_rule="all_done",  # the logs matter most when a task failed
    )

    @task
    def summarize(uploaded: dict[str, Any], waited: dict[str, Any], results_url: str) -> dict[str, Any]:
        """One result per input, each naming its input, read from Blob Storage (no shared disk);
        writes ``summary.json`` next to the results."""
        root = ObjectStoragePath(results_url.rstrip("/") + "/", conn_id="azblob_default")
        results = sorted(root.rglob("*.stats.json"), key=str)
        analysed = {json.loads(path.read_text())["file"] for path in results}
        inputs = {url.rsplit("/", 1)[-1] for url in uploaded.get("blobs") or []}
        if uploaded.get("blobs") is not None and analysed != inputs:
            raise ValueError(
                f"Results do not match the inputs: missing {sorted(inputs - analysed)}, "
                f"unexpected {sorted(analysed - inputs)}."
            )
        counts = waited.get("counts") or {}
        summary = {
            "job_id": waited.get("job_id"),
            "files": uploaded["count"],
            "tasks": counts.get("completed"),
            "succeeded": counts.get("succeeded"),
            "failed": counts.get("failed"),
            "outputs": len(results),
            "results": [path.key.removeprefix(root.key) for path in results],
        }
        (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    # After summarize, so that the local copy has summary.json too.
    download_outputs = BlobDownloadFilesOperator(
        task_id="download_outputs",
        container="{{ params.output_container }}",
        prefix=f"{RESULTS_PREFIX}/",
        local_dir="{{ params.output_dir }}/" + RUN_KEY,
    )

    delete_job = BatchDeleteJobOperator(task_id="delete_job", job_id=RUN_KEY)
    delete_pool = BatchDeletePoolOperator(task_id="delete_pool", pool_id=POOL_ID)

    summary = summarize(
        upload_inputs.output,
        wait_for_tasks.output,
        results_url="azblob://{{ params.output_container }}/" + RESULTS_PREFIX + "/",
    )

    [upload_inputs, upload_app, output_container] >> add_tasks
    create_pool >> create_job >> add_tasks >> wait_for_tasks >> [collect_logs, summary]
    summary >> download_outputs
    [collect_logs, summary] >> delete_job >> delete_pool
    delete_job.as_teardown(setups=create_job)
    delete_pool.as_teardown(setups=create_pool)
