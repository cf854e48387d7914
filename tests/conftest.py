"""Test-wide settings: an isolated AIRFLOW_HOME with a real SQLite metadata DB, set before Airflow loads."""

from __future__ import annotations

import os
import tempfile
import uuid

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")


# -- Running DAGs for real: a migrated metadata DB and dag.test() ---------------------------------------

from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from tests.support.task_context import task_context  # noqa: E402

# The provider's test kit (azurite, batch_emulator, local_azure_stack), as a user's conftest loads it.
pytest_plugins = ["airflow_batch_provider.testing.pytest_plugin"]


@pytest.fixture
def uid() -> str:
    """A fresh short id, to name the pools, jobs and containers of one test."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def context(uid: str) -> dict[str, Any]:
    """An operator's execution context outside the task runner (see :mod:`tests.support.task_context`)."""
    return task_context(f"manual__{uid}")


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """Create the Airflow metadata tables in the session's SQLite DB, once (``dag.test()`` needs them)."""
    from airflow.utils import db

    db.initdb()
    yield


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., tuple[Any, dict[str, Any]]]:
    """Run a DAG object with ``dag.test()`` and return its DagRun and the ``return_value`` XCom per task.

    ``dag.test()`` only runs DAGs that are serialized in the metadata DB, which normally happens when a
    bundle is parsed; a DAG built inside a test is written to the default bundle here first.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def run(dag: Any, **test_kwargs: Any) -> tuple[Any, dict[str, Any]]:
        DagBundlesManager().sync_bundles_to_db()
        bag = DagBag(dag_folder=os.devnull)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
        # ObjectStoragePath keeps one filesystem per connection id for the life of the process, built
        # from the connection it first saw; each test's stack serves that connection id elsewhere.
        from airflow.sdk.io import store

        store._STORE_CACHE.clear()
        dag_run = dag.test(**test_kwargs)
        with create_session() as session:
            rows = session.scalars(
                XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag.dag_id, key="return_value")
            ).all()
            xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        return dag_run, xcoms

    return run
