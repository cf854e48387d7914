"""The core quota wait of a pool: when it pauses, resizes and gives up, and that a copy restored from
JSON (a trigger's arguments) goes on with the same schedule."""

from __future__ import annotations

from airflow_batch_provider.batch.capacity import CoreQuotaRetry, QuotaWait


def _retry() -> CoreQuotaRetry:
    return CoreQuotaRetry(QuotaWait(timeout=100, first_delay=5, max_delay=20), 2, 1)


def test_the_first_failure_pauses_then_resizes_follow_the_backoff() -> None:
    retry = _retry()
    assert retry.on_quota_failure(1000) == "pause"  # the first pause: 5 s
    assert retry.on_quota_failure(1004) == "pause"
    assert retry.on_quota_failure(1005, steady=False) == "pause"  # still resizing: not now
    assert retry.on_quota_failure(1005) == "resize" and retry.resizes == 1
    assert retry.next_resize_at == 1015  # then 10 s
    assert retry.on_quota_failure(1014) == "pause"
    assert retry.on_quota_failure(1015) == "resize" and retry.next_resize_at == 1035  # then 20 s (cap)
    assert retry.on_quota_failure(1035) == "resize" and retry.next_resize_at == 1055
    assert retry.on_quota_failure(1100) == "expired"  # 100 s after the first failure
    assert retry.resizes == 3 and retry.waited(1100) == 100


def test_a_copy_from_json_goes_on_with_the_same_schedule() -> None:
    retry = _retry()
    retry.on_quota_failure(1000)
    retry.on_quota_failure(1005)  # resize 1; the next pause is 10 s
    copy = CoreQuotaRetry.from_json(retry.to_json())
    assert copy == retry
    assert copy.on_quota_failure(1014) == "pause"
    assert copy.on_quota_failure(1015) == "resize" and copy.next_resize_at == 1035
    assert (copy.dedicated_nodes, copy.low_priority_nodes, copy.resizes) == (2, 1, 2)
