"""Generated input files and Blob helpers for the upload benchmarks."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
_BLOCK = 16 * MIB


def make_small_files(directory: Path, count: int, size: int) -> list[Path]:
    """``count`` files of ``size`` random bytes each, ``file-00000.bin``..., in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"file-{index:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def wait_until_settled(paths: list[Path]) -> None:
    """Wait until the newest of ``paths`` changed longer ago than the digest cache requires.

    Files an upload finds are usually older than the run; a digest cache does not trust a file that
    changed in the last moments (see :mod:`airflow_batch_provider.storage.digest_cache`).
    """
    from airflow_batch_provider.storage.digest_cache import SETTLE_NS

    newest = max(max(stat.st_mtime_ns, stat.st_ctime_ns) for stat in map(os.stat, paths))
    remaining = (newest + SETTLE_NS - time.time_ns()) / 1e9
    if remaining > 0:
        time.sleep(remaining + 0.05)


def make_large_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes made of a random block repeated (cheap to write, same cost to send)."""
    block = os.urandom(min(size, _BLOCK))
    with open(path, "wb") as handle:
        remaining = size
        while remaining > 0:
            piece = block[: min(remaining, len(block))]
            handle.write(piece)
            remaining -= len(piece)
    return path


def ensure_container(service: Any, name: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        service.create_container(name)
