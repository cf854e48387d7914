"""The wheel users install: its metadata (extras, license, classifiers), its data files, the
emulator's console script installed alone into a fresh environment (naming the extra it needs), and
the wheel installed with its ``[emulator]`` extra into a fresh environment, running a task."""

from __future__ import annotations

import email.parser
import os
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


#: Run by the fresh environment's own Python, away from this checkout: one task through the plain SDK.
_ONE_TASK = """
import sys, time
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

endpoint, name, key = sys.argv[1:4]
batch = BatchClient(endpoint, AzureNamedKeyCredential(name, key))
ubuntu = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
    node_agent_sku_id="batch.node.ubuntu 24.04",
)
batch.create_pool(m.BatchPoolCreateOptions(
    id="p", vm_size="standard_d2s_v3", virtual_machine_configuration=ubuntu, target_dedicated_nodes=1
))
batch.create_job(m.BatchJobCreateOptions(id="j", pool_info=m.BatchPoolInfo(pool_id="p")))
hello = "/bin/sh -c 'echo hello from the wheel'"
batch.create_task("j", m.BatchTaskCreateOptions(id="t", command_line=hello))
deadline = time.monotonic() + 60
while batch.get_task("j", "t").state != "completed":
    assert time.monotonic() < deadline, "the task did not complete in 60 s"
    time.sleep(0.2)
print(b"".join(batch.download_task_file("j", "t", "stdout.txt")).decode().strip())
import airflow_batch_provider
print(airflow_batch_provider.__file__)
"""


def test_the_wheel_with_its_emulator_extra_gives_a_working_emulator(wheel: Path, tmp_path: Path) -> None:
    """``pip install 'airflow-batch-provider[emulator]'`` from the wheel, in a fresh virtualenv (its
    dependencies from the package index, or pip's cache), then the installed emulator runs a task."""
    from airflow_batch_provider.emulator.models.account import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
    from airflow_batch_provider.testing.lifecycle import free_port, start_server_process, stop_process

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = str(environment / "bin" / "python")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", f"{wheel}[emulator]"],
        check=True,
        timeout=900,
    )
    port = free_port()
    clean_env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    server = start_server_process(
        [str(environment / "bin" / "airflow-batch-emulator"), "--port", str(port)],
        "127.0.0.1",
        port,
        what="the installed airflow-batch-emulator",
        timeout=60,
        cwd=str(tmp_path),
        env={**clean_env, "TMPDIR": str(tmp_path)},
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        ran = subprocess.run(
            [python, "-c", _ONE_TASK, endpoint, DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY],
            cwd=tmp_path,
            env=clean_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        output, imported_from = ran.stdout.strip().splitlines()
        assert output == "hello from the wheel"
        assert Path(imported_from).is_relative_to(environment)  # the installed copy, not this checkout
    finally:
        stop_process(server)
