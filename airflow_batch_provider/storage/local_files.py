"""Local files to upload: single files, directories and globs with their relative names, and their MD5."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Generic, TypeVar

from airflow_batch_provider.exceptions import BatchProviderError, InvalidInputError
from airflow_batch_provider.storage.digest_cache import FileStamp

_GLOB_CHARS = frozenset("*?[")
_HASH_CHUNK = 8 * 1024 * 1024

K = TypeVar("K")


@dataclass(frozen=True)
class LocalFile:
    """A local file to upload and its path relative to what was given (POSIX separators).

    ``stamp`` is what the file system said of the file when it was found (see :class:`FileStamp`).
    """

    path: Path
    relative: str
    stamp: FileStamp

    @classmethod
    def at(cls, path: Path, relative: str) -> LocalFile:
        """The file at ``path`` as it is now (its target, for a symbolic link)."""
        return cls(path, relative, FileStamp.of(os.stat(path)))

    @property
    def size(self) -> int:
        return self.stamp.size


def has_glob(value: str) -> bool:
    """Whether a path or pattern has glob wildcards (``*``, ``?``, ``[``)."""
    return any(char in _GLOB_CHARS for char in value)


def _split_glob(pattern: str) -> tuple[Path, str]:
    """Split ``data/**/*.csv`` into the directory before the first wildcard and the rest."""
    parts = Path(pattern).parts
    for index, part in enumerate(parts):
        if has_glob(part):
            base = Path(*parts[:index]) if index else Path(".")
            return base, str(PurePosixPath(*parts[index:]))
    return Path(pattern).parent, Path(pattern).name


def _walk(directory: Path) -> Iterator[LocalFile]:
    """Every file below ``directory`` (symlinked directories are not entered), by relative name."""
    base = os.fspath(directory)
    for root, dirnames, filenames in os.walk(base):
        dirnames.sort()
        below = os.path.relpath(root, base)
        start = "" if below == os.curdir else below.replace(os.sep, "/") + "/"
        root_path = Path(root)
        for name in sorted(filenames):
            yield LocalFile.at(root_path / name, start + name)


def source_paths(sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The sources as path strings with ``~`` expanded; an empty one raises :class:`InvalidInputError`."""
    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    texts = []
    for item in items:
        text = os.fspath(item)
        if not text:
            raise InvalidInputError(
                "An empty string was given as a local path; pass a file, directory or glob."
            )
        texts.append(os.path.expanduser(text))
    return texts


def _is_pattern(text: str) -> bool:
    """Whether a source is taken as a glob: it has wildcards and is not itself an existing path."""
    return has_glob(text) and not os.path.exists(text)


def _missing(text: str) -> InvalidInputError:
    return InvalidInputError(
        f"Local path {text!r} does not exist (resolved to {str(Path(text).absolute())!r}). "
        "Check the path, or the working directory the task runs in."
    )


def check_sources(sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> None:
    """Raise :class:`InvalidInputError`, as :func:`collect_local_files` would, without walking anything."""
    for text in source_paths(sources):
        if not _is_pattern(text) and not (os.path.isdir(text) or os.path.isfile(text)):
            raise _missing(text)


def common_name_start(sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> str | None:
    """A string every relative name :func:`collect_local_files` gives for ``sources`` starts with.

    Found without walking directories, so that a listing of the blobs these files may already be can
    start meanwhile: a file gives its name, a directory the start its top-level entries share (a
    subdirectory counting as ``name/``). ``None`` when only the walk can tell: for a glob, or when no
    source has any entry (there is nothing to upload). A file that appears in between may not start
    with it; it is then simply not found among the blobs, and uploaded.
    """
    starts: list[str] = []
    for text in source_paths(sources):
        if _is_pattern(text):
            return None
        if os.path.isdir(text):
            try:
                with os.scandir(text) as entries:
                    names = [entry.name + "/" if entry.is_dir() else entry.name for entry in entries]
            except OSError:
                return None
            if names:
                starts.append(common_start(names))
        elif os.path.isfile(text):
            starts.append(Path(text).name)
    return common_start(starts) if starts else None


def common_start(texts: Sequence[str]) -> str:
    """The longest string all ``texts`` start with (character by character, as blob names compare)."""
    return os.path.commonprefix(texts)  # noqa: RUF071 - a string prefix is meant, not a path


def collect_local_files(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[LocalFile]:
    """Resolve files, directories and globs (``**`` included) to files with their relative names.

    A file keeps its own name, a directory's files keep their path below it, and a glob's matches keep
    their path below the part of the pattern before the first wildcard. A path that does not exist
    raises :class:`InvalidInputError`; a glob that matches nothing gives an empty list.
    """
    found: dict[str, LocalFile] = {}
    for text in source_paths(sources):
        if _is_pattern(text):
            base, pattern = _split_glob(text)
            matches = sorted(path for path in base.glob(pattern) if path.is_file())
            candidates = [LocalFile.at(path, path.relative_to(base).as_posix()) for path in matches]
        else:
            path = Path(text)
            if path.is_dir():
                candidates = list(_walk(path))
            elif path.is_file():
                candidates = [LocalFile.at(path, path.name)]
            else:
                raise _missing(text)
        for candidate in candidates:
            previous = found.get(candidate.relative)
            if previous is not None and previous.path.resolve() != candidate.path.resolve():
                raise InvalidInputError(
                    f"Two local files would upload to the same blob {candidate.relative!r}: "
                    f"{str(previous.path)!r} and {str(candidate.path)!r}. "
                    "Upload them under different prefixes."
                )
            found[candidate.relative] = candidate
    return [found[name] for name in sorted(found)]


def file_md5(path: str | os.PathLike[str]) -> bytes:
    """The MD5 digest of a file, as Blob Storage stores it in ``Content-MD5``."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.digest()


class BackgroundHasher(Generic[K]):
    """MD5 digests of local files, computed in a worker thread while the caller waits for something else.

    :meth:`start` hashes the files in order, all of them, for as long as the caller does not know yet
    which it needs (an upload waiting for the blob listing, say). :meth:`finish` names the needed ones:
    the worker skips the others from then on, hashes the needed ones it has not reached, and the
    digests of those are returned. hashlib and file reads release the GIL, so the event loop runs on.
    A file that cannot be read gets no digest; reading it again later raises the real error.

    :param paths: The files to hash, by a key of the caller's choosing.
    """

    def __init__(self, paths: Mapping[K, str | os.PathLike[str]]) -> None:
        self._paths = dict(paths)
        self._digests: dict[K, bytes] = {}
        #: Keys still wanted; ``None`` while every file is. Replaced, never mutated, so the worker
        #: thread always reads a consistent value.
        self._wanted: frozenset[K] | None = None
        self._worker: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Start hashing in a thread of the running loop's default executor."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().run_in_executor(None, self._hash_files)

    def _hash_files(self) -> None:
        for key, path in self._paths.items():
            wanted = self._wanted
            if wanted is not None and key not in wanted:
                continue
            try:
                self._digests[key] = file_md5(path)
            except OSError:
                continue

    async def finish(self, wanted: Collection[K]) -> dict[K, bytes]:
        """The digests of the ``wanted`` files that could be read, once all of them are computed."""
        self._wanted = frozenset(wanted)
        self.start()
        assert self._worker is not None
        await self._worker
        return {key: self._digests[key] for key in self._wanted if key in self._digests}

    async def cancel(self) -> None:
        """Stop hashing, and wait for the file in progress (the caller is giving up)."""
        self._wanted = frozenset()
        if self._worker is not None:
            await asyncio.shield(self._worker)


def safe_local_path(local_dir: Path, relative: str) -> Path:
    """``local_dir / relative``, refusing names that are absolute or climb out of ``local_dir``."""
    parts = relative.replace("\\", "/").split("/")
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or any(part in {"", ".", ".."} for part in parts)
        or (len(parts[0]) >= 2 and parts[0][1] == ":")
    ):
        raise BatchProviderError(
            f"Blob name part {relative!r} cannot be downloaded safely: it is empty, absolute or contains "
            "'.', '..' or empty segments, so it could escape the target directory. Rename the blob."
        )
    target = (local_dir / Path(*parts)).resolve()
    root = local_dir.resolve()
    if target != root and root not in target.parents:
        raise BatchProviderError(f"Blob name part {relative!r} resolves outside {str(root)!r}; refusing it.")
    return target
