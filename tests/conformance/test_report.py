"""The conformance results files and report: JUnit in, per-test outcomes and a Markdown page out."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from conformance import report
from conformance.results import ClientResults, Result, from_junit
from conformance.sdk import suite

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="test_batch.TestBatch" name="test_batch_jobs[sync]" time="1.0"/>
  <testcase classname="test_batch.TestBatch" name="test_batch_compute_node_user[sync]" time="1.0">
    <failure message="azure.core.exceptions.HttpResponseError: (NotImplemented) Node user accounts are not
supported by the local Batch emulator.">E   azure.core.exceptions.HttpResponseError: (NotImplemented)
E   Node user accounts are not supported by the local Batch emulator.
E   RequestId:1
E   Code: NotImplemented</failure>
  </testcase>
  <testcase classname="test_batch.TestBatch" name="test_batch_network_configuration[sync]" time="1.0">
    <failure message="AssertionError">E   AssertionError: assert 0 == 2
E   RequestId:2
E   Time:2026-01-01T00:00:00Z</failure>
  </testcase>
  <testcase classname="test_batch.TestBatch" name="test_skipped" time="0.0"><skipped/></testcase>
</testsuite></testsuites>
"""


def test_junit_results_tell_passed_failed_and_not_emulated_apart(tmp_path: Path) -> None:
    junit = tmp_path / "sdk.junit.xml"
    junit.write_text(JUNIT, encoding="utf-8")
    results = from_junit(junit, "sdk", "15.1.0")
    by_name = {result.name.split("::")[-1]: result for result in results.results}
    assert set(by_name) == {
        "test_batch_jobs[sync]",
        "test_batch_compute_node_user[sync]",
        "test_batch_network_configuration[sync]",
    }
    assert by_name["test_batch_jobs[sync]"].outcome == "passed"
    user = by_name["test_batch_compute_node_user[sync]"]
    assert (user.outcome, user.detail) == (
        "not_emulated",
        "Node user accounts are not supported by the local Batch emulator.",
    )
    network = by_name["test_batch_network_configuration[sync]"]
    assert network.outcome == "failed"
    assert network.detail == "AssertionError: assert 0 == 2"  # request ids and times left out


def test_the_report_lists_each_outcome_and_fails_on_outside_failures(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    ClientResults(
        "sdk",
        "15.1.0",
        [Result("a", "passed"), Result("b", "failed", "boom | bang"), Result("c", "not_emulated", "X")],
    ).write(results_dir / "sdk.json")
    ClientResults("emulator", "0.1.0", [Result("d", "passed")]).write(results_dir / "emulator.json")
    output = tmp_path / "conformance.md"
    code = report.main(["--results-dir", str(results_dir), "--output", str(output)])
    page = output.read_text(encoding="utf-8")
    assert code == 1
    assert "| `b` | **failed** | boom \\| bang |" in page
    assert "| `c` | not emulated | X |" in page
    assert "1 passed, 1 failed, 1 not emulated, of 3" in page
    assert "Not run (no `build/conformance/cli.json`" in page
    assert "All passed." in page


def test_the_report_passes_when_only_not_emulated_features_fail(tmp_path: Path) -> None:
    ClientResults("sdk", "15.1.0", [Result("c", "not_emulated", "X")]).write(tmp_path / "sdk.json")
    assert report.main(["--results-dir", str(tmp_path), "--output", str(tmp_path / "out.md")]) == 0


def test_a_cached_sdist_with_the_wrong_checksum_is_refused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "azure_batch-9.9.9.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    monkeypatch.setitem(suite.SDIST_SHA256, "9.9.9", hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(suite.SuiteError, match="SHA-256"):
        suite.download("9.9.9", tmp_path)
    assert not archive.exists()


def test_a_version_without_a_recorded_checksum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(suite.SuiteError, match="no SHA-256 recorded"):
        suite.download("0.0.1", tmp_path)
