"""Apache Airflow provider for Azure Batch: each step of a Batch workflow as its own DAG task."""

__version__ = "0.1.0"
