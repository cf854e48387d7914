"""Finding local files to upload: single files, directories and globs, with their relative names."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from airflow_batch_provider.exceptions import BatchProviderError, InvalidInputError

_GLOB_CHARS = frozenset("*?[")
_HASH_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class LocalFile:
    """A local file to upload and its path relative to what was given (POSIX separators)."""

    path: Path
    relative: str
    size: int


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
    for root, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(root, name)
            stat = path.stat()
            yield LocalFile(path, path.relative_to(directory).as_posix(), stat.st_size)


def collect_local_files(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[LocalFile]:
    """Resolve files, directories and globs (``**`` included) to files with their relative names.

    A file keeps its own name, a directory's files keep their path below it, and a glob's matches keep
    their path below the part of the pattern before the first wildcard. A path that does not exist
    raises :class:`InvalidInputError`; a glob that matches nothing gives an empty list.
    """
    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    found: dict[str, LocalFile] = {}
    for item in items:
        text = os.fspath(item)
        if not text:
            raise InvalidInputError(
                "An empty string was given as a local path; pass a file, directory or glob."
            )
        text = os.path.expanduser(text)
        if has_glob(text) and not os.path.exists(text):
            base, pattern = _split_glob(text)
            matches = sorted(path for path in base.glob(pattern) if path.is_file())
            candidates = [
                LocalFile(path, path.relative_to(base).as_posix(), path.stat().st_size) for path in matches
            ]
        else:
            path = Path(text)
            if path.is_dir():
                candidates = list(_walk(path))
            elif path.is_file():
                candidates = [LocalFile(path, path.name, path.stat().st_size)]
            else:
                raise InvalidInputError(
                    f"Local path {text!r} does not exist (resolved to {str(path.absolute())!r}). "
                    "Check the path, or the working directory the task runs in."
                )
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
