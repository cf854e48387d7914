"""Data-aware follow-up of ``azure_batch_workflow``: runs whenever a workflow run's results land.

The workflow's ``add_tasks`` step attaches the Asset of its output prefix,
``azblob://<account>/<output container>/<run key>/results``, to the Asset alias
``azblob:azure_batch_workflow.add_tasks``. This DAG is scheduled on that alias, so every workflow
run queues one run here, whatever its run key. ``report`` reads the triggering Asset event (job id,
task count) and lists the results straight from Blob Storage through ``ObjectStoragePath`` on the
``azblob_default`` connection: no shared disk, no download.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import DAG, AssetAlias, ObjectStoragePath, task

#: The alias the workflow's ``add_tasks`` step writes its output Asset to.
WORKFLOW_RESULTS = AssetAlias("azblob:azure_batch_workflow.add_tasks")

with DAG(
    dag_id="azure_batch_workflow_results",
    description="Report the results of every azure_batch_workflow run, read from Blob Storage.",
    doc_md=__doc__,
    schedule=[WORKFLOW_RESULTS],
    catchup=False,
    tags=["example", "azure-batch-provider", "assets"],
) as dag:

    @task
    def report(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """One line per triggering event: the job, its task count and the result files in Blob."""
        reports = []
        for asset, events in (triggering_asset_events or {}).items():
            container, _, prefix = urlsplit(asset.uri).path.lstrip("/").partition("/")
            results = ObjectStoragePath(f"azblob://{container}/{prefix}/", conn_id="azblob_default")
            files = sorted(path.name for path in results.rglob("*.stats.json"))
            for event in events:
                reports.append({"asset": asset.uri, **event.extra, "result_files": files})
        return reports

    report()
