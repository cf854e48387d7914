"""What ``pip install airflow-batch-provider`` brings: every imported package declared, the emulator's
web stack only with the ``[emulator]`` extra, and a clear line instead of a traceback without it."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import airflow_batch_provider

ROOT = Path(airflow_batch_provider.__file__).parent
PROJECT = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]
NAME = canonicalize_name(PROJECT["name"])

#: Which extras the modules under a path may rely on, besides the runtime dependencies
#: (``lineage.py`` imports OpenLineage only when the OpenLineage provider is there).
EXTRAS_BY_PATH = {"emulator": {"emulator"}, "testing": {"emulator", "testing"}, "lineage.py": {"openlineage"}}
#: ``apache-airflow`` is a meta-package: the ``airflow`` namespace it installs lives in these.
META_PACKAGES = {"apache-airflow": {"apache-airflow-core", "apache-airflow-task-sdk"}}


def _declared(extra: str | None) -> set[str]:
    """Distributions the project declares for ``extra`` (None: the runtime dependencies), extras expanded."""
    lines = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    names: set[str] = set()
    for line in lines:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == NAME:
            for included in requirement.extras:
                names |= _declared(included)
        else:
            name = canonicalize_name(requirement.name)
            names |= {name, *META_PACKAGES.get(name, ())}
    return names


def _imports(path: Path) -> Iterator[str]:
    """Absolute module names ``path`` imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


@cache
def _distribution_files(distribution: str) -> frozenset[str]:
    return frozenset(str(file) for file in metadata.files(distribution) or ())


@cache
def _distributions_of(module: str) -> set[str]:
    """The installed distributions that provide ``module`` (namespace packages such as ``azure`` split)."""
    candidates = _packages_distributions().get(module.split(".")[0], [])
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        found = {
            name
            for name in candidates
            if any(f.startswith(prefix + "/") or f == prefix + ".py" for f in _distribution_files(name))
        }
        if found:
            return {canonicalize_name(name) for name in found}
    return {canonicalize_name(name) for name in candidates}


def _third_party_imports() -> Iterator[tuple[Path, str]]:
    for path in sorted(ROOT.rglob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top != "airflow_batch_provider":
                yield path, module


def test_every_imported_package_is_declared_where_its_module_needs_it() -> None:
    runtime = _declared(None)
    undeclared = []
    for path, module in _third_party_imports():
        allowed = set(runtime)
        for extra in EXTRAS_BY_PATH.get(path.relative_to(ROOT).parts[0], ()):
            allowed |= _declared(extra)
        providers = _distributions_of(module)
        assert providers, f"{module} (imported by {path.relative_to(ROOT)}) is not installed"
        if not providers & allowed:
            undeclared.append(f"{path.relative_to(ROOT)}: {module} (from {', '.join(sorted(providers))})")
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)


def test_the_web_stack_is_only_in_the_emulator_extra() -> None:
    runtime = _declared(None)
    assert not {"fastapi", "uvicorn", "starlette"} & runtime
    assert {"fastapi", "uvicorn"} <= _declared("emulator") <= _declared("testing")
    assert _declared("emulator") <= _declared("dev"), "make setup must install the emulator"


_WITHOUT_FASTAPI = textwrap.dedent(
    """
    import sys

    class Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "fastapi":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Missing())
    """
)


@pytest.mark.parametrize(
    "start",
    [
        "import runpy; sys.argv = ['x']; "
        "runpy.run_module('airflow_batch_provider.emulator', run_name='__main__')",
        "from airflow_batch_provider.emulator.cli import main; sys.exit(main([]))",
    ],
    ids=["python -m", "console script"],
)
def test_starting_the_emulator_without_its_extra_says_how_to_install_it(start: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _WITHOUT_FASTAPI + start], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    assert ran.stdout == ""
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert "fastapi" in lines[0]
    assert "pip install 'airflow-batch-provider[emulator]'" in lines[0]
