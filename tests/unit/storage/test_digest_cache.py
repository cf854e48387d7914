"""The digest cache: a file's MD5 is reused only while the file is as it was; the cache never breaks a run."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import pytest

from airflow_batch_provider.storage import digest_cache
from airflow_batch_provider.storage.digest_cache import SETTLE_NS, DigestCache, FileStamp, default_cache_dir

LATER = 3 * SETTLE_NS  # a run that starts long enough after the files were written


def stamp_of(path: Path) -> FileStamp:
    return FileStamp.of(os.stat(path))


def later_run(directory: Path, sources: list[str]) -> DigestCache:
    """A cache opened as by a run that begins when every file written so far has settled."""
    cache = DigestCache.for_sources(sources, directory)
    cache.run_started_ns += LATER
    return cache


def test_a_digest_comes_back_in_the_next_run_while_the_file_is_unchanged(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"payload")
    digest = hashlib.md5(b"payload").digest()
    first = later_run(tmp_path / "cache", [str(tmp_path)])
    first.put(data, stamp_of(data), digest)
    first.save([data])

    second = DigestCache.for_sources([str(tmp_path)], tmp_path / "cache")
    assert second.get(data, stamp_of(data)) == digest
    # Another set of sources has a cache of its own.
    assert DigestCache.for_sources([str(data)], tmp_path / "cache").get(data, stamp_of(data)) is None


def test_a_rewritten_file_is_not_trusted_even_with_its_old_size_and_modification_time(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"version-1")
    before = os.stat(data)
    cache = later_run(tmp_path / "cache", [str(tmp_path)])
    cache.put(data, stamp_of(data), hashlib.md5(b"version-1").digest())
    cache.save([data])
    assert DigestCache.for_sources([str(tmp_path)], tmp_path / "cache").get(data, stamp_of(data))

    time.sleep(0.05)  # past the file system clock's tick
    data.write_bytes(b"version-2")
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(data).st_size, os.stat(data).st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    reopened = DigestCache.for_sources([str(tmp_path)], tmp_path / "cache")
    assert reopened.get(data, stamp_of(data)) is None


def test_a_file_changed_shortly_before_the_run_is_not_remembered(tmp_path: Path) -> None:
    data = tmp_path / "fresh.bin"
    data.write_bytes(b"just written")
    cache = DigestCache.for_sources([str(tmp_path)], tmp_path / "cache")  # the run starts now
    cache.put(data, stamp_of(data), hashlib.md5(b"just written").digest())
    cache.save([data])
    assert DigestCache.for_sources([str(tmp_path)], tmp_path / "cache").get(data, stamp_of(data)) is None


def test_only_the_files_of_the_last_upload_are_kept(tmp_path: Path) -> None:
    kept, dropped = tmp_path / "kept.bin", tmp_path / "dropped.bin"
    for path in (kept, dropped):
        path.write_bytes(path.name.encode())
    cache = later_run(tmp_path / "cache", [str(tmp_path)])
    for path in (kept, dropped):
        cache.put(path, stamp_of(path), hashlib.md5(path.name.encode()).digest())
    cache.save([kept])

    reopened = DigestCache.for_sources([str(tmp_path)], tmp_path / "cache")
    assert reopened.get(kept, stamp_of(kept)) is not None
    assert reopened.get(dropped, stamp_of(dropped)) is None


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b'{"format": 99, "files": {}}',
        b'{"format": 1, "files": {"x": [1, 2, 3]}}',
        b'{"format": 1, "files": {"x": [1, 2, 3, 4, 5, "not base64!"]}}',
    ],
)
def test_an_unreadable_cache_is_ignored_and_replaced(tmp_path: Path, content: bytes) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"payload")
    cache = later_run(tmp_path / "cache", [str(tmp_path)])
    assert cache.path is not None
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(content)

    reopened = later_run(tmp_path / "cache", [str(tmp_path)])
    assert reopened.get(data, stamp_of(data)) is None
    reopened.put(data, stamp_of(data), hashlib.md5(b"payload").digest())
    reopened.save([data])
    assert DigestCache.for_sources([str(tmp_path)], tmp_path / "cache").get(data, stamp_of(data)) is not None


def test_a_cache_that_cannot_be_written_only_logs_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"payload")
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    cache = later_run(blocker / "cache", [str(tmp_path)])
    cache.put(data, stamp_of(data), hashlib.md5(b"payload").digest())
    with caplog.at_level(logging.WARNING, logger=digest_cache.__name__):
        cache.save([data])
    assert "Could not write the digest cache" in caplog.text
    assert "digest_cache_dir" in caplog.text


def test_the_configuration_chooses_the_directory_or_turns_the_cache_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    variable = "AIRFLOW__AZURE_BATCH_PROVIDER__DIGEST_CACHE_DIR"
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "cache" / "airflow-batch-provider" / "digests"
    monkeypatch.setenv(variable, str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv(variable, "")
    assert default_cache_dir() is None
    off = DigestCache.for_sources([str(tmp_path)], None)
    assert not off.enabled
    data = tmp_path / "x"
    data.write_bytes(b"x")
    off.put(data, stamp_of(data), hashlib.md5(b"x").digest())
    assert off.get(data, stamp_of(data)) is None
