"""MD5 digests of local files, kept between runs, so that a rerun need not read unchanged files again.

Skip-unchanged compares the MD5 of each local file with the ``Content-MD5`` of its blob. Computing it
means reading every file on every run: a second or more per GiB. Like git's index, the cache keeps
each file's digest together with the file's stamp, what the file system says about its version:
size, modification and change times (in nanoseconds), inode and device. While the stamp is the same,
the digest is taken from the cache instead of the file; the comparison with the blob is unchanged.

Any write to a file moves its change time, which tools cannot set back (short of changing the
system clock), so a changed file does not match its old stamp. File system clocks tick coarsely,
though (a few milliseconds), and a file written twice within one tick could keep its stamp; so a
digest is only kept for a file whose times were already :data:`SETTLE_NS` old when the run began,
and a file changed just before a run is read again on the next one.

The cache lives in one small JSON file per set of upload sources, in the directory
``[azure_batch_provider] digest_cache_dir``. Unset, that is
``$AIRFLOW_HOME/cache/airflow-batch-provider/digests``; an empty value turns the cache off. A cache
file holds the files of the last upload of its sources only. It is written atomically, and a cache
that cannot be read or written is ignored: the files are then simply hashed, as without it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from airflow_batch_provider.config import CONF_SECTION

log = logging.getLogger(__name__)

CONF_KEY = "digest_cache_dir"
#: How old a file's times must be, at the start of a run, for its digest to be kept.
SETTLE_NS = 2_000_000_000
_FORMAT = 1


class FileStamp(NamedTuple):
    """A file's version as the file system tells it: size, times in nanoseconds, inode and device."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileStamp:
        return cls(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)

    def settled_before(self, moment_ns: int) -> bool:
        """Whether the file last changed at least :data:`SETTLE_NS` before ``moment_ns``."""
        return max(self.mtime_ns, self.ctime_ns) <= moment_ns - SETTLE_NS


def default_cache_dir() -> Path | None:
    """The configured cache directory, ``None`` when the configuration turns the cache off."""
    from airflow.sdk import conf

    configured = conf.get(CONF_SECTION, CONF_KEY, fallback=None)
    if configured is None:
        airflow_home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
        return Path(os.path.expanduser(airflow_home)) / "cache" / "airflow-batch-provider" / "digests"
    configured = configured.strip()
    return Path(os.path.expanduser(configured)) if configured else None


class DigestCache:
    """The digests of one set of upload sources, by absolute path, valid while the file's stamp is.

    :meth:`get` gives a digest for a file whose stamp matches, :meth:`put` records one read in this
    run, and :meth:`save` writes the digests of the files given to it (the files of this upload).
    """

    def __init__(self, path: Path | None, run_started_ns: int) -> None:
        self.path = path
        self.run_started_ns = run_started_ns
        self._known: dict[str, tuple[FileStamp, bytes]] = {}
        self._changed = False
        self._lock = threading.Lock()  # big files are hashed in worker threads

    @classmethod
    def for_sources(cls, sources: Sequence[str], directory: Path | None) -> DigestCache:
        """The cache of an upload of ``sources`` (paths or globs), loaded from ``directory``.

        ``directory=None`` gives a cache that remembers nothing.
        """
        started = time.time_ns()
        if directory is None:
            return cls(None, started)
        key = "\n".join(sorted(os.path.abspath(source) for source in sources))
        name = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32] + ".json"
        cache = cls(directory / name, started)
        cache._load()
        return cache

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def get(self, path: str | os.PathLike[str], stamp: FileStamp) -> bytes | None:
        """The digest of the file at ``path`` if it was recorded for exactly this ``stamp``."""
        entry = self._known.get(os.fspath(path))
        return entry[1] if entry is not None and entry[0] == stamp else None

    def put(self, path: str | os.PathLike[str], stamp: FileStamp, digest: bytes) -> None:
        """Remember ``digest`` as the content of ``path`` at ``stamp`` (read during this run).

        Nothing is kept for a file that changed too shortly before the run began to trust its stamp.
        """
        if self.path is None or not stamp.settled_before(self.run_started_ns):
            return
        key = os.fspath(path)
        with self._lock:
            if self._known.get(key) != (stamp, digest):
                self._known[key] = (stamp, digest)
                self._changed = True

    def save(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Write the digests of ``paths`` (those known), dropping every other file's."""
        if self.path is None:
            return
        keep = {os.fspath(path) for path in paths}
        if not self._changed and keep == set(self._known):
            return
        files = {
            key: [*stamp, base64.b64encode(digest).decode("ascii")]
            for key, (stamp, digest) in self._known.items()
            if key in keep
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".digests-", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump({"format": _FORMAT, "files": files}, out, separators=(",", ":"))
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as err:
            log.warning(
                "Could not write the digest cache %s (%s); the next upload of these files reads them "
                "again to compare them. Set [%s] %s to a writable directory, or to an empty value to "
                "turn the cache off.",
                self.path,
                err,
                CONF_SECTION,
                CONF_KEY,
            )
            return
        self._changed = False

    def _load(self) -> None:
        assert self.path is not None
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            log.debug("Ignoring the unreadable digest cache %s: %s", self.path, err)
            return
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            return
        files = document.get("files")
        if not isinstance(files, dict):
            return
        for key, fields in files.items():
            entry = _entry(fields)
            if entry is not None:
                self._known[key] = entry


def _entry(fields: Any) -> tuple[FileStamp, bytes] | None:
    """A stored ``[size, mtime_ns, ctime_ns, inode, device, md5 base64]``, or ``None`` if malformed."""
    if not isinstance(fields, list) or len(fields) != 6:
        return None
    *numbers, encoded = fields
    if not all(isinstance(number, int) and not isinstance(number, bool) for number in numbers):
        return None
    if not isinstance(encoded, str):
        return None
    try:
        digest = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) != hashlib.md5(usedforsecurity=False).digest_size:
        return None
    return FileStamp(*numbers), digest
