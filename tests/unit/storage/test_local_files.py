"""Local files to upload: walking, the names' common start known before walking, and hashing."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from airflow_batch_provider.exceptions import InvalidInputError
from airflow_batch_provider.storage.local_files import (
    BackgroundHasher,
    check_sources,
    collect_local_files,
    common_name_start,
)


def write(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


TREE = {
    "run-a.csv": b"1",
    "run-b.csv": b"22",
    "run-sub/deep/c.csv": b"333",
    "run-sub/d e+f.txt": b"4444",
}


def test_a_directory_walk_gives_posix_names_and_sizes_in_order(tmp_path: Path) -> None:
    write(tmp_path / "src", TREE)
    (tmp_path / "src" / "linked").symlink_to(tmp_path / "src" / "run-sub", target_is_directory=True)
    files = collect_local_files(tmp_path / "src")
    assert [(item.relative, item.size) for item in files] == [
        ("run-a.csv", 1),
        ("run-b.csv", 2),
        ("run-sub/d e+f.txt", 4),
        ("run-sub/deep/c.csv", 3),
    ]
    assert files[3].path == tmp_path / "src" / "run-sub" / "deep" / "c.csv"


@pytest.mark.parametrize(
    ("sources", "start"),
    [
        (["src"], "run-"),
        (["src/run-sub"], "d"),  # "d e+f.txt" and "deep/"
        (["src/run-sub/deep"], "c.csv"),
        (["src/run-a.csv"], "run-a.csv"),
        (["src/run-a.csv", "src/run-b.csv"], "run-"),
        (["src/run-a.csv", "src/run-sub/deep"], ""),
        (["src", "empty"], "run-"),
        (["src/*.csv"], None),  # only the walk knows a glob's matches
        (["src", "src/*.csv"], None),
        (["empty"], None),  # maybe nothing to upload: the walk tells first
    ],
)
def test_common_name_start_is_a_start_of_every_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: list[str], start: str | None
) -> None:
    write(tmp_path / "src", TREE)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    assert common_name_start(sources) == start
    assert all(item.relative.startswith(start or "") for item in collect_local_files(sources))


def test_check_sources_fails_like_the_walk_without_walking(tmp_path: Path) -> None:
    write(tmp_path, {"a.txt": b"a"})
    check_sources([tmp_path / "a.txt", tmp_path, f"{tmp_path}/*.nothing"])
    for bad in ([tmp_path / "missing"], [""]):
        with pytest.raises(InvalidInputError):
            check_sources(bad)
        with pytest.raises(InvalidInputError):
            collect_local_files(bad)


async def test_hasher_returns_the_wanted_digests(tmp_path: Path) -> None:
    write(tmp_path, {f"f{i}": os.urandom(100 + i) for i in range(20)})
    paths = {i: tmp_path / f"f{i}" for i in range(20)}
    paths[20] = tmp_path / "missing"
    hasher = BackgroundHasher(paths)
    hasher.start()
    await asyncio.sleep(0)
    digests = await hasher.finish([3, 7, 19, 20])
    assert digests == {i: hashlib.md5(paths[i].read_bytes()).digest() for i in (3, 7, 19)}


async def test_hasher_finish_without_start_and_cancel(tmp_path: Path) -> None:
    write(tmp_path, {"a": b"a", "b": b"b"})
    hasher = BackgroundHasher({"a": tmp_path / "a", "b": tmp_path / "b"})
    assert await hasher.finish(["b"]) == {"b": hashlib.md5(b"b").digest()}

    cancelled = BackgroundHasher({"a": tmp_path / "a"})
    await cancelled.cancel()  # never started: nothing to wait for
    cancelled.start()
    await cancelled.cancel()
    assert await cancelled.finish([]) == {}
