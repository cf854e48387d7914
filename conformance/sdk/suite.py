"""Fetch azure-batch's sdist from PyPI, check it, extract it, lay the shims beside its tests, run them.

The sdist is the one of the INSTALLED azure-batch version; its SHA-256 must match the value recorded
in :data:`SDIST_SHA256` (a new version needs its checksum recorded there first). Downloads are cached
in ``.conformance/cache/``; the extracted tree lives in ``.conformance/sdk/`` and is rebuilt each run,
so the original test files are always exactly as shipped.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

from conformance.results import from_junit

#: SHA-256 of each azure-batch sdist the suite has been checked against (from PyPI).
SDIST_SHA256 = {
    "15.1.0": "2f684d176b457b7213535e145180a914ed6844b2d1066fcc22ac88c3ac9e3fa5",
}
#: The sdist's files the shims replace; every other file is used as shipped.
REPLACED = ("conftest.py", "batch_preparers.py", "decorators.py")
#: The service tests (the other test files are unit tests of the SDK's own helpers).
SERVICE_TESTS = "test_batch.py"
SHIMS = Path(__file__).resolve().parent / "shims"
PYTEST_INI = Path(__file__).resolve().parent / "pytest.ini"


class SuiteError(Exception):
    """The suite cannot be prepared (download, checksum or layout problem)."""


def installed_version() -> str:
    return metadata.version("azure-batch")


def download(version: str, cache: Path) -> Path:
    """The sdist of ``version``: from the cache, else from PyPI with pip; checked against its SHA-256."""
    expected = SDIST_SHA256.get(version)
    if expected is None:
        raise SuiteError(
            f"no SHA-256 recorded for the azure-batch {version} sdist; download it, check it against PyPI's "
            f"published digest and add it to SDIST_SHA256 in {Path(__file__).name}"
        )
    archive = cache / f"azure_batch-{version}.tar.gz"
    if not archive.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"azure-batch=={version}",
                "--dest",
                str(cache),
            ],
            check=True,
        )
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    if actual != expected:
        archive.unlink()
        raise SuiteError(
            f"{archive.name} has SHA-256 {actual}, expected {expected}; the cached copy was removed, rerun "
            "to download it again (if PyPI's file changed, check it before recording the new digest)"
        )
    return archive


def extract(archive: Path, destination: Path) -> Path:
    """Extract the sdist afresh into ``destination``; returns its ``tests`` folder."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    tests = next(destination.glob("azure_batch-*/tests"), None)
    if tests is None:
        raise SuiteError(f"{archive.name} has no tests/ folder")
    return tests


def lay_shims(tests: Path) -> None:
    """Put the shims beside the original tests, replacing only the test-infrastructure files."""
    for name in REPLACED:
        if not (tests / name).exists():
            raise SuiteError(f"the sdist's tests/ has no {name} to replace; the shims need updating")
    for source in SHIMS.iterdir():
        if source.name in {"__init__.py", "__pycache__"}:
            continue
        target = tests / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)


def run(tests: Path, junit: Path, pytest_args: list[str]) -> int:
    """Run the service tests live; returns pytest's exit code."""
    junit.parent.mkdir(parents=True, exist_ok=True)
    selected = [arg for arg in pytest_args if arg.startswith(f"{SERVICE_TESTS}::")]
    command = [
        sys.executable,
        "-m",
        "pytest",
        *([] if selected else [SERVICE_TESTS]),
        "--rootdir",
        str(tests),
        "-c",
        str(PYTEST_INI),
        f"--junitxml={junit.resolve()}",
        "-q",
        *pytest_args,
    ]
    return subprocess.run(command, cwd=tests).returncode


def main(work: Path, results: Path, pytest_args: list[str]) -> int:
    work, results = work.resolve(), results.resolve()
    version = installed_version()
    archive = download(version, work / "cache")
    tests = extract(archive, work / "sdk")
    lay_shims(tests)
    junit = results.with_suffix(".junit.xml")
    junit.unlink(missing_ok=True)  # never report a previous run's results
    code = run(tests, junit, pytest_args)
    if junit.exists():
        from_junit(junit, "azure-batch SDK tests", version).write(results)
    return code
