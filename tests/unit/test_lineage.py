"""OpenLineage naming of the provider's datasets: prefixes of resource files, spec namespaces, no SAS."""

from __future__ import annotations

from airflow_batch_provider.lineage import dataset_naming, local_directory_uri, resource_file_prefixes


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
