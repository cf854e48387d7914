"""For ``make system-test`` only: a pool whose start task always fails, waited for in the triggerer
with ``max_start_task_reboots=2``. The system test restarts the triggerer after the first reboot and
checks that the node booted three times in all (the first boot and two reboots), not more.

``dag_run.conf["pool_id"]`` names the pool; it stays, so that the system test can count the boots.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_batch_provider.operators.pool import BatchCreatePoolOperator

#: Counts each boot in the node's shared directory (kept across reboots), then fails after a while:
#: long enough for the system test to see the reboot and restart the triggerer.
START_TASK = (
    '/bin/sh -c \'echo boot >> "$AZ_BATCH_NODE_SHARED_DIR/boots"; sleep 8; '
    "echo E: the mirror is down >&2; exit 100'"
)

with DAG(
    dag_id="system_pool_reboots",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["system-test"],
):
    BatchCreatePoolOperator(
        task_id="create_pool",
        pool_id="{{ dag_run.conf['pool_id'] }}",
        vm_size="standard_d2s_v3",
        target_dedicated_nodes=1,
        start_task={"command_line": START_TASK, "wait_for_success": True},
        max_start_task_reboots=2,
        deferrable=True,
        poll_interval=2,
        timeout=600,
        retries=0,
    )
