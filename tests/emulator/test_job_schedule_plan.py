"""The job schedule's decisions at given moments, on a fake clock: no waiting for real intervals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_batch_provider.emulator.errors import BatchError
from airflow_batch_provider.emulator.models.account import BatchAccount, EmulatorSettings
from airflow_batch_provider.emulator.models.job_schedules import JobSchedule, Plan, Recurrence

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def account(tmp_path: Path) -> BatchAccount:
    return BatchAccount(EmulatorSettings(state_dir=tmp_path))


def _schedule(account: BatchAccount, **recurrence: object) -> JobSchedule:
    schedule = JobSchedule(account, "nightly", {})
    schedule.creation_time = T0
    schedule.recurrence = Recurrence(**recurrence)  # type: ignore[arg-type]
    return schedule


def test_the_first_run_is_due_at_creation_or_at_do_not_run_until(account: BatchAccount) -> None:
    assert _schedule(account).plan(T0) == Plan("create", run_time=T0)
    later = T0 + 3 * HOUR
    waiting = _schedule(account, do_not_run_until=later)
    assert waiting.plan(T0) == Plan("wait", run_time=later, seconds=3 * 3600)
    assert waiting.plan(later) == Plan("create", run_time=later)


def test_runs_follow_the_interval_and_skip_intervals_that_passed(account: BatchAccount) -> None:
    schedule = _schedule(account, recurrence_interval=HOUR)
    schedule.last_run = T0
    assert schedule.plan(T0 + 10 * MINUTE) == Plan("wait", run_time=T0 + HOUR, seconds=50 * 60)
    assert schedule.plan(T0 + HOUR) == Plan("create", run_time=T0 + HOUR)
    # Three hours and five minutes on, only the run of the current interval is still due.
    assert schedule.plan(T0 + 3 * HOUR + 5 * MINUTE) == Plan("create", run_time=T0 + 3 * HOUR)


def test_a_missed_start_window_loses_the_run(account: BatchAccount) -> None:
    recurring = _schedule(account, recurrence_interval=HOUR, start_window=10 * MINUTE)
    recurring.last_run = T0
    assert recurring.plan(T0 + HOUR + 5 * MINUTE).action == "create"
    assert recurring.plan(T0 + HOUR + 20 * MINUTE) == Plan("skip", run_time=T0 + HOUR)
    once = _schedule(account, start_window=10 * MINUTE)
    assert once.plan(T0 + 20 * MINUTE) == Plan("skip", run_time=T0)
    once.last_run = T0
    assert once.plan(T0 + 20 * MINUTE) == Plan("complete")


def test_do_not_run_after_ends_the_schedule(account: BatchAccount) -> None:
    schedule = _schedule(account, recurrence_interval=HOUR, do_not_run_after=T0 + 90 * MINUTE)
    schedule.last_run = T0 + HOUR
    # The next run would be after the deadline: wait for the deadline, then complete.
    assert schedule.plan(T0 + HOUR + MINUTE) == Plan("wait", seconds=29 * 60)
    assert schedule.plan(T0 + 90 * MINUTE + MINUTE) == Plan("complete")


def test_disabled_schedules_wait_until_enabled(account: BatchAccount) -> None:
    schedule = _schedule(account)
    schedule.state = "disabled"
    assert schedule.plan(T0) == Plan("wait")


def test_the_scale_shortens_intervals_but_not_absolute_times(tmp_path: Path) -> None:
    account = BatchAccount(EmulatorSettings(state_dir=tmp_path, schedule_interval_scale=0.01))
    schedule = _schedule(account, recurrence_interval=timedelta(minutes=10))
    schedule.last_run = T0
    assert schedule.next_run_time(T0) == T0 + timedelta(seconds=6)
    until = _schedule(account, do_not_run_until=T0 + HOUR)
    assert until.next_run_time(T0) == T0 + HOUR


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"recurrenceInterval": "PT59S"}, "schedule/recurrenceInterval"),
        ({"startWindow": "PT30S"}, "schedule/startWindow"),
        ({"doNotRunUntil": "tomorrow"}, "schedule/doNotRunUntil"),
        ({"recurrenceInterval": "often"}, "schedule/recurrenceInterval"),
    ],
)
def test_invalid_recurrence_names_the_property(body: dict[str, str], name: str) -> None:
    with pytest.raises(BatchError) as excinfo:
        Recurrence.parse(body)
    assert (excinfo.value.code, excinfo.value.values["PropertyName"]) == ("InvalidPropertyValue", name)


def test_a_scale_that_would_stop_the_clock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="schedule_interval_scale must be positive"):
        BatchAccount(EmulatorSettings(state_dir=tmp_path, schedule_interval_scale=0))
