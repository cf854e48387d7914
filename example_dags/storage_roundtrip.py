"""Storage round trip: generate files, upload them to Blob Storage, download them back, compare.

Uses the ``azblob_default`` connection. Working directory, container and prefix come from Params,
whose defaults read these environment variables:

* ``STORAGE_ROUNDTRIP_DIR``: local working directory (default: ``storage_roundtrip`` in the system
  temporary directory); ``input/`` and ``output/`` are created below it.
* ``STORAGE_ROUNDTRIP_CONTAINER``: container name (default ``storage-roundtrip``).
* ``STORAGE_ROUNDTRIP_FILES``: how many small files to generate (default 12), plus one 6 MiB file that
  goes through the parallel block upload.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_provider.operators.storage import BlobDownloadFilesOperator, BlobUploadFilesOperator

WORK_DIR = os.environ.get("STORAGE_ROUNDTRIP_DIR") or os.path.join(tempfile.gettempdir(), "storage_roundtrip")
CONTAINER = os.environ.get("STORAGE_ROUNDTRIP_CONTAINER", "storage-roundtrip")
FILE_COUNT = int(os.environ.get("STORAGE_ROUNDTRIP_FILES", "12"))
BIG_FILE_SIZE = 6 * 1024 * 1024


def _payload(seed: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes, so a re-run produces the same files (and uploads nothing)."""
    blocks = []
    counter = 0
    while sum(len(block) for block in blocks) < size:
        blocks.append(hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64)
        counter += 1
    return b"".join(blocks)[:size]


with DAG(
    dag_id="storage_roundtrip",
    description="Upload generated files to Blob Storage and download them back, byte for byte.",
    schedule=None,
    catchup=False,
    tags=["example", "azure-batch-provider", "storage"],
    params={
        "work_dir": Param(WORK_DIR, type="string", description="Local working directory."),
        "container": Param(CONTAINER, type="string", description="Blob container to use."),
        "prefix": Param("roundtrip/", type="string", description="Blob prefix for the files."),
        "file_count": Param(FILE_COUNT, type="integer", minimum=1, description="Small files to generate."),
    },
) as dag:

    @task
    def generate_files(params: dict[str, Any] | None = None) -> int:
        """Write nested input files under ``<work_dir>/input`` and clear ``<work_dir>/output``."""
        assert params is not None
        work = Path(params["work_dir"])
        source, target = work / "input", work / "output"
        shutil.rmtree(target, ignore_errors=True)
        source.mkdir(parents=True, exist_ok=True)
        count = int(params["file_count"])
        for index in range(count):
            path = source / f"group-{index % 3}" / f"sample-{index:04d}.dat"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_payload(f"sample-{index}", 1024 + 97 * index))
        (source / "big.bin").write_bytes(_payload("big", BIG_FILE_SIZE))
        return count + 1

    upload = BlobUploadFilesOperator(
        task_id="upload_inputs",
        source="{{ params.work_dir }}/input",
        container="{{ params.container }}",
        prefix="{{ params.prefix }}",
    )

    download = BlobDownloadFilesOperator(
        task_id="download_back",
        container="{{ params.container }}",
        prefix="{{ params.prefix }}",
        local_dir="{{ params.work_dir }}/output",
    )

    @task
    def compare(
        uploaded: dict[str, Any], downloaded: dict[str, Any], params: dict[str, Any] | None = None
    ) -> int:
        """Fail unless every input file came back identical."""
        assert params is not None
        work = Path(params["work_dir"])

        def tree(root: Path) -> dict[str, bytes]:
            return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

        source, target = tree(work / "input"), tree(work / "output")
        if source != target:
            differ = sorted(
                set(source) ^ set(target)
                | {k for k in source.keys() & target.keys() if source[k] != target[k]}
            )
            raise ValueError(f"The round trip changed {len(differ)} file(s), for example {differ[:3]}.")
        if uploaded["count"] != len(source) or downloaded["count"] != len(source):
            raise ValueError(
                f"Counts differ: {len(source)} local, {uploaded['count']} up, {downloaded['count']} down."
            )
        return len(source)

    generated = generate_files()
    generated >> upload
    upload >> download
    compare(upload.output, download.output)
