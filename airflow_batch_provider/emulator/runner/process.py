"""The task process: parse the command line, start it in its own session, stop its whole tree.

Like the service on Linux nodes, the command line is not run under a shell: it is split into
arguments with POSIX shell quoting rules (``shlex``) and executed directly, so ``$VAR``, pipes,
``&&`` and redirections only work when the command line starts a shell itself, as in
``/bin/sh -c "echo $AZ_BATCH_TASK_ID > out.txt"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path

from airflow_batch_provider.emulator.runner import failures
from airflow_batch_provider.emulator.runner.failures import TaskFailure


@dataclass(frozen=True)
class ProcessOutcome:
    """How the task process ended.

    A process killed by a signal reports ``-signal`` (e.g. -9), as Linux Batch nodes report it.
    """

    exit_code: int
    timed_out: bool = False
    cancelled: bool = False


def split_command_line(command_line: str) -> list[str]:
    """Split a command line into arguments, quoting honoured, nothing expanded."""
    try:
        argv = shlex.split(command_line, posix=True)
    except ValueError as err:
        raise TaskFailure(
            failures.COMMAND_LAUNCH_FAILED,
            f"The command line could not be parsed: {err}",
            {"CommandLine": command_line},
        ) from err
    if not argv:
        raise TaskFailure(failures.COMMAND_LAUNCH_FAILED, "The command line is empty")
    return argv


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def kill_tree(process: asyncio.subprocess.Process, grace_seconds: float) -> None:
    """SIGTERM the process group, give it ``grace_seconds``, then SIGKILL whatever is left of it."""
    pgid = process.pid  # the process leads its own session, so its group id is its pid
    _signal_group(pgid, signal.SIGTERM)
    if process.returncode is None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(process.wait(), grace_seconds)
    _signal_group(pgid, signal.SIGKILL)
    await process.wait()


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
) -> ProcessOutcome:
    """Run ``argv`` to completion, or until ``deadline`` (event-loop time) or ``cancel``.

    Output goes straight to the two files, so the runner never waits on pipes kept open by
    background grandchildren. On timeout or cancel the whole process group is killed.
    """
    loop = asyncio.get_running_loop()
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        except FileNotFoundError as err:
            raise TaskFailure(
                failures.COMMAND_PROGRAM_NOT_FOUND,
                f"The program specified in the command line was not found: {argv[0]}",
                {"Program": argv[0]},
            ) from err
        except OSError as err:
            raise TaskFailure(
                failures.COMMAND_LAUNCH_FAILED,
                f"The command line could not be launched: {err.strerror or err}",
                {"Program": argv[0]},
            ) from err

    waiter = asyncio.ensure_future(process.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        done, _ = await asyncio.wait(
            {waiter, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        await asyncio.shield(kill_tree(process, kill_grace_seconds))
        raise
    finally:
        cancelled.cancel()
    if waiter in done:
        return ProcessOutcome(waiter.result())
    await kill_tree(process, kill_grace_seconds)
    code = await waiter
    if cancel.is_set():
        return ProcessOutcome(code, cancelled=True)
    return ProcessOutcome(code, timed_out=True)
