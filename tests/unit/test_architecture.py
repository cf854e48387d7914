"""The layers hold: the domain package has no Airflow in it, no module reaches into another
package's private module, and the provider's modules import each other without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import airflow_batch_provider

ROOT = Path(airflow_batch_provider.__file__).parent
PACKAGE = "airflow_batch_provider"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _top_level_imports(path: Path) -> Iterator[str]:
    """Modules imported when ``path`` is imported (not those under ``if TYPE_CHECKING:`` or in functions)."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            yield from (
                module for module in submodules if module in MODULES
            )  # ``from package import module``
            if any(module not in MODULES for module in submodules):
                yield node.module


def _all_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_the_domain_package_imports_no_airflow() -> None:
    offenders = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.startswith(f"{PACKAGE}.batch")
        for imported in _all_imports(path)
        if imported == "airflow" or imported.startswith("airflow.")
    ]
    assert offenders == []


def test_no_module_imports_a_private_module_of_another_package() -> None:
    offenders = []
    for name, path in MODULES.items():
        package = name.rpartition(".")[0] if path.name != "__init__.py" else name
        for imported in _all_imports(path):
            if not imported.startswith(f"{PACKAGE}."):
                continue
            owner, _, leaf = imported.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and owner != package:
                offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_the_provider_has_no_import_cycle() -> None:
    graph = {
        name: {imported for imported in _top_level_imports(path) if imported in MODULES and imported != name}
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == [], cycles


def test_the_emulator_imports_neither_airflow_nor_the_deprecated_utils() -> None:
    offenders = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.startswith(f"{PACKAGE}.emulator")
        for imported in _all_imports(path)
        if imported.split(".")[0] == "airflow" or imported.startswith(f"{PACKAGE}.utils")
    ]
    assert offenders == []


def test_the_running_emulator_loads_no_airflow_module() -> None:
    script = (
        "import sys\n"
        "import airflow_batch_provider.emulator.cli, airflow_batch_provider.emulator.app\n"
        "import airflow_batch_provider.emulator.management.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'"
        " or m.startswith('airflow_batch_provider.utils')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
