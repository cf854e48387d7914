"""Planning a task collection, without Airflow: ids, common settings, output files, checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_batch_provider.batch.task_plan import (
    DEFAULT_UNBOUNDED_SAS_TTL,
    CommonSettings,
    OutputSettings,
    check_dependencies,
    job_accepts_tasks,
    needed_sas_lifetime,
    number_tasks,
    plan_task_collection,
)
from airflow_batch_provider.exceptions import InvalidInputError

URL = "https://acct.blob.core.windows.net/out?se=2099-01-01T00:00:00Z&sp=cw&sig=SIG"
SOON = datetime.now(timezone.utc) + timedelta(hours=1)


def _plan(
    tasks: list[dict], common: CommonSettings | None = None, outputs: OutputSettings | None = None
) -> list:
    return plan_task_collection(
        tasks,
        common or CommonSettings(),
        outputs,
        task_slots_per_node=2,
        pool_id="p1",
        sas_needed_until=SOON,
        sas_reason="test",
    )


def test_ids_are_prefixed_positions_or_the_tasks_own() -> None:
    tasks = number_tasks([{"commandLine": "a"}, {"id": "named", "commandLine": "b"}], "run-")
    assert [t["id"] for t in tasks] == ["run-00000", "run-named"]
    long = number_tasks([{"id": "x" * 70, "commandLine": "a"}], "run-")[0]["id"]
    assert len(long) <= 64 and long.startswith("run-x")
    assert number_tasks([{"id": "kept", "commandLine": "a"}], "")[0]["id"] == "kept"


def test_common_settings_sit_under_each_tasks_own_values() -> None:
    common = CommonSettings(
        environment=[{"name": "MODE", "value": "all"}, {"name": "A", "value": "1"}],
        constraints={"maxWallClockTime": "PT1H", "maxTaskRetryCount": 1},
        required_slots=2,
        extras={"userIdentity": {"autoUser": {"scope": "task"}}},
    )
    task = {"id": "t", "commandLine": "x", "environmentSettings": [{"name": "MODE", "value": "mine"}]}
    [body] = _plan([task], common)
    assert body["environmentSettings"] == [{"name": "MODE", "value": "mine"}, {"name": "A", "value": "1"}]
    assert body["constraints"] == {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 1}
    assert body["requiredSlots"] == 2 and body["userIdentity"] == {"autoUser": {"scope": "task"}}


def test_output_files_land_under_the_task_folder() -> None:
    outputs = OutputSettings(URL, "/job/run/", ("out/*.json", "result.csv"))
    [body] = _plan([{"id": "t1", "commandLine": "x"}], outputs=outputs)
    paths = {f["filePattern"]: f["destination"]["container"]["path"] for f in body["outputFiles"]}
    assert paths == {
        "out/*.json": "job/run/t1",
        "result.csv": "job/run/t1/result.csv",
        "../std*.txt": "job/run/t1/logs",
    }


def test_the_plan_refuses_what_the_service_would() -> None:
    with pytest.raises(InvalidInputError, match="require more slots"):
        _plan([{"id": "t", "commandLine": "x", "requiredSlots": 3}])
    with pytest.raises(InvalidInputError, match="overwrite"):
        _plan([{"id": "t", "commandLine": "x"}], outputs=OutputSettings(URL, "j", ("a/r.json", "b/r.json")))
    expiring = "https://acct.blob.core.windows.net/in?se=2000-01-01T00:00:00Z&sig=S"
    with pytest.raises(InvalidInputError, match="expires"):
        _plan([{"id": "t", "commandLine": "x", "resourceFiles": [{"httpUrl": expiring}]}])


def test_dependencies_need_a_job_that_allows_them() -> None:
    tasks = [{"id": "a"}, {"id": "b", "dependsOn": {"taskIds": ["a"]}}]
    check_dependencies(tasks, {"usesTaskDependencies": True}, "j")
    with pytest.raises(InvalidInputError, match="uses_task_dependencies"):
        check_dependencies(tasks, {}, "j")


def test_sas_lifetime_follows_the_job_then_the_tasks_then_a_default() -> None:
    job = {"constraints": {"maxWallClockTime": "PT6H"}}
    assert needed_sas_lifetime(job, None, 3600)[0] == timedelta(hours=7)
    assert needed_sas_lifetime({}, {"max_wall_clock_time": 600}, 0)[0] == timedelta(minutes=10)
    assert needed_sas_lifetime({}, None, timedelta(hours=2))[0] == DEFAULT_UNBOUNDED_SAS_TTL


@pytest.mark.parametrize(("state", "accepts"), [("active", True), ("", True), ("completed", False)])
def test_only_a_live_job_accepts_tasks(state: str, accepts: bool) -> None:
    assert job_accepts_tasks({"state": state}) is accepts
