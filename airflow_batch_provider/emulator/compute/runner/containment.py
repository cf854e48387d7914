"""Every process a task starts is found and ended with it, as a node's job object or cgroup does.

A task's background children, daemons and ``setsid`` descendants leave its process group, so
stopping the group is not enough. A :class:`ProcessContainer` per run finds all of them by two
means:

- an **environment marker** every descendant inherits, looked up with ``psutil`` among the
  emulator's children and their descendants: the emulator is a **child subreaper**, so orphans
  re-parent to it rather than to init (if it cannot be one, among all processes);
- a **cgroup v2** of the run's own, where the emulator may create one: the kernel keeps every
  descendant in it, even one that clears its environment, and ``cgroup.kill`` ends them at once.

The emulator reaps the orphans it adopted and ends, so none is left as a zombie either.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import time
import uuid
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

#: The variable that marks every process of one run (its value is the run's token).
MARKER = "AZ_BATCH_EMULATOR_RUN"
_PR_SET_CHILD_SUBREAPER = 36
#: Joins the cgroup whose ``cgroup.procs`` is ``$0`` (quietly: the marker still tracks it if it
#: cannot), then becomes the task's program; the pid stays the same.
_JOIN_AND_EXEC = '{ echo 0 > "$0"; } 2>/dev/null; exec "$@"'


@functools.cache
def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux); whether it is one."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _cgroup2_mount() -> Path | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return Path(left.split(" ")[4])
    return None


def _own_cgroup() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    return None


@functools.cache
def cgroup_parent() -> Path | None:
    """A cgroup v2 directory of this emulator process for its runs' cgroups, or None if there is none.

    It sits next to the emulator's own cgroup (which then holds processes and subgroups, allowed
    as no controller is enabled for them). None where cgroup v2 is not mounted or not writable.
    """
    mount, own = _cgroup2_mount(), _own_cgroup()
    if mount is None or own is None:
        return None
    parent = mount / own.lstrip("/") / f"batch-emulator-{os.getpid()}"
    try:
        parent.mkdir(exist_ok=True)
        probe = parent / "probe"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError as err:
        log.info("no cgroup v2 for task processes (%s): they are tracked by environment marker", err)
        return None
    return parent


def remove_cgroup_parent() -> None:
    """Remove the emulator's cgroup directory if no run's cgroup is left in it."""
    parent = cgroup_parent()
    if parent is not None:
        with contextlib.suppress(OSError):
            parent.rmdir()


def _children_of_this_process() -> list[psutil.Process]:
    """This process's children, read cheaply from ``/proc/self/task/*/children`` where it exists."""
    try:
        pids = {
            int(pid)
            for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()
        }
    except (OSError, ValueError):
        return psutil.Process().children()
    children = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            children.append(psutil.Process(pid))
    return children


class ProcessContainer:
    """The processes of one run: started inside it, found while they live, ended all together.

    Every method but :attr:`environment` blocks (file-system and ``/proc`` work): call them off the
    event loop. ``use_cgroup=False`` tracks by environment marker only.
    """

    def __init__(self, *, use_cgroup: bool = True) -> None:
        self.token = uuid.uuid4().hex
        self.leader: int | None = None
        parent = cgroup_parent() if use_cgroup else None
        self.cgroup: Path | None = None
        if parent is not None:
            try:
                parent.mkdir(exist_ok=True)  # made again if an executor closed meanwhile removed it
                cgroup = parent / self.token
                cgroup.mkdir()
                self.cgroup = cgroup
            except OSError as err:
                log.warning("no cgroup for a task run (%s): tracking it by environment marker", err)

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with the run's marker, which every descendant inherits."""
        return {**env, MARKER: self.token}

    def command(self, argv: list[str]) -> list[str]:
        """What to execute for ``argv``: with a cgroup, a shell that joins it, then execs ``argv``.

        The process joins before it runs anything, so nothing it forks can start outside. (A
        ``preexec_fn`` would do the same, but makes every start a full ``fork`` rather than a
        ``vfork``.) The caller checks that ``argv[0]`` can be executed.
        """
        if self.cgroup is None:
            return argv
        return ["/bin/sh", "-c", _JOIN_AND_EXEC, str(self.cgroup / "cgroup.procs"), *argv]

    def started(self, pid: int | None) -> None:
        """The run's first process has started (``pid``) or failed to (None)."""
        self.leader = pid

    # ---- finding

    def members(self) -> list[psutil.Process]:
        """The run's live processes, the leader included."""
        found = {process.pid: process for process in self._marked_members()}
        if self.cgroup is not None:
            found.update((process.pid, process) for process in self._cgroup_members())
        return list(found.values())

    def _cgroup_members(self) -> list[psutil.Process]:
        assert self.cgroup is not None
        try:
            pids = (self.cgroup / "cgroup.procs").read_text().split()
        except OSError:
            return []
        found = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(int(pid)))
        return found

    def _marked_members(self) -> list[psutil.Process]:
        if not become_subreaper():
            return [process for process in psutil.process_iter() if self._marked(process)]
        # Every live process of the run descends, through processes that carry the marker, from a
        # child of the emulator: the task process itself, or an orphan the emulator adopted.
        found = []
        for child in _children_of_this_process():
            if self._marked(child):
                found.append(child)
                with contextlib.suppress(psutil.Error):
                    found.extend(p for p in child.children(recursive=True) if self._marked(p))
        return found

    def _marked(self, process: psutil.Process) -> bool:
        if process.pid == os.getpid():
            return False
        try:
            return bool(process.environ().get(MARKER) == self.token)
        except psutil.Error:
            return False

    # ---- ending

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process of the run."""
        for process in self.members():
            with contextlib.suppress(psutil.Error):
                process.send_signal(signum)

    def end(self, timeout: float = 5.0) -> None:
        """SIGKILL every process of the run and wait until none is left; then release the cgroup.

        The leader is only signalled (its ``Popen`` reaps it); orphans the emulator adopted are reaped.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.cgroup is not None:
                with contextlib.suppress(OSError):
                    (self.cgroup / "cgroup.kill").write_text("1")
            members = self.members()
            for process in members:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            others = [process for process in members if process.pid != self.leader]
            _, alive = psutil.wait_procs(others, timeout=0.2)  # reaps those that are our children
            if not alive and not any(process.pid != self.leader for process in self.members()):
                break
            if time.monotonic() > deadline:
                log.warning("processes of a task run outlived SIGKILL: %s", [p.pid for p in alive])
                break
        self._reap_session_orphans()
        self.close()

    def _reap_session_orphans(self) -> None:
        """Reap orphans of the run's session that exited by themselves and were adopted meanwhile."""
        if self.leader is None or not become_subreaper():
            return
        for child in _children_of_this_process():
            with contextlib.suppress(psutil.Error, OSError):
                zombie = child.pid != self.leader and child.status() == psutil.STATUS_ZOMBIE
                if zombie and os.getsid(child.pid) == self.leader:
                    os.waitpid(child.pid, os.WNOHANG)

    def close(self) -> None:
        """Release the run's cgroup (empty by then)."""
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()


def terminate(container: ProcessContainer) -> None:
    """SIGTERM every process of the run (they get a grace period before :meth:`~ProcessContainer.end`)."""
    container.signal(signal.SIGTERM)
