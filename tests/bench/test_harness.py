"""The benchmark harness's own logic: targets, statistics, request counting, lateness and reports."""

from __future__ import annotations

import math

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.rest import HttpRequest

from bench.counting import RequestCounter
from bench.harness import Benchmark, Measurement, Target, percentile, ratio
from bench.report import build_result, console_lines, markdown
from bench.triggers_concurrent import _lateness


def _request(method: str, body: bytes | None = None) -> PipelineRequest[HttpRequest]:
    return PipelineRequest(
        HttpRequest(method, "http://127.0.0.1/jobs/a?x=1", content=body), PipelineContext(None)
    )


@pytest.mark.parametrize(
    ("op", "measured", "met"),
    [("<=", 1.0, True), ("<=", 1.01, False), (">=", 30.0, True), ("<", 1.0, False), ("==", 1.0, True)],
)
def test_target_compares_measured_with_limit(op: str, measured: float, met: bool) -> None:
    assert Target("ratios.x", op, 1.0 if op != ">=" else 30.0, "d").check(measured) is met  # type: ignore[arg-type]


def test_target_without_a_number_is_missed() -> None:
    assert Target("ratios.x", "<=", 1.0, "d").check(None) is False
    assert Target("ratios.x", "<=", 1.0, "d").check(math.nan) is False


def test_statistics() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
    assert percentile([1.0, 2.0], 0.5) == 1.0
    assert math.isnan(percentile([], 0.5))
    assert ratio(3.0, 0.0) == math.inf


def test_counter_counts_attempts_and_body_bytes() -> None:
    counter = RequestCounter(keep_records=True)
    put, get = _request("PUT", b"x" * 10), _request("GET")
    counter.on_request(put)
    counter.on_request(get)
    assert counter.snapshot() == (2, 10)
    assert counter.by_method == {"PUT": 1, "GET": 1}
    counter.on_response(put, PipelineResponse(put.http_request, None, put.context))
    (record,) = counter.records
    assert (record.method, record.path, record.body_bytes) == ("PUT", "http://127.0.0.1/jobs/a", 10)
    assert record.received_at >= record.sent_at
    counter.reset()
    assert counter.snapshot() == (0, 0)


def test_lateness_is_next_poll_minus_previous_end_minus_interval() -> None:
    log = [
        (0.0, 0.1, "GET", "/jobs/a/taskcounts", 200),
        (0.1, 0.2, "GET", "/jobs/a", 200),
        (1.5, 1.6, "GET", "/jobs/a/taskcounts", 200),
        (0.0, 0.1, "GET", "/pools/p", 200),
    ]
    polls = _lateness(log, poll_interval=1.0)
    assert polls["lateness"] == pytest.approx([0.3])
    assert polls["requests_per_poll"] == [2]
    assert polls["jobs_seen"] == 1


def test_report_shows_missed_targets_and_errors() -> None:
    benchmark = Benchmark(
        name="demo",
        what="w",
        baseline="b",
        method="m",
        targets=(Target("ratios.speedup", ">=", 2.0, "at least 2x", "{seconds.ours} vs {seconds.base}"),),
        run=lambda env, smoke: Measurement(),
    )
    measured = Measurement(seconds={"ours": 1.0, "base": 1.5}, ratios={"speedup": 1.5})
    common = {
        "wall_seconds": 1.0,
        "load_before": 0.1,
        "load_after": 0.2,
        "other_cpu_share": 0.5,
        "machine": {"cpu_count": 2},
    }
    result = build_result(benchmark, measured, error=None, smoke=True, **common)  # type: ignore[arg-type]
    assert result["met"] is False
    assert result["targets"][0]["detail"] == "1 s vs 1.5 s"
    assert any(line.lstrip().startswith("MISSED") for line in console_lines(result))
    failed = build_result(benchmark, Measurement(), error="boom", smoke=True, **common)  # type: ignore[arg-type]
    assert failed["met"] is False and failed["targets"][0]["measured"] is None
    report = markdown([result, failed], {"cpu_count": 2, "packages": {}}, "now", smoke=True)
    assert "**MISSED**" in report and "**ERROR**" in report and "## demo" in report
    assert "may be slower than on an idle machine" in report


def test_hooks_pass_http_policies_to_their_clients() -> None:
    from airflow_batch_provider.hooks.batch import BatchHook
    from airflow_batch_provider.hooks.blob import BlobStorageHook

    counter = RequestCounter()
    assert BatchHook("any", http_policies=[counter])._client_kwargs(False)["per_retry_policies"] == [counter]
    assert BatchHook("any", http_policies=[counter])._client_kwargs(True)["per_retry_policies"] == [counter]
    assert "per_retry_policies" not in BatchHook("any")._client_kwargs(False)
    blob = BlobStorageHook("any", http_policies=[counter])
    assert blob._policy_options() == {"_additional_pipeline_policies": [counter]}
    assert BlobStorageHook("any")._policy_options() == {}
