"""``scripts/demo.py`` (what ``make demo`` runs), end to end, into a temporary directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.integration


def test_demo_runs_the_workflow_and_the_application_package_example_and_prints_one_summary_line(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "AZURE_BATCH_DEMO_DIR": str(tmp_path / "demo")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(
        r"demo: ok files=(\d+) tasks=(\d+) succeeded=(\d+) outputs=(\d+) "
        r"app_package=(\S+) app_tasks=(\d+) seconds=(\d+\.\d)",
        last,
    )
    assert match, last
    files, tasks, succeeded, outputs = (int(group) for group in match.groups()[:4])
    assert files == tasks == succeeded == outputs == 6
    # The application-package example ran offline through the azbatch_arm connection only.
    assert match.group(5) == "wordcount/1.0"
    assert int(match.group(6)) == 3
    assert len(list((tmp_path / "demo" / "outputs").rglob("*.stats.json"))) == 6
