"""A task that tries to outlive itself: a background child and a ``setsid`` grandchild."""

from __future__ import annotations

import os
import random
import shlex
import time

import psutil


class Escapes:
    """Command lines whose process leaves ``sleep`` processes behind, found by their unique durations."""

    def __init__(self) -> None:
        suffix = random.randrange(10**6, 10**7)
        self.background = f"300.{suffix}"
        self.detached = f"301.{suffix}"

    def command_line(self, main_seconds: float) -> str:
        """``/bin/sh`` starting both escapes, then sleeping ``main_seconds`` itself."""
        script = f"sleep {self.background} & setsid sleep {self.detached} & sleep {main_seconds}"
        return f"/bin/sh -c {shlex.quote(script)}"

    def running(self) -> list[psutil.Process]:
        """The escapes still alive (zombies are not: they have ended)."""
        alive = []
        for process in psutil.process_iter(["cmdline", "status"]):
            cmdline = process.info["cmdline"] or []
            if (
                process.info["status"] != psutil.STATUS_ZOMBIE
                and len(cmdline) == 2
                and cmdline[0].endswith("sleep")
                and cmdline[1] in (self.background, self.detached)
            ):
                alive.append(process)
        return alive

    def wait_started(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.running()) < 2:
            assert time.monotonic() < deadline, "the escapes did not start"
            time.sleep(0.05)
        sessions = {os.getsid(process.pid) for process in self.running()}
        assert len(sessions) == 2, "the setsid grandchild should have a session of its own"

    def wait_gone(self, timeout: float = 10.0) -> list[psutil.Process]:
        """Wait for both escapes to end; what is still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := self.running()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def kill(self) -> None:
        """Clean up after a failing test."""
        for process in self.running():
            process.kill()
