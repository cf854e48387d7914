"""Application packages on a simulated node: extract a package zip into the node's package directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path


def _extract(zip_path: Path, dest_dir: Path) -> None:
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}-", dir=dest_dir.parent))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for member in archive.infolist():
                # ZipFile.extract drops ".." and absolute parts, so nothing lands outside staging.
                extracted = archive.extract(member, staging)
                mode = (member.external_attr >> 16) & 0o7777
                if mode and not member.is_dir() and stat.S_IFMT(member.external_attr >> 16) != stat.S_IFLNK:
                    os.chmod(extracted, mode)
        try:
            os.rename(staging, dest_dir)
        except OSError:
            if not dest_dir.is_dir():
                raise
            # Another attempt extracted the same package first; keep that copy.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


async def extract_package(zip_path: Path, dest_dir: Path) -> Path:
    """Extract ``zip_path`` into ``dest_dir`` (off the event loop), keeping Unix file modes.

    Extraction happens in a sibling staging directory renamed into place, so concurrent callers
    and readers never see a half-extracted package. An existing ``dest_dir`` is left as it is.
    """
    dest_dir = Path(dest_dir)
    if not dest_dir.is_dir():
        await asyncio.to_thread(_extract, Path(zip_path), dest_dir)
    return dest_dir
