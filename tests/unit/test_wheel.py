"""The wheel users install: its metadata (extras, license, classifiers), its data files, and the
emulator's console script, installed alone into a fresh environment, naming the extra it needs."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import venv
import zipfile
from email.message import Message
from pathlib import Path

import pytest

import airflow_batch_provider

PROJECT_ROOT = Path(airflow_batch_provider.__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from this checkout (no build isolation: no download)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            ".",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        timeout=180,
    )
    (built,) = out.glob("airflow_batch_provider-*.whl")
    return built


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = (entry for entry in archive.namelist() if entry.endswith(f".dist-info/{name}"))
        return archive.read(path).decode()


def _metadata(wheel: Path) -> Message:
    return email.parser.Parser().parsestr(_dist_info(wheel, "METADATA"))


def test_the_web_stack_is_required_only_with_the_emulator_extra(wheel: Path) -> None:
    requires = _metadata(wheel).get_all("Requires-Dist") or []
    for package in ("fastapi", "uvicorn"):
        declared = [line for line in requires if line.split(";")[0].strip().startswith(package)]
        assert declared, f"{package} is not in the wheel's requirements"
        assert all('extra == "emulator"' in line for line in declared), declared


def test_license_and_supported_pythons_are_declared(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    classifiers = metadata.get_all("Classifier") or []
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers


def test_the_wheel_carries_its_data_files_and_no_pytest_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "airflow_batch_provider/py.typed" in names
    assert "airflow_batch_provider/emulator/request_schema.json" in names
    assert "Apache License" in _dist_info(wheel, "licenses/LICENSE")
    assert "pytest11" not in _dist_info(wheel, "entry_points.txt")


def test_the_emulator_installed_without_its_extra_says_how_to_get_it(wheel: Path, tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(environment / "bin" / "python"), "install"),
            *("-q", "--no-deps", "--no-index", str(wheel)),
        ],
        check=True,
        timeout=120,
    )
    ran = subprocess.run(
        [str(environment / "bin" / "airflow-batch-emulator")], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    assert ran.stderr.strip() == (
        "airflow-batch-emulator needs fastapi, which is not installed: "
        "pip install 'airflow-batch-provider[emulator]'"
    )
