"""A local Azure Batch emulator: the Batch data-plane REST API over HTTP, running tasks as local processes.

What Azurite is for Storage, this is for Batch: the unmodified ``azure.batch.BatchClient`` (sync and
aio) with ``AzureNamedKeyCredential`` talks to it over real HTTP. Start it with the
``airflow-batch-emulator`` command, or in tests with
:class:`airflow_batch_provider.testing.emulator.BatchEmulatorServer` (pytest fixture
``batch_emulator``). The well-known development account is ``devbatchaccount1`` with the key in
:data:`airflow_batch_provider.emulator.models.account.DEV_ACCOUNT_KEY`.

Layout, after moto: ``models`` hold state and the service's rules, ``routes`` parse HTTP and shape
responses, ``scheduler`` places tasks on node slots and ``runner`` executes them as processes. All
state lives in memory on one asyncio event loop; processes are awaited, never blocked on.

Where the emulator follows the service on purpose (so tests catch what production would do):

* a job may name a pool that does not exist yet: it is accepted and its tasks stay ``active`` until
  a pool with that id appears;
* ``onAllTasksComplete: terminatejob`` on a job with no tasks completes it at once;
* command lines run without a shell (wrap them in ``/bin/sh -c``), as on a Linux node;
* api-versions 2023-05-01.17.0 to 2025-06-01 are accepted, responses shaped for each
  (:mod:`~airflow_batch_provider.emulator.api_versions`); others get 400 ``UnsupportedRequestVersion``.

Container tasks and start tasks run through a local OCI engine, podman or docker
(:mod:`.runner.containers`, ``--container-engine``); without one they fail naming the missing engine.

Where it differs, by design: multi-instance tasks are refused at creation (400
``InvalidPropertyValue`` naming the limitation); node users, remote login, inbound
endpoints and VM extensions are state with made-up public addresses (:mod:`.models.network`), and a
``subnetId`` must be one the emulator was started with (``--subnet``); job schedules'
``recurrenceInterval`` and ``startWindow`` are multiplied by ``--schedule-interval-scale`` (default
1); pool usage metrics are an empty list; application packages come from a pluggable source (by
default a local directory, ``--applications-dir``, laid out as ``<applicationId>/<version>.zip``; or
published through the HTTPS Resource Manager subset in :mod:`.management`, ``--management-port``); a
task whose ``requiredSlots`` exceeds its pool's ``taskSlotsPerNode`` is refused at creation (the
service accepts it and never runs it); more than 100 tasks in one ``addtaskcollection`` is 413
``RequestBodyTooLarge``, like a body over 1 MB, so the SDK's ``create_tasks`` splits the chunk.
"""
