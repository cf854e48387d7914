"""Application packages: extracted once, executables stay executable, variables named as on Linux."""

from __future__ import annotations

import asyncio
import stat
import zipfile
from pathlib import Path

from airflow_batch_provider.batch.node_environment import linux_variable_name
from airflow_batch_provider.emulator.compute.runner.app_packages import extract_package


def _make_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        tool = zipfile.ZipInfo("bin/tool.sh")
        tool.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(tool, "#!/bin/sh\necho tool\n")
        archive.writestr("share/data.txt", "data")
        archive.writestr("../escape.txt", "nope")
    return path


async def test_extract_keeps_modes_and_stays_inside(tmp_path: Path) -> None:
    package = _make_zip(tmp_path / "pkg.zip")
    dest = tmp_path / "apps" / "tool#1.0"
    assert await extract_package(package, dest) == dest
    assert (dest / "share" / "data.txt").read_text() == "data"
    assert stat.S_IMODE((dest / "bin" / "tool.sh").stat().st_mode) == 0o755
    assert not (tmp_path / "apps" / "escape.txt").exists()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


async def test_concurrent_extractions_of_one_package(tmp_path: Path) -> None:
    package = _make_zip(tmp_path / "pkg.zip")
    dest = tmp_path / "apps" / "tool"
    await asyncio.gather(*(extract_package(package, dest) for _ in range(4)))
    assert (dest / "bin" / "tool.sh").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tool"]


def test_variable_names_follow_linux_nodes() -> None:
    # Linux nodes flatten ".", "-" and "#" to "_" and keep the application id's case.
    assert (
        linux_variable_name("Agent-linux-x64", "1.1.46.0") == "AZ_BATCH_APP_PACKAGE_Agent_linux_x64_1_1_46_0"
    )
    assert linux_variable_name("blender") == "AZ_BATCH_APP_PACKAGE_blender"
