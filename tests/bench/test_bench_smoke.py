"""The benchmark harness, run with tiny sizes, so ``make bench`` cannot rot between full runs."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = (REPO_ROOT / "bench" / "results.json", REPO_ROOT / "docs" / "benchmarks.md")


def _fingerprint(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_smoke_run_writes_every_benchmark(tmp_path: Path) -> None:
    from bench.suite import BENCHMARKS

    before = {path: _fingerprint(path) for path in COMMITTED}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert f"bench: {len(BENCHMARKS)} benchmarks" in completed.stdout

    document = json.loads((tmp_path / "results.json").read_text())
    assert document["mode"] == "smoke"
    assert document["machine"]["cpu_count"] >= 1
    results = {result["name"]: result for result in document["benchmarks"]}
    assert list(results) == [benchmark.name for benchmark in BENCHMARKS]
    for name, result in results.items():
        assert result["error"] is None, name
        assert isinstance(result["met"], bool), name
        assert result["seconds"] and all(
            _is_number(value) for value in result["seconds"].values() if not isinstance(value, list)
        ), name
        assert result["targets"], name
        for target in result["targets"]:
            assert _is_number(target["measured"]), (name, target)
            assert isinstance(target["met"], bool), (name, target)
        assert result["machine"]["python"], name
    assert results["task_submit_10k"]["requests"]["ours_operator_add_collection"] >= 1
    # Requests are counted through the hooks' http_policies, for Batch and for Blob.
    assert results["upload_many_small"]["requests"]["ours"] >= results["upload_many_small"]["sizes"]["files"]
    assert results["upload_rerun_unchanged"]["metrics"]["rerun_bytes_sent"] == 0
    # Get-task latency was probed while each big input was handled.
    big_inputs = results["emulator_big_inputs"]["requests"]
    assert big_inputs["probes_long_command_line"] >= 1 and big_inputs["probes_dependency_range"] >= 1
    # The upload also ran over a delayed link, and the link really delayed every request.
    many_small = results["upload_many_small"]
    assert _is_number(many_small["ratios"]["speedup_vs_sequential_over_2ms_link"])
    # Judged on the 5 ms link, with half of it as slack: the loopback baseline is one short run, so a
    # loaded machine moves the difference by a millisecond or two either way.
    assert many_small["metrics"]["added_ms_per_request_over_5ms_link"] >= 2.5

    report = (tmp_path / "benchmarks.md").read_text()
    for name in results:
        assert f"## {name}" in report
    # A smoke run never touches the committed results.
    assert {path: _fingerprint(path) for path in COMMITTED} == before
