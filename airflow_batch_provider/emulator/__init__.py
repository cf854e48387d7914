"""A local Azure Batch emulator: the Batch data-plane REST API over HTTP, running tasks as local processes.

Start it with the ``airflow-batch-emulator`` command, or in tests with
:class:`airflow_batch_provider.testing.emulator.BatchEmulatorServer`. What is emulated, where it
differs from the service, and how the layers fit together: ``docs/emulator.md``.
"""
