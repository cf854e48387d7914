"""Load a DAG file of ``example_dags/`` fresh, as the DAG processor would, with its settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


def load_example(monkeypatch: pytest.MonkeyPatch, name: str, **environ: str) -> Any:
    """``example_dags/<name>.py`` imported fresh (after setting ``environ``); returns its ``dag``."""
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLE_DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module.dag
