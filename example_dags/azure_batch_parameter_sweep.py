"""A parameter sweep on Azure Batch: one Batch task per point, then a merge task that depends on them all.

* ``sweep_points`` turns the ``rates`` Param into one Batch task per point, and ``add_point`` is mapped
  over them (``.partial().expand()``): one Airflow task instance per point, each adding its Batch task
  ``point-NN``, which runs ``app/simulate.py`` (the logistic map at that growth rate) and uploads
  ``out/point-NN.json``.
* ``add_merge`` adds the ``merge`` Batch task with ``dependsOn`` every point (the job is created with
  ``uses_task_dependencies=True``). The service starts it only when all points completed; it downloads
  their results (a resource file for the results prefix) and writes one table, ``sweep.json``.
* Exit conditions say what a point's exit code means for the merge and the job:

  - 0: done, the merge may run;
  - 3: the simulation has nothing to do at this point (a rate outside (0, 4]): "skip this point",
    ``dependencyAction: satisfy``, so the merge still runs, without that point;
  - anything else: a real failure, ``dependencyAction: block`` and ``jobAction: terminate`` (the job
    is created with ``on_task_failure="performexitoptionsjobaction"``): the merge never starts, and
    the next step that touches the job (adding the remaining tasks, or the wait) fails at once
    instead of waiting forever for a blocked task.

* ``wait_for_sweep`` waits (deferrable) without failing on the skipped points;
  ``check_sweep`` then requires the merge to have succeeded and every failed task to be a skip;
  ``download_sweep`` fetches ``sweep.json``; the job and the pool are teardown tasks.

Connections ``azbatch_default`` and ``azblob_default``; ``AZURE_BATCH_SWEEP_OUTPUT_DIR`` sets the
default local output directory and ``AZURE_BATCH_SWEEP_POLL_SECONDS`` the polling interval.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_provider.batch.ids import make_batch_id
from airflow_batch_provider.hooks.batch import BatchHook
from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator, BatchDeleteJobOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.storage import (
    BlobDownloadFilesOperator,
    BlobUploadApplicationFilesOperator,
)
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor

APP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app")
OUTPUT_DIR = os.environ.get("AZURE_BATCH_SWEEP_OUTPUT_DIR") or os.path.join(
    tempfile.gettempdir(), "azure_batch_parameter_sweep"
)
POLL_SECONDS = float(os.environ.get("AZURE_BATCH_SWEEP_POLL_SECONDS", "15"))

#: The exit code with which a point says "nothing to do here".
SKIP_EXIT_CODE = 3
EXIT_CONDITIONS = {
    "exit_codes": [
        {"code": SKIP_EXIT_CODE, "exit_options": {"job_action": "none", "dependency_action": "satisfy"}}
    ],
    "default": {"job_action": "terminate", "dependency_action": "block"},
}

RUN_KEY = "{{ batch_id(dag.dag_id ~ '-' ~ run_id) }}"
POOL_ID = "{{ batch_id('pool-' ~ dag.dag_id ~ '-' ~ run_id) }}"
APP_PREFIX = f"{RUN_KEY}/app/"
POINTS_PREFIX = f"{RUN_KEY}/points"
MERGE_PREFIX = f"{RUN_KEY}/merge"

with DAG(
    dag_id="azure_batch_parameter_sweep",
    description="Fan out one Batch task per parameter point, merge them with Batch task dependencies.",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    tags=["example", "azure-batch-provider", "batch", "sweep"],
    user_defined_macros={"batch_id": make_batch_id},
    params={
        # 4.5 is outside the map's domain: that point exits 3 and is skipped.
        "rates": Param([2.8, 3.2, 3.5, 3.7, 3.9, 4.5], type="array", description="Growth rates."),
        "steps": Param(2000, type="integer", minimum=1, description="Iterations per point."),
        # Outside (0, 1) every point fails with exit code 2: the merge is blocked and the job ends.
        "start": Param(0.2, type="number", description="Initial value x0 of every orbit."),
        # A real simulation takes minutes; raise this to see the wait deferred to the triggerer.
        "min_seconds": Param(0, type="number", minimum=0, description="Least seconds a point runs."),
        "output_dir": Param(OUTPUT_DIR, type="string", description="Local directory for sweep.json."),
        "data_container": Param("batch-sweep", type="string", description="Application files."),
        "output_container": Param("batch-sweep-output", type="string", description="Task outputs."),
        "vm_size": Param("standard_d2s_v3", type="string"),
        "image": Param("ubuntu-24.04", type="string"),
        "nodes": Param(2, type="integer", minimum=1),
    },
) as dag:
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

    @task
    def sweep_points(app: dict[str, Any], params: dict[str, Any] | None = None) -> list[list[dict[str, Any]]]:
        """One single-task list per rate: what each mapped ``add_point`` adds."""
        assert params is not None
        return [
            [
                {
                    "id": f"point-{index:02d}",
                    "command_line": (
                        f"python3 {app['prefix']}simulate.py --point point-{index:02d} "
                        f"--rate {float(rate)!r} --steps {int(params['steps'])} "
                        f"--start {float(params['start'])!r} "
                        f"--min-seconds {float(params.get('min_seconds') or 0)!r} --out out"
                    ),
                }
            ]
            for index, rate in enumerate(params["rates"])
        ]

    @task
    def merge_task(points: list[list[dict[str, Any]]], app: dict[str, Any]) -> list[dict[str, Any]]:
        """The merge task: depends on every point, reads their uploaded results."""
        ids = [batch[0]["id"] for batch in points]
        results = app["prefix"].removesuffix("app/") + "points"
        return [
            {
                "id": "merge",
                "command_line": (
                    f"python3 {app['prefix']}merge.py {results} out/sweep.json --expect {','.join(ids)}"
                ),
                "depends_on": {"task_ids": ids},
            }
        ]

    create_pool = BatchCreatePoolOperator(
        task_id="create_pool",
        pool_id=POOL_ID,
        vm_size="{{ params.vm_size }}",
        image="{{ params.image }}",
        target_dedicated_nodes="{{ params.nodes }}",  # rendered to a string, then parsed
        poll_interval=POLL_SECONDS,
        deferrable=True,
    ).as_setup()

    create_job = BatchCreateJobOperator(
        task_id="create_job",
        job_id=RUN_KEY,
        pool_id=POOL_ID,
        uses_task_dependencies=True,
        # A task's exit condition may end the job (jobAction), for the real failures below.
        on_task_failure="performexitoptionsjobaction",
        max_wall_clock_time=3600,
    ).as_setup()

    common = {
        "job_id": RUN_KEY,
        "prefix_task_ids": False,  # the job is per run: readable ids, and dependsOn can name them
        "common_resource_files": [
            {"container": "{{ params.data_container }}", "blob_prefix": APP_PREFIX, "file_mode": "0755"}
        ],
        "output_container": "{{ params.output_container }}",
        "output_patterns": ["out/*"],
    }
    points = sweep_points(upload_app.output)
    add_point = BatchAddTasksOperator.partial(
        task_id="add_point", output_path=POINTS_PREFIX, exit_conditions=EXIT_CONDITIONS, **common
    ).expand(tasks=points)

    add_merge = BatchAddTasksOperator(
        task_id="add_merge",
        tasks=merge_task(points, upload_app.output),
        output_path=MERGE_PREFIX,
        job_id=RUN_KEY,
        prefix_task_ids=False,
        output_container="{{ params.output_container }}",
        output_patterns=["out/*"],
        common_resource_files=[
            {"container": "{{ params.data_container }}", "blob_prefix": APP_PREFIX, "file_mode": "0755"},
            # The points' results: listed and downloaded when the merge starts, after every point.
            {"container": "{{ params.output_container }}", "blob_prefix": f"{POINTS_PREFIX}/"},
        ],
    )

    wait_for_sweep = BatchJobSensor(
        task_id="wait_for_sweep",
        job_id=RUN_KEY,
        fail_on_task_failure=False,  # skipped points "fail" with exit code 3; check_sweep decides
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=3600,
    )

    @task
    def check_sweep(waited: dict[str, Any]) -> dict[str, Any]:
        """The merge succeeded, and every failed Batch task is a point that asked to be skipped."""
        hook = BatchHook("azbatch_default")
        tasks = {
            str(item["id"]): item
            for item in hook.list_tasks(str(waited["job_id"]), select=["id", "state", "executionInfo"])
        }
        merge = (tasks.get("merge") or {}).get("executionInfo") or {}
        if merge.get("result") != "success":
            raise ValueError(f"The merge task did not succeed: {merge or 'it never ran'}.")
        skipped: list[str] = []
        failed: list[str] = []
        for task_id in waited.get("failed_task_ids") or []:
            code = (tasks.get(task_id, {}).get("executionInfo") or {}).get("exitCode")
            (skipped if code == SKIP_EXIT_CODE else failed).append(task_id)
        if failed:
            raise ValueError(f"Sweep points failed: {failed}.")
        points = sorted(task_id for task_id in tasks if task_id.startswith("point-"))
        return {"points": len(points), "skipped": sorted(skipped), "merged": len(points) - len(skipped)}

    download_sweep = BlobDownloadFilesOperator(
        task_id="download_sweep",
        container="{{ params.output_container }}",
        prefix=f"{MERGE_PREFIX}/",
        local_dir="{{ params.output_dir }}/" + RUN_KEY,
    )

    delete_job = BatchDeleteJobOperator(task_id="delete_job", job_id=RUN_KEY)
    delete_pool = BatchDeletePoolOperator(task_id="delete_pool", pool_id=POOL_ID)

    checked = check_sweep(wait_for_sweep.output)
    create_pool >> create_job >> [add_point, add_merge]
    create_output_container() >> [add_point, add_merge]
    add_point >> add_merge >> wait_for_sweep >> checked >> download_sweep >> delete_job >> delete_pool
    delete_job.as_teardown(setups=create_job)
    delete_pool.as_teardown(setups=create_pool)
