"""``python -m airflow_batch_provider.emulator``: same as ``airflow-batch-emulator``."""

from airflow_batch_provider.emulator.cli import main

raise SystemExit(main())
