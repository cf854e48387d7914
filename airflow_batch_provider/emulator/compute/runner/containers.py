"""Container tasks through a local OCI engine (podman or docker), with the Batch service's semantics.

A container task runs as ``<engine> run`` of its image: the node's directories mounted at the same
paths (``AZ_BATCH_NODE_ROOT_DIR`` whole, or only the ``containerHostBatchBindMounts`` listed), the
task's environment settings and ``AZ_BATCH_*`` variables passed in, the working directory set to the
task's ``wd/`` (``taskWorkingDirectory``) or left to the image (``containerImageDefault``), and the
task's ``containerRunOptions`` added. The engine client is a process of the run like any other (it is
contained and killed with the task); the container itself has a name derived from the task, by which
:func:`stop_container` kills and removes it when the task is stopped for its wall clock, terminated
or deleted.

Images are used when present locally and pulled otherwise (registry credentials go to the engine's
``login`` on stdin, never on a command line or in a log). A registry on this machine (``localhost``,
``127.*``) may serve plain HTTP, as the registry the tests start does.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Engines looked for on the PATH, in this order, when none is named.
KNOWN_ENGINES = ("podman", "docker")
#: How long an engine may take to answer ``version`` or to remove a container.
_QUICK_SECONDS = 30.0
#: How long a pull may take.
_PULL_SECONDS = 600.0

#: ``ContainerHostDataPath`` values (lower case) of ``containerHostBatchBindMounts``.
BIND_MOUNT_SOURCES = ("shared", "startup", "vfsmounts", "task", "jobprep", "applications")
#: Those that are a directory below the node root.
_NODE_DIRECTORIES = {
    "shared": "shared",
    "startup": "startup",
    "vfsmounts": "fsmounts",
    "applications": "applications",
}


class ContainerError(Exception):
    """An image could not be made available or a container could not be managed; says why."""


@dataclass(frozen=True)
class ContainerSettings:
    """A task's ``containerSettings`` and its pool's registries, as the runner needs them."""

    image: str
    run_options: str = ""
    #: ``taskworkingdirectory`` (the default) or ``containerimagedefault`` (lower case).
    working_directory: str = "taskworkingdirectory"
    #: ``containerHostBatchBindMounts`` as sent (None: the whole node root is mounted).
    bind_mounts: list[dict[str, Any]] | None = None
    #: The task's own registry first, then the pool's ``containerRegistries``.
    registries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_task(
        cls, settings: Mapping[str, Any], pool_registries: Sequence[Mapping[str, Any]] = ()
    ) -> ContainerSettings:
        registries = [dict(settings["registry"])] if settings.get("registry") else []
        registries.extend(dict(registry) for registry in pool_registries)
        return cls(
            image=str(settings["imageName"]),
            run_options=str(settings.get("containerRunOptions") or ""),
            working_directory=str(settings.get("workingDirectory") or "taskWorkingDirectory").lower(),
            bind_mounts=settings.get("containerHostBatchBindMounts"),
            registries=registries,
        )


def find_engine(name: str | None = None) -> str | None:
    """The path of a working engine: ``name`` (a command or path) or the first of podman, docker.

    An engine counts only if it answers ``version`` (a docker client without a daemon does not).
    """
    for candidate in [name] if name else KNOWN_ENGINES:
        path = shutil.which(candidate)
        if path is None:
            continue
        try:
            answer = subprocess.run(
                [path, "version"], capture_output=True, timeout=_QUICK_SECONDS, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            log.warning("container engine %s does not answer: %s", path, err)
            continue
        if answer.returncode == 0:
            return path
        log.warning(
            "container engine %s does not work: %s", path, answer.stderr.decode(errors="replace").strip()
        )
    return None


def container_name(*parts: str | int | None) -> str:
    """A container name derived from the run (account, pool, node, job, task, kind, retry): readable
    and unique, in the characters engines accept."""
    text = "-".join(str(part) for part in parts if part is not None)
    readable = re.sub(r"[^a-zA-Z0-9_.-]+", "_", text)[:100]
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"batch-{readable}-{digest}"


def _registry_of(image: str) -> str | None:
    """The registry host of an image reference, when it names one (``host[:port]/...``)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _plain_http_options(engine: str, host: str | None) -> list[str]:
    """Options that let podman reach a registry on this machine over plain HTTP (docker does so already)."""
    if host is None or not Path(engine).name.startswith("podman"):
        return []
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if name in ("localhost", "[::1]") or name.startswith("127."):
        return ["--tls-verify=false"]
    return []


def image_present(engine: str, image: str) -> bool:
    """Whether ``engine`` has ``image`` locally."""
    answer = subprocess.run(
        [engine, "image", "inspect", image],
        capture_output=True,
        timeout=_QUICK_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    return answer.returncode == 0


def _login(engine: str, registry: Mapping[str, Any]) -> None:
    server = str(registry.get("registryServer") or "docker.io")
    username, password = registry.get("username"), registry.get("password")
    if not username or password is None:
        return  # a managed identity reference: nothing the emulator can log in with
    login = [engine, "login", *_plain_http_options(engine, server), "--username", str(username)]
    answer = subprocess.run(
        [*login, "--password-stdin", server],
        input=str(password).encode(),
        capture_output=True,
        timeout=_QUICK_SECONDS,
    )
    if answer.returncode != 0:
        raise ContainerError(
            f"Logging in to the container registry {server} as {username} failed: {_tail(answer.stderr)}"
        )


def ensure_image(engine: str, image: str, registries: Sequence[Mapping[str, Any]] = ()) -> None:
    """Make ``image`` available to ``engine``: kept when present, else pulled (after a login to its
    registry when credentials for it are given). Raises :class:`ContainerError` naming the cause."""
    if image_present(engine, image):
        return
    host = _registry_of(image)
    for registry in registries:
        if str(registry.get("registryServer") or "docker.io") == (host or "docker.io"):
            _login(engine, registry)
            break
    try:
        answer = subprocess.run(
            [engine, "pull", *_plain_http_options(engine, host), image],
            capture_output=True,
            timeout=_PULL_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise ContainerError(f"Pulling the image {image} took over {_PULL_SECONDS:.0f} s") from err
    if answer.returncode != 0:
        raise ContainerError(f"The image {image} could not be pulled: {_tail(answer.stderr)}")


def _tail(output: bytes, limit: int = 500) -> str:
    text = output.decode(errors="replace").strip()
    return text[-limit:] or "(the engine said nothing)"


def _mounts(
    settings: ContainerSettings, node_root: Path, task_dir: Path, job_prep_dir: Path | None
) -> list[str]:
    if settings.bind_mounts is None:
        return ["--volume", f"{node_root}:{node_root}"]
    arguments: list[str] = []
    for entry in settings.bind_mounts:
        source = str(entry.get("source") or "").lower()
        if source == "task":
            path: Path | None = task_dir
        elif source == "jobprep":
            path = job_prep_dir
        elif source in _NODE_DIRECTORIES:
            path = node_root / _NODE_DIRECTORIES[source]
        else:
            raise ContainerError(f"Unknown containerHostBatchBindMounts source {source!r}")
        if path is None:
            continue
        path.mkdir(parents=True, exist_ok=True)
        mode = ":ro" if entry.get("isReadOnly") else ""
        arguments += ["--volume", f"{path}:{path}{mode}"]
    return arguments


def run_command(
    engine: str,
    name: str,
    settings: ContainerSettings,
    argv: Sequence[str],
    *,
    variables: Sequence[str],
    node_root: Path,
    task_dir: Path,
    working_dir: Path,
    job_prep_dir: Path | None = None,
) -> list[str]:
    """The engine command that runs ``argv`` in the task's container.

    ``variables`` are passed by name only (``-e NAME``): their values come from the engine client's
    environment, so none appears on a command line.
    """
    command = [engine, "run", "--rm", "--name", name, "--pull", "never", "--network", "host"]
    command += _mounts(settings, node_root, task_dir, job_prep_dir)
    for variable in variables:
        command += ["--env", variable]
    if settings.working_directory != "containerimagedefault":
        command += ["--workdir", str(working_dir)]
    command += shlex.split(settings.run_options)
    return [*command, settings.image, *argv]


def stop_container(engine: str, name: str) -> None:
    """Kill and remove the container ``name`` at once, if it exists (never raises)."""
    for action in (["kill", name], ["rm", "--force", name]):
        try:
            subprocess.run(
                [engine, *action],
                capture_output=True,
                timeout=_QUICK_SECONDS,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            log.warning("could not %s container %s: %s", action[0], name, err)
