"""OpenLineage naming of the provider's datasets: prefixes of resource files, spec namespaces, no SAS."""

from __future__ import annotations

from typing import Any

from airflow_batch_provider.lineage import (
    dataset_naming,
    local_directory_uri,
    output_file_prefixes,
    resource_file_prefixes,
)


def test_resource_files_make_one_dataset_per_prefix_with_a_file_count() -> None:
    sas = "?sv=2024&sp=r&sig=SECRET"
    azure = "https://acct.blob.core.windows.net"
    tasks = [
        {
            "resourceFiles": [
                {
                    "httpUrl": f"{azure}/inputs/run%201/a.csv{sas}",
                    "filePath": "a.csv",
                },
                {
                    "storageContainerUrl": f"{azure}/apps{sas}",
                    "blobPrefix": "tool/",
                },
            ]
        },
        {
            "resourceFiles": [
                {"httpUrl": f"http://127.0.0.1:10000/devstoreaccount1/inputs/run%201/b.csv{sas}"},
                {"httpUrl": f"{azure}/inputs/run%201/b.csv{sas}"},
            ]
        },
    ]
    assert resource_file_prefixes(tasks) == {
        "azblob://acct/inputs/run 1": 2,
        "azblob://acct/apps/tool": 1,
        "azblob://devstoreaccount1/inputs/run 1": 1,
    }


def test_datasets_follow_the_openlineage_naming_spec(tmp_path) -> None:
    assert dataset_naming("azblob://acct/outputs/job-1/part") == (
        "wasbs://outputs@acct.dfs.core.windows.net",
        "job-1/part",
    )
    assert dataset_naming("azblob://acct/outputs") == ("wasbs://outputs@acct.dfs.core.windows.net", "/")
    assert dataset_naming(local_directory_uri(str(tmp_path / "data" / "*.csv"))) == (
        "file",
        str((tmp_path / "data").resolve()),
    )


def _output(pattern: str, container_url: str, path: str) -> dict[str, Any]:
    return {
        "filePattern": pattern,
        "destination": {"container": {"containerUrl": container_url, "path": path}},
    }


def test_output_files_make_one_prefix_per_container_without_sas() -> None:
    results = "https://acct.blob.core.windows.net/results?sv=2024&sig=SECRET"
    logs = "http://127.0.0.1:10000/devstoreaccount1/logs?sig=OTHER"
    tasks = [
        {
            "outputFiles": [
                _output("out/*", results, "run-1/results/task-1"),
                _output("stdout.txt", results, "run-1/results/task-1/stdout.txt"),
                _output("../std*.txt", logs, "run-1/task-1"),
            ]
        },
        {
            "outputFiles": [
                _output("out/*", results, "run-1/results/task-2"),
                _output("stdout.txt", results, "run-1/results/task-2/stdout.txt"),
            ]
        },
        {"outputFiles": [{"filePattern": "x", "destination": {}}]},
        {"id": "no outputs"},
    ]
    assert output_file_prefixes(tasks) == {
        "https://acct.blob.core.windows.net/results": "run-1/results",
        "http://127.0.0.1:10000/devstoreaccount1/logs": "run-1/task-1",
    }


def test_a_single_file_output_is_named_by_its_folder() -> None:
    url = "https://acct.blob.core.windows.net/results"
    tasks = [{"outputFiles": [_output("result.json", url, "run-1/task-1/result.json")]}]
    assert output_file_prefixes(tasks) == {url: "run-1/task-1"}
