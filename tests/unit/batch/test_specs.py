"""Building pool, job and task bodies: what the operators send, and why they refuse bad specs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.batch import models

from airflow_batch_provider.batch.durations import UNBOUNDED_DURATION, parse_iso_duration, to_iso_duration
from airflow_batch_provider.batch.job_spec import build_job_spec, job_differences
from airflow_batch_provider.batch.pool_spec import build_pool_spec, pool_differences, resolve_image
from airflow_batch_provider.batch.rest import to_rest
from airflow_batch_provider.batch.task_plan import normalize_task, std_log_output_files
from airflow_batch_provider.exceptions import InvalidInputError

SUPPORTED = [
    {
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
        "imageReference": {
            "publisher": "canonical",
            "offer": "ubuntu-24_04-lts",
            "sku": "server",
            "version": "latest",
        },
        "osType": "linux",
    },
    {
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        "imageReference": {
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
        },
        "osType": "linux",
    },
    {
        "nodeAgentSKUId": "batch.node.ubuntu 20.04",
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-focal",
            "sku": "20_04-lts",
        },
        "batchSupportEndOfLife": "2025-04-30T00:00:00Z",
        "osType": "linux",
    },
]


def _pool(**overrides: object) -> dict:
    args: dict = dict(
        pool_id="p1",
        vm_size="standard_d2s_v3",
        image_reference={
            "publisher": "canonical",
            "offer": "ubuntu-24_04-lts",
            "sku": "server",
            "version": "latest",
        },
        node_agent_sku_id="batch.node.ubuntu 24.04",
        target_dedicated_nodes=2,
    )
    args.update(overrides)
    return build_pool_spec(**args)


def test_python_style_dicts_and_sdk_models_become_rest_json() -> None:
    assert to_rest({"command_line": "x", "resource_files": [{"http_url": "u", "file_path": "f"}]}) == {
        "commandLine": "x",
        "resourceFiles": [{"httpUrl": "u", "filePath": "f"}],
    }
    model = models.BatchTaskCreateOptions(
        id="t", command_line="echo", constraints={"maxWallClockTime": "PT1H"}
    )
    assert to_rest(model) == {"id": "t", "commandLine": "echo", "constraints": {"maxWallClockTime": "PT1H"}}
    assert to_rest({"constraints": {"max_wall_clock_time": timedelta(hours=2)}}) == {
        "constraints": {"maxWallClockTime": "PT2H"}
    }


def test_numbers_in_duration_fields_are_seconds() -> None:
    # Every other duration argument of the provider takes seconds; nested REST dicts do too.
    assert to_rest({"constraints": {"max_wall_clock_time": 600, "retention_time": 86400.5}}) == {
        "constraints": {"maxWallClockTime": "PT10M", "retentionTime": "P1DT0.5S"}
    }
    assert to_rest({"constraints": {"maxTaskRetryCount": 3}}) == {"constraints": {"maxTaskRetryCount": 3}}


def test_free_form_dicts_keep_their_keys() -> None:
    assert to_rest({"resource_tags": {"cost_center": "a"}}) == {"resourceTags": {"cost_center": "a"}}


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (90, "PT1M30S"),
        (0, "PT0S"),
        (timedelta(days=2), "P2D"),
        ("PT5M", "PT5M"),
    ],
)
def test_durations_become_iso_8601(value: object, iso: str) -> None:
    assert to_iso_duration(value) == iso  # type: ignore[arg-type]


def test_bad_durations_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="not an ISO 8601 duration"):
        to_iso_duration("1 hour")
    with pytest.raises(InvalidInputError, match="cannot be negative"):
        to_iso_duration(-5)


def test_iso_durations_parse_and_unbounded_is_none() -> None:
    assert parse_iso_duration("PT1H30M") == timedelta(hours=1, minutes=30)
    assert parse_iso_duration("P1DT2H") == timedelta(days=1, hours=2)
    assert parse_iso_duration(UNBOUNDED_DURATION) is None
    assert parse_iso_duration(None) is None


def test_alias_resolves_to_node_agent_from_supported_images() -> None:
    reference, agent = resolve_image("ubuntu-24.04", None, SUPPORTED)
    assert agent == "batch.node.ubuntu 24.04"
    assert reference["offer"] == "ubuntu-24_04-lts" and reference["version"] == "latest"
    _, agent = resolve_image("Ubuntu-22.04", None, SUPPORTED)  # case-insensitive, publisher case too
    assert agent == "batch.node.ubuntu 22.04"


def test_explicit_reference_without_agent_is_looked_up() -> None:
    ref = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}
    reference, agent = resolve_image(ref, None, SUPPORTED)
    assert agent == "batch.node.ubuntu 22.04" and reference["version"] == "latest"


def test_explicit_agent_needs_no_lookup() -> None:
    assert resolve_image({"publisher": "a", "offer": "b", "sku": "c"}, "agent", None)[1] == "agent"


def test_end_of_life_images_are_not_used() -> None:
    with pytest.raises(InvalidInputError, match="not in the Batch account's supported images"):
        resolve_image("ubuntu-20.04", None, SUPPORTED)


def test_unknown_alias_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"Unknown image alias 'centos'.*ubuntu-24.04"):
        resolve_image("centos", None, SUPPORTED)


def test_incomplete_reference_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="needs publisher, offer and sku"):
        resolve_image({"publisher": "canonical"}, "agent", None)


def test_fixed_size_pool_spec() -> None:
    spec = _pool(task_slots_per_node=4, node_fill_type="Pack", metadata={"owner": "etl"}, target_spot_nodes=3)
    assert spec["vmSize"] == "standard_d2s_v3"
    assert spec["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 24.04"
    assert spec["targetDedicatedNodes"] == 2 and spec["targetLowPriorityNodes"] == 3
    assert spec["enableAutoScale"] is False
    assert spec["taskSlotsPerNode"] == 4 and spec["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
    assert spec["metadata"] == [{"name": "owner", "value": "etl"}]


def test_autoscale_pool_spec() -> None:
    spec = _pool(
        target_dedicated_nodes=None,
        auto_scale_formula="$TargetDedicatedNodes=1;",
        auto_scale_evaluation_interval=timedelta(minutes=5),
    )
    assert spec["enableAutoScale"] is True
    assert spec["autoScaleEvaluationInterval"] == "PT5M"
    assert "targetDedicatedNodes" not in spec


def test_start_task_in_python_style_and_extra_spec_merge() -> None:
    spec = _pool(
        start_task={"command_line": "setup.sh", "wait_for_success": True},
        extra={"network_configuration": {"subnet_id": "/sub/x"}, "vm_size": "standard_d4s_v3"},
    )
    assert spec["startTask"] == {"commandLine": "setup.sh", "waitForSuccess": True}
    assert spec["networkConfiguration"] == {"subnetId": "/sub/x"}
    assert spec["vmSize"] == "standard_d4s_v3"


def test_pool_without_any_node_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="The pool would have no nodes"):
        _pool(target_dedicated_nodes=0)


def test_both_formula_and_counts_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="either auto_scale_formula or target_dedicated_nodes"):
        _pool(auto_scale_formula="$TargetDedicatedNodes=1;")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vm_size": ""}, "vm_size is required"),
        ({"task_slots_per_node": 0}, "task_slots_per_node must be an integer"),
        ({"node_fill_type": "dense"}, "node_fill_type must be 'spread' or 'pack'"),
        ({"target_dedicated_nodes": -1}, "target_dedicated_nodes must be a whole number"),
    ],
)
def test_pool_input_errors(overrides: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _pool(**overrides)


def test_identical_pool_has_no_differences_even_with_other_counts() -> None:
    requested = _pool()
    existing = {**requested, "targetDedicatedNodes": 5, "state": "active", "vmSize": "STANDARD_D2S_V3"}
    assert pool_differences(requested, existing) == []


def test_pool_differences_are_listed() -> None:
    requested = _pool(task_slots_per_node=4)
    existing = _pool(vm_size="standard_d4s_v3", node_fill_type="pack")
    diffs = pool_differences(requested, existing)
    assert "vmSize: existing 'standard_d4s_v3', requested 'standard_d2s_v3'" in diffs
    assert "taskSlotsPerNode: existing 1, requested 4" in diffs
    assert "taskSchedulingPolicy.nodeFillType: existing 'pack', requested 'spread'" in diffs


def test_job_spec_with_kill_switch_and_policies() -> None:
    spec = build_job_spec(
        job_id="j",
        pool_id="p",
        priority=100,
        max_parallel_tasks=10,
        max_wall_clock_time=timedelta(hours=6),
        max_task_retry_count=2,
        job_preparation_task={"command_line": "prep.sh"},
        common_environment_settings={"MODE": "prod"},
        uses_task_dependencies=True,
        on_all_tasks_complete="terminateJob",
        on_task_failure="performExitOptionsJobAction",
        metadata={"dag": "d"},
    )
    assert spec["poolInfo"] == {"poolId": "p"}
    assert spec["constraints"] == {"maxWallClockTime": "PT6H", "maxTaskRetryCount": 2}
    assert spec["jobPreparationTask"] == {"commandLine": "prep.sh"}
    assert spec["commonEnvironmentSettings"] == [{"name": "MODE", "value": "prod"}]
    assert spec["onAllTasksComplete"] == "terminatejob"
    assert spec["onTaskFailure"] == "performexitoptionsjobaction"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pool_id": ""}, "pool_id is required"),
        ({"priority": 5000}, "priority must be between -1000 and 1000"),
        ({"max_parallel_tasks": 0}, "max_parallel_tasks must be -1"),
        ({"on_all_tasks_complete": "delete"}, "on_all_tasks_complete must be one of"),
        ({"on_task_failure": "retry"}, "on_task_failure must be one of"),
    ],
)
def test_job_input_errors(overrides: dict, message: str) -> None:
    args = {"job_id": "j", "pool_id": "p", **overrides}
    with pytest.raises(InvalidInputError, match=message):
        build_job_spec(**args)


def test_job_reuse_rules() -> None:
    requested = build_job_spec(job_id="j", pool_id="p", uses_task_dependencies=True)
    assert (
        job_differences(
            requested, {"poolInfo": {"poolId": "P"}, "state": "active", "usesTaskDependencies": True}
        )
        == []
    )
    diffs = job_differences(requested, {"poolInfo": {"poolId": "other"}, "state": "completed"})
    assert any("poolInfo.poolId" in d for d in diffs)
    assert any("accepts no new tasks" in d for d in diffs)
    assert any("usesTaskDependencies" in d for d in diffs)


def test_std_logs_upload_on_completion() -> None:
    (entry,) = std_log_output_files("https://a/c?sig=x", "job/t1/logs/")
    assert entry["filePattern"] == "../std*.txt"
    assert entry["uploadOptions"] == {"uploadCondition": "taskcompletion"}
    assert entry["destination"]["container"]["path"] == "job/t1/logs"


def test_task_strings_are_refused_and_env_dicts_converted() -> None:
    with pytest.raises(InvalidInputError, match="not a string"):
        normalize_task("echo hi")
    task = normalize_task({"id": "t", "command_line": "x", "environment_settings": {"A": 1}})
    assert task["environmentSettings"] == [{"name": "A", "value": "1"}]
