"""HTTP routes, one module per resource. Routes parse requests and shape responses; models decide."""

from airflow_batch_provider.emulator.routes import (
    account,
    job_schedules,
    jobs,
    node_access,
    nodes,
    pools,
    tasks,
    unsupported,
)

ROUTERS = (
    account.router,
    pools.router,
    nodes.router,
    node_access.router,
    jobs.router,
    tasks.router,
    job_schedules.router,
    unsupported.router,
)

__all__ = ["ROUTERS"]
