"""Starting processes on worker threads and awaiting their exit, without blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_provider.emulator.compute.runner import process as process_module
from airflow_batch_provider.emulator.compute.runner.launcher import BlockingWork, watch_exit
from airflow_batch_provider.emulator.compute.runner.process import run_process

from .test_process import wait_gone


def _start(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture(params=["pidfd", "thread"])
def exit_watching(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of awaiting an exit: the loop watching a pidfd, and a thread in waitpid."""
    if request.param == "thread":

        def no_pidfd(pid: int, flags: int = 0) -> int:
            raise OSError("no pidfd here")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd_open on this platform")
    return str(request.param)


async def test_watch_exit_reports_the_exit_code(exit_watching: str) -> None:
    process = _start("/bin/sh", "-c", "exit 7")
    assert await asyncio.wait_for(watch_exit(process), 5) == 7
    assert process.returncode == 7  # reaped through Popen, which knows it


async def test_watch_exit_reports_minus_the_signal(exit_watching: str) -> None:
    process = _start("sleep", "100")
    exited = watch_exit(process)
    await asyncio.sleep(0.05)
    assert not exited.done()
    process.kill()
    assert await asyncio.wait_for(exited, 5) == -9


async def test_blocking_work_runs_on_its_threads_and_stops_them() -> None:
    work = BlockingWork(max_workers=2, name="test-blocking-work")
    assert await work.call(lambda: threading.current_thread().name.startswith("test-blocking-work"))
    with pytest.raises(ValueError, match="boom"):
        await work.call(_raise, ValueError("boom"))
    work.close()
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("test-blocking-work")]
    with pytest.raises(RuntimeError, match="closed"):
        await work.call(int, "1")


def _raise(error: Exception) -> None:
    raise error


async def test_a_process_started_while_its_run_is_cancelled_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker thread cannot be interrupted: what it starts after a cancel is stopped at once."""
    entered, release = threading.Event(), threading.Event()
    started: list[subprocess.Popen[bytes]] = []
    real_start = process_module.start_process

    def slow_start(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        entered.set()
        release.wait(10)
        process = real_start(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(process_module, "start_process", slow_start)
    work = BlockingWork(max_workers=1)
    run = asyncio.ensure_future(
        run_process(
            ["sleep", "100"],
            cwd=tmp_path,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdout_path=tmp_path / "stdout.txt",
            stderr_path=tmp_path / "stderr.txt",
            cancel=asyncio.Event(),
            deadline=None,
            kill_grace_seconds=1.0,
            blocking=work,
        )
    )
    try:
        assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, 5)
        run.cancel()
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 10)
        assert len(started) == 1
        assert started[0].returncode == -15  # SIGTERM to its group, and reaped
        assert wait_gone(started[0].pid)
    finally:
        release.set()
        work.close()
