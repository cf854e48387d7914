"""The container image the container tests run, made offline from Debian packages and cached.

No container registry is reachable from the machines the tests run on, so the image is a minimal
Debian root filesystem with Python, made with ``mmdebstrap`` from the Debian mirror apt already uses,
imported into the engine (``podman import`` / ``docker import``). The root filesystem is cached in
``.cache/container-images/`` (git-ignored) and the image in the engine's store, so only the first run
pays for the build (about two minutes).

With Docker Desktop, or any machine that reaches a registry, set ``BATCH_TEST_IMAGE`` to a public
image with ``/bin/sh`` and ``python3`` (``python:3.12-slim``) to run the same tests against it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from airflow_batch_provider.emulator.compute.runner.containers import find_engine

#: The locally built image (a name no registry serves: it is never pulled).
LOCAL_IMAGE = "localhost/airflow-batch-provider-test:bookworm"
SUITE = "bookworm"
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "container-images"


class ImageUnavailable(RuntimeError):
    """The test image can be neither found nor built here; says what is missing."""


def engine() -> str | None:
    """The engine the container tests use (``BATCH_TEST_CONTAINER_ENGINE``, else podman, else docker)."""
    return find_engine(os.environ.get("BATCH_TEST_CONTAINER_ENGINE"))


def _apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 ``URIs:`` or one-line ``deb`` entries)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if not source.is_file():
            continue
        for line in source.read_text(errors="replace").splitlines():
            match = re.match(r"\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    raise ImageUnavailable("no Debian mirror in apt's sources: set BATCH_TEST_IMAGE to an image to use")


def _root_filesystem() -> Path:
    tarball = CACHE_DIR / f"debian-{SUITE}-python3.tar"
    if tarball.exists():
        return tarball
    if shutil.which("mmdebstrap") is None:
        raise ImageUnavailable(
            "mmdebstrap is not installed (apt-get install mmdebstrap), so the test image cannot be built; "
            "or set BATCH_TEST_IMAGE to an image to use"
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=essential",
            "--include=python3-minimal",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--format=tar",
            SUITE,
            str(partial),
            _apt_mirror(),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    partial.rename(tarball)
    return tarball


def image_for_tests(engine_path: str) -> str:
    """The image for container tests, built and imported on first use; ``BATCH_TEST_IMAGE`` wins."""
    chosen = os.environ.get("BATCH_TEST_IMAGE")
    if chosen:
        return chosen
    present = subprocess.run([engine_path, "image", "inspect", LOCAL_IMAGE], capture_output=True)
    if present.returncode != 0:
        tarball = _root_filesystem()
        subprocess.run(
            [engine_path, "import", "--change", 'CMD ["/bin/sh"]', str(tarball), LOCAL_IMAGE],
            check=True,
            capture_output=True,
        )
    return LOCAL_IMAGE


class LocalRegistry:
    """A container registry on this machine (Debian's ``docker-registry``), serving plain HTTP.

    :meth:`publish` pushes a local image to it under a new name and removes that name from the
    engine again, so an emulator that uses the image has to pull it.
    """

    def __init__(self, root: Path, engine_path: str) -> None:
        self.root = root
        self.engine = engine_path
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalRegistry:
        program = shutil.which("docker-registry") or shutil.which("registry")
        if program is None:
            raise ImageUnavailable("no registry server here (apt-get install docker-registry)")
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'storage'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self._process = subprocess.Popen(
            [program, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not _answers(self.host):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__()
                raise ImageUnavailable(f"the registry server did not start on {self.host}")
            time.sleep(0.1)
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None

    def publish(self, image: str, name: str) -> str:
        """Push ``image`` as ``<registry>/<name>``; the engine keeps no copy under that name."""
        target = f"{self.host}/{name}"
        subprocess.run([self.engine, "tag", image, target], check=True, capture_output=True)
        tls = ["--tls-verify=false"] if Path(self.engine).name.startswith("podman") else []
        subprocess.run([self.engine, "push", *tls, target], check=True, capture_output=True)
        subprocess.run([self.engine, "rmi", target], check=True, capture_output=True)
        return target


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
