"""Task and node files are streamed from disk: memory stays flat whatever their size; ranges are exact."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psutil
import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.emulator.conftest import sh, unique, wait_for_task

PATTERN = b"0123456789abcde\n"
SIZE = 256 * 1024 * 1024


def _expected(start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` (inclusive) of a file of repeated ``PATTERN``."""
    repeats = PATTERN * ((end - start) // len(PATTERN) + 2)
    offset = start % len(PATTERN)
    return repeats[offset : offset + end - start + 1]


class PeakMemory:
    """The largest RSS growth of this process (which serves the emulator) while in the block."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._sampler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._sampler.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def _drain(chunks: Iterator[bytes]) -> tuple[int, bytes, bytes]:
    """Read a download without keeping it: its size, first 32 and last 32 bytes."""
    size, head, tail = 0, b"", b""
    for chunk in chunks:
        if len(head) < 32:
            head = (head + chunk)[:32]
        tail = (tail + chunk)[-32:]
        size += len(chunk)
    return size, head, tail


def test_a_large_stdout_downloads_with_flat_memory_and_exact_ranges(
    client: BatchClient, job_on_shared_pool: str
) -> None:
    job_id = job_on_shared_pool
    task_id = unique("big")
    command = f"yes 0123456789abcde | head -c {SIZE}"
    client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=sh(command)))
    task = wait_for_task(client, job_id, task_id, timeout=60)
    assert task.execution_info.result == "success"

    with PeakMemory() as memory:
        size, head, tail = _drain(client.download_task_file(job_id, task_id, "stdout.txt"))
    assert (size, head, tail) == (SIZE, _expected(0, 31), _expected(SIZE - 32, SIZE - 1))
    assert memory.growth < SIZE // 4, f"serving {SIZE >> 20} MiB grew memory by {memory.growth >> 20} MiB"

    ranges = {"bytes=0-0": (0, 0), "bytes=17-4112": (17, 4112), f"bytes={SIZE - 5}-": (SIZE - 5, SIZE - 1)}
    ranges["bytes=-7"] = (SIZE - 7, SIZE - 1)
    for header, (start, end) in ranges.items():
        body = b"".join(client.download_task_file(job_id, task_id, "stdout.txt", ocp_range=header))
        assert body == _expected(start, end), header

    node_id = task.node_info.node_id
    pool_id = task.node_info.pool_id
    node_path = f"{task.node_info.task_root_directory}/stdout.txt"
    with PeakMemory() as memory:
        size, _, tail = _drain(client.download_node_file(pool_id, node_id, node_path))
    assert (size, tail) == (SIZE, _expected(SIZE - 32, SIZE - 1))
    assert memory.growth < SIZE // 4
    properties = client.get_node_file_properties(pool_id, node_id, node_path)
    assert properties.content_length == SIZE


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=" + "9" * 5000 + "-", 400),
        ("bytes=-" + "9" * 5000, 400),
        ("bytes=100-200", 416),
        ("bytes=3-1", 416),
    ],
    ids=["5000-digit-start", "5000-digit-suffix", "past-the-end", "end-before-start"],
)
def test_a_range_that_cannot_be_served_is_refused(
    client: BatchClient, job_on_shared_pool: str, header: str, status: int
) -> None:
    task_id = unique("small")
    client.create_task(job_on_shared_pool, m.BatchTaskCreateOptions(id=task_id, command_line="echo hello"))
    wait_for_task(client, job_on_shared_pool, task_id)
    with pytest.raises(HttpResponseError) as excinfo:
        b"".join(client.download_task_file(job_on_shared_pool, task_id, "stdout.txt", ocp_range=header))
    assert excinfo.value.status_code == status
