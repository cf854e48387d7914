"""The triggers never block the triggerer's event loop, from a cold start (asyncio debug mode, 0.1 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from typing import Any

from airflow_batch_provider.hooks.batch import BatchHook

#: Like the triggerer: Airflow is loaded, then the trigger class is imported and run inside the loop,
#: with asyncio's debug mode reporting every callback that holds the loop longer than 0.1 s.
TRIGGERER_LIKE = textwrap.dedent(
    """
    import asyncio, json, sys

    import airflow.triggers.base  # noqa: F401  (the triggerer has Airflow loaded before any trigger)

    async def main() -> None:
        asyncio.get_running_loop().slow_callback_duration = 0.1
        from airflow_batch_provider.triggers.job import BatchJobTrigger
        from airflow_batch_provider.triggers.pool import BatchPoolTrigger

        triggers = [
            BatchPoolTrigger(pool_id=sys.argv[1], poll_interval=0.2),
            BatchJobTrigger(job_id=sys.argv[2], poll_interval=0.2),
        ]
        for trigger in triggers:
            async for event in trigger.run():
                print(json.dumps(event.payload))
                break

    asyncio.run(main(), debug=True)
    """
)


def test_triggers_start_and_poll_without_a_slow_callback(local_azure_stack: Any, hook: BatchHook) -> None:
    uid = uuid.uuid4().hex[:6]
    pool_id, job_id = f"loop-pool-{uid}", f"loop-job-{uid}"
    hook.create_pool(
        {
            "id": pool_id,
            "vmSize": "standard_d2s_v3",
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
                "nodeAgentSKUId": "batch.node.ubuntu 24.04",
            },
            "targetDedicatedNodes": 1,
        }
    )
    hook.create_job({"id": job_id, "poolInfo": {"poolId": pool_id}})
    hook.add_tasks(job_id, [{"id": "t", "commandLine": "/bin/sh -c 'echo done'"}])
    env = {**os.environ, **local_azure_stack.environ(), "PYTHONASYNCIODEBUG": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", TRIGGERER_LIKE, pool_id, job_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        hook.delete_job(job_id)
        hook.delete_pool(pool_id)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [event["status"] for event in events] == ["ready", "success"], done.stdout
    # Airflow's logging may send asyncio's warning to either stream.
    output = done.stdout + done.stderr
    slow = [line for line in output.splitlines() if "Executing" in line and "seconds" in line]
    assert not slow, "the event loop was blocked:\n" + "\n".join(slow)
