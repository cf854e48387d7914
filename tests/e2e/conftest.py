"""Helpers for the end-to-end tests of the example DAGs: load one fresh, write its inputs."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "example_dags"


def load_example(monkeypatch: pytest.MonkeyPatch, name: str, **environ: str) -> Any:
    """``example_dags/<name>.py`` imported fresh (after setting ``environ``); returns its ``dag``."""
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"e2e_example_{name}", EXAMPLE_DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module.dag


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
