"""Every validation message of the Batch operators and the storage helpers (container names, blob
prefixes): raised before any call, and saying how to fix it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_batch_provider.batch.validation import (
    normalize_blob_prefix,
    sas_expiry_of,
    validate_batch_id,
    validate_container_name,
    validate_non_negative_int,
    validate_sas_lifetime,
    validate_start_task_reboots,
    validate_task_collection,
    validate_unique_batch_ids,
)
from airflow_batch_provider.exceptions import InvalidInputError


def _task(task_id: str, command: str = "echo hi", **extra: object) -> dict[str, object]:
    return {"id": task_id, "commandLine": command, **extra}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty or not a string"),
        (None, "empty or not a string"),
        ("a" * 65, "65 characters, more than 64"),
        ("bad id", "characters Batch rejects: ' '"),
        ("run:1/2", "characters Batch rejects: '/:'"),
        ("é", "characters Batch rejects"),
    ],
)
def test_invalid_batch_ids_are_explained(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        validate_batch_id(value, "job")
    assert "make_batch_id" in str(info.value)
    assert "job id" in str(info.value)


def test_valid_batch_id_is_returned() -> None:
    assert validate_batch_id("job-1_a") == "job-1_a"


def test_duplicate_ids_are_case_insensitive() -> None:
    with pytest.raises(InvalidInputError, match=r"1 task id\(s\) occur more than once.*Task-1/task-1"):
        validate_unique_batch_ids(["Task-1", "task-1", "task-2"])


def test_empty_collection_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no tasks to add"):
        validate_task_collection([])


def test_task_without_command_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"1 task\(s\) have an empty command line: t2"):
        validate_task_collection([_task("t1"), _task("t2", "  ")])


def test_task_with_invalid_id_names_its_position() -> None:
    with pytest.raises(InvalidInputError, match=r"task \(#1\) id 'bad id'"):
        validate_task_collection([_task("t1"), _task("bad id")])


def test_required_slots_above_pool_slots_are_refused() -> None:
    tasks = [_task("t1", requiredSlots=2), _task("t2", requiredSlots=8)]
    with pytest.raises(InvalidInputError, match=r"require more slots than a node of pool 'p1' has") as info:
        validate_task_collection(tasks, task_slots_per_node=4, pool_id="p1")
    assert "t2 (8)" in str(info.value) and "t1" not in str(info.value).split(":")[-1]


def test_required_slots_must_be_positive_integers() -> None:
    with pytest.raises(InvalidInputError, match="requiredSlots must be an integer of at least 1"):
        validate_task_collection([_task("t1", requiredSlots=0)])


def test_sas_expiry_is_read_from_the_url() -> None:
    url = "https://acct.blob.core.windows.net/c/b?sv=2024&se=2030-01-02T03%3A04%3A05Z&sig=abc"
    assert sas_expiry_of(url) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert sas_expiry_of("https://acct.blob.core.windows.net/c/b") is None


def test_sas_expiring_before_the_job_can_end_is_refused_without_leaking_it() -> None:
    url = "https://acct.blob.core.windows.net/c/b?se=2030-01-01T00%3A00%3A00Z&sig=SECRET"
    needed = datetime(2030, 1, 1, 6, tzinfo=timezone.utc)
    with pytest.raises(InvalidInputError, match=r"expires at 2030-01-01T00:00:00Z, 6:00:00 before") as info:
        validate_sas_lifetime([url], needed_until=needed, reason="job max wall clock")
    assert "SECRET" not in str(info.value)
    assert "identity_reference" in str(info.value)


def test_sas_lasting_long_enough_passes() -> None:
    url = "https://acct.blob.core.windows.net/c/b?se=2030-01-02T00%3A00%3A00Z&sig=x"
    validate_sas_lifetime(
        [url], needed_until=datetime(2030, 1, 1, tzinfo=timezone.utc) + timedelta(hours=1), reason="r"
    )


@pytest.mark.parametrize("good", [0, 1, 10])
def test_non_negative_whole_numbers_pass(good: int) -> None:
    assert validate_non_negative_int(good, "n") == good


@pytest.mark.parametrize("bad", [-1, 1.0, "2", True, None, [1]])
def test_reboot_budget_must_be_a_non_negative_whole_number(bad: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_start_task_reboots(bad)
    message = str(info.value)
    assert message.startswith("max_start_task_reboots must be a whole number of at least 0 (reboots per node")
    assert message.endswith(f"got {bad!r}.")


def test_an_id_ending_in_a_newline_is_refused() -> None:
    # Regression: ``^...$`` with re.match let "x\n" through every id check.
    with pytest.raises(InvalidInputError, match="characters Batch rejects: '\\\\n'"):
        validate_batch_id("x\n", "task")
    with pytest.raises(InvalidInputError, match="characters Batch rejects"):
        validate_task_collection([_task("x\n")])


def _output(pattern: str, path: str, container: str = "https://a.blob.core.windows.net/out?sig=S") -> dict:
    return {
        "filePattern": pattern,
        "destination": {"container": {"containerUrl": container, "path": path}},
        "uploadOptions": {"uploadCondition": "tasksuccess"},
    }


@pytest.mark.parametrize(
    ("first", "second", "blob"),
    [
        (
            _output("a/result.json", "t/result.json"),
            _output("b/result.json", "t/result.json"),
            "t/result.json",
        ),
        (_output("a/*.json", "t"), _output("b/*.json", "t"), "t/*.json"),
        (_output("a/x.txt", ""), _output("b/x.txt", ""), "x.txt"),
    ],
)
def test_two_output_patterns_writing_one_blob_are_refused(first: dict, second: dict, blob: str) -> None:
    # Regression: one file silently overwrote the other after the task ran.
    with pytest.raises(InvalidInputError, match="overwrite") as info:
        validate_task_collection([_task("t1", outputFiles=[first, second])])
    message = str(info.value)
    assert first["filePattern"] in message and second["filePattern"] in message
    assert repr(blob) in message and "sig=" not in message and "wildcard pattern" in message


@pytest.mark.parametrize(
    "outputs",
    [
        [_output("a/result.json", "t/a.json"), _output("b/result.json", "t/b.json")],
        [_output("*/result.json", "t"), _output("../std*.txt", "t/logs")],
        [_output("out/x.txt", "t/x.txt"), _output("out/x.txt", "t/x.txt")],  # the same file twice
        [
            _output("a/x.txt", "t/x.txt"),
            _output("b/x.txt", "t/x.txt", "https://a.blob.core.windows.net/other"),
        ],
    ],
)
def test_output_patterns_writing_distinct_blobs_pass(outputs: list[dict]) -> None:
    validate_task_collection([_task("t1", outputFiles=outputs)])


@pytest.mark.parametrize(
    "name",
    ["abc", "inputs", "run-2026-01-01", "a1b", "0-9", "a" * 63, "$root", "$web", "$logs"],
)
def test_valid_container_names(name: str) -> None:
    assert validate_container_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason", "suggestion"),
    [
        ("ab", "it has 2 characters, not 3 to 63", None),
        ("a" * 64, "it has 64 characters, not 3 to 63", "a" * 63),
        ("Inputs", "it contains 'I'", "inputs"),
        ("my_data", "it contains '_'", "my-data"),
        ("my data.v2", "it contains ' ', '.'", "my-data-v2"),
        ("a--b", "it contains consecutive hyphens", "a-b"),
        ("-abc", "it starts or ends with a hyphen", "abc"),
        ("abc-", "it starts or ends with a hyphen", "abc"),
        ("", "it has 0 characters", None),
    ],
)
def test_invalid_container_names_explain_the_rule(name: str, reason: str, suggestion: str | None) -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_container_name(name, field="output_container")
    message = str(error.value)
    assert message.startswith(f"output_container {name!r} is not a valid Blob container name")
    assert reason in message
    assert "lower-case letters, digits and single hyphens" in message
    if suggestion:
        assert f"For example: {suggestion!r}" in message
    else:
        assert "For example" not in message


def test_default_field_name_and_type_check() -> None:
    with pytest.raises(InvalidInputError, match=r"^container 'A' is not"):
        validate_container_name("A")
    with pytest.raises(InvalidInputError, match="container must be a string"):
        validate_container_name(None)  # type: ignore[arg-type]


def test_invalid_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_container_name("no")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (None, ""),
        ("", ""),
        ("/", ""),
        ("inputs", "inputs/"),
        ("inputs/", "inputs/"),
        ("/inputs//run-1/", "inputs/run-1/"),
        ("a\\b", "a/b/"),
    ],
)
def test_prefix_normalisation(prefix: str | None, expected: str) -> None:
    assert normalize_blob_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["../x", "a/./b", "a/.."])
def test_prefix_dot_segments_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^blob_prefix .* contains a '\.' or '\.\.' segment"):
        normalize_blob_prefix(prefix, field="blob_prefix")


def test_prefix_too_long() -> None:
    with pytest.raises(InvalidInputError, match="limited to 1024"):
        normalize_blob_prefix("p" * 1024)
