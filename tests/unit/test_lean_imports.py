"""Parsing a DAG that uses the provider's operators does not load the Azure SDKs: they are imported
with the first client, so the dag-processor and the scheduler pay nothing for them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Packages a DAG file must not pay for at parse time (each costs tens to hundreds of milliseconds).
HEAVY = (
    "azure.batch",
    "azure.storage.blob",
    "azure.mgmt.batch",
    "azure.identity",
    "aiohttp",
    "adlfs",
    "jsonschema",
    "requests",
    "fastapi",
    "uvicorn",
)

_IMPORT_EVERYTHING = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    import airflow.sdk

    before = set(sys.modules)
    for name in ("operators", "sensors", "triggers", "hooks", "links"):
        package = importlib.import_module(f"airflow_batch_provider.{name}")
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    print(json.dumps(sorted(set(sys.modules) - before)))
    """
)


def test_importing_operators_sensors_triggers_and_hooks_loads_no_azure_sdk() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(ran.stdout.strip().splitlines()[-1])
    assert any(name.startswith("airflow_batch_provider.operators.") for name in loaded)
    heavy = sorted(
        {name for name in loaded for prefix in HEAVY if name == prefix or name.startswith(prefix + ".")}
    )
    assert not heavy, f"imported at DAG parse time: {heavy}"
