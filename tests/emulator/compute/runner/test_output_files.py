"""Output files: uploaded after the process exits, by pattern, condition and destination path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from airflow_batch_provider.emulator.compute.runner.executor import TaskExecutor
from airflow_batch_provider.emulator.compute.runner.output_files import match_files
from airflow_batch_provider.emulator.compute.runner.spec import TaskRunResult, TaskRunSpec

from .helpers import Node, Storage, output_file

# Writes a small tree of results and some output on both streams.
MAKE_RESULTS = (
    "/bin/sh -c 'mkdir -p out/2024/jan && echo a > out/top.csv && echo b > out/2024/jan/b.csv"
    " && echo c > out/notes.txt && echo hidden > out/.secret.csv && echo to-stdout && echo to-stderr >&2"
    " && exit ${CODE:-0}'"
)


async def run(spec: TaskRunSpec) -> TaskRunResult:
    return await TaskExecutor().run(spec, asyncio.Event())


@pytest.mark.integration
async def test_recursive_pattern_keeps_relative_paths_under_the_destination_path(
    node: Node, storage: Storage
) -> None:
    container = storage.container()
    url = storage.sas_url(container, "cw")
    spec = node.spec(
        MAKE_RESULTS, output_files=[output_file("out/**/*.csv", url, "tasksuccess", path="results")]
    )
    result = await run(spec)
    assert result.exit_code == 0 and result.failure_info is None, result.failure_info
    assert storage.names(container) == ["results/2024/jan/b.csv", "results/top.csv"]
    assert storage.read(container, "results/2024/jan/b.csv") == b"b\n"


@pytest.mark.integration
async def test_std_files_from_the_task_directory(node: Node, storage: Storage) -> None:
    container = storage.container()
    url = storage.sas_url(container, "cw")
    spec = node.spec(MAKE_RESULTS, output_files=[output_file("../std*.txt", url, path="logs/task-1")])
    assert (await run(spec)).failure_info is None
    assert storage.names(container) == ["logs/task-1/stderr.txt", "logs/task-1/stdout.txt"]
    assert storage.read(container, "logs/task-1/stdout.txt") == b"to-stdout\n"
    assert storage.read(container, "logs/task-1/stderr.txt") == b"to-stderr\n"


@pytest.mark.integration
async def test_single_file_path_is_the_blob_name_and_headers_apply(node: Node, storage: Storage) -> None:
    container = storage.container()
    url = storage.sas_url(container, "cw")
    headers = [{"name": "Content-Type", "value": "text/csv"}, {"name": "Cache-Control", "value": "no-cache"}]
    spec = node.spec(
        MAKE_RESULTS,
        output_files=[
            output_file("out/top.csv", url, path="final/summary.csv", uploadHeaders=headers),
            output_file("out/notes.txt", url),
        ],
    )
    assert (await run(spec)).failure_info is None
    assert storage.names(container) == ["final/summary.csv", "notes.txt"]
    properties = container.get_blob_client("final/summary.csv").get_blob_properties()
    assert properties.content_settings.content_type == "text/csv"
    assert properties.content_settings.cache_control == "no-cache"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("exit_code", "uploaded"),
    [
        (0, ["completion/top.csv", "success/top.csv"]),
        (2, ["completion/top.csv", "failure/top.csv"]),
    ],
)
async def test_upload_conditions(node: Node, storage: Storage, exit_code: int, uploaded: list[str]) -> None:
    container = storage.container()
    url = storage.sas_url(container, "cw")
    spec = node.spec(
        MAKE_RESULTS,
        environment={"CODE": str(exit_code)},
        output_files=[
            output_file("out/top.csv", url, "tasksuccess", path="success/top.csv"),
            output_file("out/top.csv", url, "taskfailure", path="failure/top.csv"),
            output_file("out/top.csv", url, "taskcompletion", path="completion/top.csv"),
        ],
    )
    result = await run(spec)
    assert result.exit_code == exit_code
    assert storage.names(container) == uploaded


@pytest.mark.integration
async def test_timed_out_task_still_uploads_its_logs_on_failure(node: Node, storage: Storage) -> None:
    container = storage.container()
    url = storage.sas_url(container, "cw")
    spec = node.spec(
        "/bin/sh -c 'echo started; sleep 100'",
        max_wall_clock_seconds=0.3,
        output_files=[output_file("../stdout.txt", url, "taskfailure")],
    )
    result = await run(spec)
    assert result.timed_out
    assert result.failure_info is not None and result.failure_info["code"] == "TaskEnded"
    assert storage.read(container, "stdout.txt") == b"started\n"


@pytest.mark.integration
async def test_read_only_sas_is_a_file_upload_error_and_keeps_the_exit_code(
    node: Node, storage: Storage
) -> None:
    container = storage.container()
    read_only = storage.sas_url(container, "rl")
    spec = node.spec(MAKE_RESULTS, output_files=[output_file("../stdout.txt", read_only)])
    result = await run(spec)
    assert result.exit_code == 0
    assert result.result == "failure"
    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert result.failure_info["code"] == "FileUploadAccessDenied"
    assert "stdout.txt" in result.failure_info["message"]
    assert "sig=" not in str(result.failure_info)
    assert storage.names(container) == []
    assert "FileUploadAccessDenied" in (spec.task_dir / "fileuploaderr.txt").read_text()


@pytest.mark.integration
async def test_missing_container_is_reported(node: Node, storage: Storage) -> None:
    url = storage.sas_url(storage.service.get_container_client("runner-never-created"), "cw")
    spec = node.spec("true", output_files=[output_file("../stdout.txt", url)])
    result = await run(spec)
    assert result.failure_info is not None
    assert result.failure_info["code"] == "FileUploadContainerNotFound"


async def test_no_match_is_not_an_error(node: Node) -> None:
    spec = node.spec("true", output_files=[output_file("*.nothing", "http://127.0.0.1:9/c?sig=x")])
    result = await run(spec)
    assert result.exit_code == 0 and result.failure_info is None


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_pattern_wildcards(tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    _touch(wd, "a1.txt", "a2.txt", "b1.txt", "ab.txt", ".hidden.txt", "d/a3.txt", "d/e/a4.txt", "abc*")
    _touch(tmp_path, "stdout.txt", "stderr.txt")

    def names(pattern: str) -> list[str]:
        return [relative for _, relative in match_files(pattern, wd)]

    assert names("a?.txt") == ["a1.txt", "a2.txt", "ab.txt"]
    assert names("[ab]1.txt") == ["a1.txt", "b1.txt"]
    assert names("[!a]*.txt") == ["b1.txt"]
    assert names("*.txt") == ["a1.txt", "a2.txt", "ab.txt", "b1.txt"]  # no dotfiles
    assert names(".*.txt") == [".hidden.txt"]
    assert names("**/a*.txt") == ["a1.txt", "a2.txt", "ab.txt", "d/a3.txt", "d/e/a4.txt"]
    assert names("d/**") == ["a3.txt", "e/a4.txt"]
    assert names("../std*.txt") == ["stderr.txt", "stdout.txt"]
    assert names("abc[*]") == ["abc*"]
    assert names("d/e/a4.txt") == ["a4.txt"]
    assert names("missing.txt") == []
