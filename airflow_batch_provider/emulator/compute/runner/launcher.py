"""Blocking steps of a task attempt, kept off the event loop that serves the Batch API.

Starting a process (fork and exec) takes milliseconds, and laying out a task directory several
file-system calls. Done on the event loop, they hold up every request the emulator serves while
tasks start, so a :class:`BlockingWork` pool of worker threads runs them instead. A process's exit
is then awaited without any thread: :func:`watch_exit` has the loop watch a pidfd (Linux 5.3+),
and falls back to a thread blocked in ``waitpid`` where there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Worker threads of a pool: two start processes side by side on a small machine, more on a big one.
DEFAULT_WORKERS = min(4, max(2, os.cpu_count() or 1))


class BlockingWork:
    """A small pool of worker threads for blocking calls (process starts, directory creation).

    The threads are started on first use; :meth:`close` waits for the calls under way and stops them.
    """

    def __init__(self, max_workers: int = DEFAULT_WORKERS, name: str = "batch-task-launcher") -> None:
        self.max_workers = max_workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the task launcher is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix=self.name)
            return self._pool

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` on a worker thread and return (or raise) what it does."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        """Stop the worker threads once the calls already under way have returned."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def watch_exit(process: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    """A future of the running loop that gets ``process``'s return code once it has exited.

    The process is reaped through ``Popen`` itself, so its ``returncode`` is set (``-N`` for a
    process killed by signal N) and nothing else waits for the same pid.
    """
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd here (not Linux, or an old kernel)
        _wait_in_thread(process, loop, exited)
        return exited

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        # A readable pidfd means the process has ended: this waitpid returns at once.
        code = process.wait()
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, on_exit)
    return exited


def _wait_in_thread(
    process: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop, exited: asyncio.Future[int]
) -> None:
    def report(code: int) -> None:
        if not exited.done():
            exited.set_result(code)

    def wait() -> None:
        code = process.wait()
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
            loop.call_soon_threadsafe(report, code)

    threading.Thread(target=wait, name=f"batch-task-wait-{process.pid}", daemon=True).start()
