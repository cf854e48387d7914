"""A Batch workflow whose application is a container image.

1. ``upload_inputs`` uploads a text file to Blob Storage; the tasks get it as a resource file;
2. ``create_pool`` makes a container pool (``container_configuration``) whose nodes pull the image
   when they start; the image alias resolves to an image able to run containers;
3. each task runs in the image (``container_settings``): Batch mounts the task directories at the same
   paths and passes the ``AZ_BATCH_*`` variables in, so the task reads its resource file and writes
   ``out/`` in its working directory as a process on the node would; the output files are uploaded to
   the output container;
4. ``collect_logs`` writes every task's stdout into the Airflow log; the job and pool are deleted
   (teardown tasks).

Images from a private registry: add ``container_registries=[{"registry_server": ..., "conn_id": ...}]``
to the pool's ``container_configuration``, the connection holding the registry's user (login) and
password; the password never appears in the DAG, its rendered fields, XComs or logs.

``BATCH_CONTAINER_IMAGE`` names the image (default ``python:3.12-slim``: any image with ``/bin/sh`` and
``python3``); ``BATCH_CONTAINER_POLL_SECONDS`` how often the pool and job are polled (default 15).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_provider.batch.ids import make_batch_id
from airflow_batch_provider.hooks.blob import BlobStorageHook
from airflow_batch_provider.operators.job import BatchCreateJobOperator, BatchDeleteJobOperator
from airflow_batch_provider.operators.output import BatchCollectTaskOutputOperator
from airflow_batch_provider.operators.pool import BatchCreatePoolOperator, BatchDeletePoolOperator
from airflow_batch_provider.operators.storage import BlobUploadFilesOperator
from airflow_batch_provider.operators.tasks import BatchAddTasksOperator
from airflow_batch_provider.sensors.job import BatchJobSensor

IMAGE = os.environ.get("BATCH_CONTAINER_IMAGE", "python:3.12-slim")
POLL_SECONDS = float(os.environ.get("BATCH_CONTAINER_POLL_SECONDS", "15"))
INPUT_DIR = os.environ.get("BATCH_CONTAINER_INPUT_DIR") or os.path.join(
    tempfile.gettempdir(), "azure_batch_containers"
)

RUN_KEY = "{{ batch_id(dag.dag_id ~ '-' ~ run_id) }}"
POOL_ID = "{{ batch_id('pool-' ~ dag.dag_id ~ '-' ~ run_id) }}"
#: The program each task runs in the container: count the words of the resource file.
COUNT_WORDS = (
    "python3 -c \"import pathlib, sys; words = next(pathlib.Path().rglob('poem.txt')).read_text().split(); "
    "pathlib.Path('out').mkdir(exist_ok=True); pathlib.Path('out/count.txt').write_text(str(len(words))); "
    "print(sys.argv[1], 'counted', len(words), 'words')\""
)

with DAG(
    dag_id="azure_batch_containers",
    description="Run Batch tasks in a container image: resource file in, output file out, stdout logged.",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    tags=["example", "azure-batch-provider", "containers"],
    user_defined_macros={"batch_id": make_batch_id},
    params={
        "image": Param(IMAGE, type="string", description="The container image the tasks run in."),
        "input_dir": Param(INPUT_DIR, type="string", description="Where the input poem is written."),
        "data_container": Param("batch-containers", type="string", description="The input's container."),
        "output_container": Param(
            "batch-containers-output", type="string", description="Where the tasks' outputs land."
        ),
    },
) as dag:

    @task
    def write_input(params: dict[str, Any] | None = None) -> str:
        """The task's input: a short poem, written locally for the upload."""
        assert params is not None
        path = Path(params["input_dir"]) / "poem.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("so much depends upon a red wheel barrow glazed with rain water\n")
        return str(path)

    @task
    def create_output_container(params: dict[str, Any] | None = None) -> str:
        """Batch uploads output files only into a container that exists."""
        assert params is not None
        BlobStorageHook(azblob_conn_id="azblob_default").create_container(params["output_container"])
        return str(params["output_container"])

    upload_inputs = BlobUploadFilesOperator(
        task_id="upload_inputs",
        source="{{ params.input_dir }}/poem.txt",
        container="{{ params.data_container }}",
        prefix=f"{RUN_KEY}/",
    )

    create_pool = BatchCreatePoolOperator(
        task_id="create_pool",
        pool_id=POOL_ID,
        vm_size="standard_d2s_v3",
        image="ubuntu-22.04",
        target_dedicated_nodes=1,
        container_configuration={"type": "dockerCompatible", "container_image_names": ["{{ params.image }}"]},
        poll_interval=POLL_SECONDS,
    ).as_setup()

    create_job = BatchCreateJobOperator(task_id="create_job", job_id=RUN_KEY, pool_id=POOL_ID).as_setup()

    add_tasks = BatchAddTasksOperator(
        task_id="add_tasks",
        job_id=RUN_KEY,
        task_id_prefix="count",
        tasks=[{"id": "poem", "commandLine": f"{COUNT_WORDS} poem"}],
        container_settings={"image_name": "{{ params.image }}", "working_directory": "taskWorkingDirectory"},
        common_resource_files=[
            {"container": "{{ params.data_container }}", "blob_prefix": f"{RUN_KEY}/poem.txt"}
        ],
        output_container="{{ params.output_container }}",
        output_path=f"{RUN_KEY}/results",
        output_patterns=["out/*"],
        constraints={"max_wall_clock_time": "PT10M"},
    )

    wait_for_tasks = BatchJobSensor(task_id="wait_for_tasks", job_id=RUN_KEY, poke_interval=POLL_SECONDS)

    collect_logs = BatchCollectTaskOutputOperator(
        task_id="collect_logs", job_id=RUN_KEY, only_failed=False, trigger_rule="all_done"
    )

    delete_job = BatchDeleteJobOperator(task_id="delete_job", job_id=RUN_KEY)
    delete_pool = BatchDeletePoolOperator(task_id="delete_pool", pool_id=POOL_ID)
    delete_job.as_teardown(setups=[create_job])
    delete_pool.as_teardown(setups=[create_pool])

    write_input() >> upload_inputs
    [upload_inputs, create_output_container(), create_job] >> add_tasks
    create_pool >> create_job
    add_tasks >> wait_for_tasks >> collect_logs >> delete_job >> delete_pool
