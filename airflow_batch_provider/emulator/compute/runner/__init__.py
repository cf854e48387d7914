"""Runs Batch tasks as local processes on a simulated node, as a Linux Batch node agent would.

``executor.TaskExecutor().run(spec, cancel)`` is the entry point; ``spec`` holds the contract with
the scheduler. The modules, one per concept:

- ``layout``: task directory layout and the task's environment (AZ_BATCH_* and the rest);
- ``resource_files``: downloads before the command line (pre-processing errors);
- ``process``: the command line (not run under a shell), wall clock and process-tree kill;
- ``launcher``: worker threads for process starts and directory creation, and exit watching,
  so none of it blocks the event loop that serves the API;
- ``output_files``: uploads after the process, by ``uploadCondition`` (file upload errors);
- ``storage``: the HTTP session and blob clients shared by one attempt's transfers;
- ``failures``: the ``failureInfo`` objects and their documented codes;
- ``app_packages``: extracting application packages and naming their variables.
"""

from airflow_batch_provider.emulator.compute.runner.spec import RunKind, TaskRunResult, TaskRunSpec

__all__ = ["RunKind", "TaskRunResult", "TaskRunSpec"]
