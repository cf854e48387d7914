"""fsspec filesystems that back Airflow's ``ObjectStoragePath`` with the provider's connections."""
