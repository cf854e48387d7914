"""The task process: parse the command line, start it in its own session, stop its whole tree.

Like the service on Linux nodes, the command line is not run under a shell: it is split into
arguments with POSIX shell quoting rules (``shlex``) and executed directly, so ``$VAR``, pipes,
``&&`` and redirections only work when the command line starts a shell itself, as in
``/bin/sh -c "echo $AZ_BATCH_TASK_ID > out.txt"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_batch_provider.emulator.compute.runner import failures
from airflow_batch_provider.emulator.compute.runner.containment import ProcessContainer
from airflow_batch_provider.emulator.compute.runner.failures import TaskFailure
from airflow_batch_provider.emulator.compute.runner.launcher import BlockingWork, watch_exit


@dataclass(frozen=True)
class ProcessOutcome:
    """How the task process ended.

    A process killed by a signal reports ``-signal`` (e.g. -9), as Linux Batch nodes report it.
    """

    exit_code: int
    timed_out: bool = False
    cancelled: bool = False


#: The longest command line a task may carry: the service's limit on a whole task body (1 MB).
MAX_COMMAND_LINE_BYTES = 1024 * 1024

# One piece of a POSIX-quoted word: a single-quoted run, a double-quoted run, an escaped character,
# plain characters, or the whitespace between words. No alternative nests repeats: matching is linear.
_PIECE = re.compile(
    r"'(?P<single>[^']*)'"
    r'|"(?P<double>[^"\\]*(?:\\.[^"\\]*)*)"'
    r"|\\(?P<escaped>.)"
    r"|(?P<plain>[^ \t\r\n'\"\\]+)"
    r"|(?P<space>[ \t\r\n]+)",
    re.DOTALL,
)
# Within double quotes a backslash escapes only a backslash or a double quote (and is kept otherwise).
_ESCAPED_IN_DOUBLE_QUOTES = re.compile(r'\\([\\"])')


def _unmatched(command_line: str, position: int) -> str:
    """Why no piece matches at ``position``: a trailing backslash, or a quote never closed."""
    rest = command_line[position:]
    trailing_backslashes = len(rest) - len(rest.rstrip("\\"))
    if rest[0] != "'" and trailing_backslashes % 2:
        return "No escaped character"  # shlex's words, as the runner reported them before
    return "No closing quotation"


def _split(command_line: str) -> list[str]:
    """``shlex.split(command_line)`` in linear time (``shlex`` is quadratic in a word's length)."""
    words: list[str] = []
    pieces: list[str] = []
    quoted = False
    position, length = 0, len(command_line)
    while position < length:
        match = _PIECE.match(command_line, position)
        if match is None:
            raise ValueError(_unmatched(command_line, position))
        position = match.end()
        kind = match.lastgroup or ""
        if kind == "space":
            if pieces or quoted:
                words.append("".join(pieces))
            pieces, quoted = [], False
        elif kind == "double":
            pieces.append(_ESCAPED_IN_DOUBLE_QUOTES.sub(r"\1", match.group(kind)))
            quoted = True
        else:
            pieces.append(match.group(kind))
            quoted = quoted or kind == "single"
    if pieces or quoted:
        words.append("".join(pieces))
    return words


def command_line_too_long(command_line: str) -> bool:
    """Whether ``command_line`` is over :data:`MAX_COMMAND_LINE_BYTES` (UTF-8 encoded)."""
    return len(command_line) > MAX_COMMAND_LINE_BYTES or len(command_line.encode()) > MAX_COMMAND_LINE_BYTES


def split_command_line(command_line: str) -> list[str]:
    """Split a command line into arguments as ``shlex.split`` does: quoting honoured, nothing expanded.

    Linear in the command line's length and refused beyond :data:`MAX_COMMAND_LINE_BYTES`; the
    runner still calls it on a worker thread, off the event loop.
    """
    if command_line_too_long(command_line):
        raise TaskFailure(
            failures.COMMAND_LAUNCH_FAILED,
            f"The command line is longer than the service's limit of {MAX_COMMAND_LINE_BYTES} bytes",
            {"MaxLength": str(MAX_COMMAND_LINE_BYTES)},
        )
    try:
        argv = _split(command_line)
    except ValueError as err:
        raise TaskFailure(
            failures.COMMAND_LAUNCH_FAILED,
            f"The command line could not be parsed: {err}",
            {"CommandLine": command_line[:1024]},
        ) from err
    if not argv:
        raise TaskFailure(failures.COMMAND_LAUNCH_FAILED, "The command line is empty")
    return argv


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _check_executable(program: str, cwd: Path, env: dict[str, str]) -> None:
    """Raise what starting ``program`` directly would raise (``Popen``'s lookup: ``PATH`` of ``env``)."""
    if "/" in program:
        candidates = [cwd / program]
    else:
        candidates = [cwd / directory / program for directory in os.get_exec_path(env)]
    for candidate in candidates:
        if candidate.is_file():
            if os.access(candidate, os.X_OK):
                return
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(candidate))
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def start_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout_path: Path,
    stderr_path: Path,
    container: ProcessContainer,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own and in ``container``, output straight to the two files.

    Blocking (it forks and execs): the runner calls it on a worker thread, never on the event loop.
    """
    command = container.command(argv)
    if command is not argv:  # a launcher execs the program: check first that it can
        try:
            _check_executable(argv[0], cwd, env)
        except OSError as err:
            container.started(None)
            raise _launch_failure(err, argv[0]) from err
    environment = container.environment(env)
    pid: int | None = None
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
            pid = process.pid
            return process
        except OSError as err:
            raise _launch_failure(err, argv[0]) from err
        finally:
            container.started(pid)


def _launch_failure(error: OSError, program: str) -> TaskFailure:
    """The task failure for a program that could not be started."""
    if isinstance(error, FileNotFoundError):
        return TaskFailure(
            failures.COMMAND_PROGRAM_NOT_FOUND,
            f"The program specified in the command line was not found: {program}",
            {"Program": program},
        )
    return TaskFailure(
        failures.COMMAND_LAUNCH_FAILED,
        f"The command line could not be launched: {error.strerror or error}",
        {"Program": program},
    )


async def kill_tree(
    process: subprocess.Popen[bytes],
    exited: asyncio.Future[int],
    grace_seconds: float,
    container: ProcessContainer,
    stop: Callable[[], None] | None = None,
) -> int:
    """SIGTERM every process of the run, give it ``grace_seconds``, then SIGKILL whatever is left.

    ``exited`` is the process's :func:`watch_exit` future; the return code is returned. ``stop``
    first stops what lives outside the process tree (a container the process runs through an engine).
    """
    if stop is not None:
        await asyncio.to_thread(stop)
    pgid = process.pid  # the process leads its own session, so its group id is its pid
    _signal_group(pgid, signal.SIGTERM)
    await asyncio.to_thread(container.signal, signal.SIGTERM)
    if not exited.done():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), grace_seconds)
    _signal_group(pgid, signal.SIGKILL)
    await asyncio.to_thread(container.end)
    return await exited


async def _started(
    launch: asyncio.Future[subprocess.Popen[bytes]],
    kill_grace_seconds: float,
    container: ProcessContainer,
    stop: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Await a start under way on a worker thread; if cancelled meanwhile, stop what it starts."""
    try:
        return await asyncio.shield(launch)
    except asyncio.CancelledError:
        # The thread cannot be interrupted: let it finish, then kill the process tree it started.
        with contextlib.suppress(Exception):
            process = await launch
            await kill_tree(process, watch_exit(process), kill_grace_seconds, container, stop)
        raise


async def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout_path: Path,
    stderr_path: Path,
    cancel: asyncio.Event,
    deadline: float | None,
    kill_grace_seconds: float,
    blocking: BlockingWork,
    containers: set[ProcessContainer] | None = None,
    use_cgroup: bool = True,
    stop: Callable[[], None] | None = None,
) -> ProcessOutcome:
    """Run ``argv`` to completion, or until ``deadline`` (event-loop time) or ``cancel``.

    Output goes straight to the two files, so the runner never waits on pipes kept open by
    background grandchildren. Every process the run starts, ``setsid`` ones included, is in one
    :class:`ProcessContainer`: all are ended when the process exits (as a node ends a task's
    background children), times out or is cancelled. The container is in ``containers`` while the
    run lasts. The process is started on one of ``blocking``'s threads, and its exit awaited
    without blocking the loop. ``stop`` is called (on a thread) before the tree is killed, and
    once more if the run ends otherwise than by the process exiting, for what runs outside the tree
    (a task's container).
    """
    loop = asyncio.get_running_loop()
    container = await asyncio.to_thread(ProcessContainer, use_cgroup=use_cgroup)
    live = containers if containers is not None else set()
    live.add(container)
    exited_alone = False
    try:
        launch = asyncio.ensure_future(
            blocking.call(
                start_process,
                argv,
                cwd=cwd,
                env=env,
                stdout_path=stdout_path,
                stderr_path=stderr_path,
                container=container,
            )
        )
        process = await _started(launch, kill_grace_seconds, container, stop)
        exited = watch_exit(process)
        cancelled = asyncio.ensure_future(cancel.wait())
        waiters: set[asyncio.Future[Any]] = {exited, cancelled}
        try:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await asyncio.shield(kill_tree(process, exited, kill_grace_seconds, container, stop))
            raise
        finally:
            cancelled.cancel()
        if exited in done:
            exited_alone = True
            return ProcessOutcome(exited.result())
        code = await kill_tree(process, exited, kill_grace_seconds, container, stop)
        if cancel.is_set():
            return ProcessOutcome(code, cancelled=True)
        return ProcessOutcome(code, timed_out=True)
    finally:
        # What the task left running (background children, daemons) ends with it.
        await asyncio.shield(asyncio.to_thread(container.end))
        if stop is not None and not exited_alone:
            await asyncio.shield(asyncio.to_thread(stop))
        live.discard(container)
