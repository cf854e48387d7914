"""Azure Batch domain logic, with no Airflow in it: ids, durations, the REST shape, pool, job and task
bodies, task factories, input validation, and monitoring (:mod:`.monitor`) over a small I/O protocol."""
