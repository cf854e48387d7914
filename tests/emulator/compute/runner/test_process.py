"""The task process as a user sees it: command line, exit codes, output files, environment, limits."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from pathlib import Path

from airflow_batch_provider.emulator.compute.runner.executor import TaskExecutor
from airflow_batch_provider.emulator.compute.runner.spec import RunKind, TaskRunResult, TaskRunSpec

from .helpers import Node

PY = shlex.quote(sys.executable)


async def run(spec: TaskRunSpec, cancel: asyncio.Event | None = None, **executor: float) -> TaskRunResult:
    return await TaskExecutor(**executor).run(spec, cancel or asyncio.Event())


def python(code: str) -> str:
    return f"{PY} -c {shlex.quote(code)}"


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts: PID 1 here may not reap orphans)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def wait_gone(pid: int, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.02)
    return process_gone(pid)


async def test_success_writes_stdout_and_stderr_in_the_task_dir(node: Node) -> None:
    spec = node.spec(python("import sys; print('to out'); print('to err', file=sys.stderr)"))
    result = await run(spec)
    assert result.exit_code == 0
    assert result.failure_info is None
    assert result.succeeded and result.result == "success"
    assert (spec.task_dir / "stdout.txt").read_text() == "to out\n"
    assert (spec.task_dir / "stderr.txt").read_text() == "to err\n"
    assert result.start_time.tzinfo is not None and result.end_time.tzinfo is not None
    assert result.start_time <= result.end_time


async def test_runs_in_the_working_directory(node: Node) -> None:
    spec = node.spec("/bin/sh -c 'pwd; echo made > made.txt'")
    result = await run(spec)
    assert result.exit_code == 0
    assert (spec.task_dir / "stdout.txt").read_text().strip() == str(spec.task_dir / "wd")
    assert (spec.task_dir / "wd" / "made.txt").read_text() == "made\n"


async def test_nonzero_exit_code_is_a_failure_exit_code(node: Node) -> None:
    result = await run(node.spec("/bin/sh -c 'exit 3'"))
    assert result.exit_code == 3
    assert result.result == "failure"
    assert result.failure_info == {
        "category": "usererror",
        "code": "FailureExitCode",
        "message": "The task exited with an exit code representing a failure",
        "details": [
            {"name": "Message", "value": "The task process exited with an unexpected exit code"},
            {"name": "AdditionalErrorCode", "value": "FailureExitCode"},
        ],
    }


async def test_a_process_killed_by_a_signal_reports_minus_the_signal(node: Node) -> None:
    result = await run(node.spec("/bin/sh -c 'kill -9 $$'"))
    assert result.exit_code == -9
    assert result.failure_info is not None and result.failure_info["code"] == "FailureExitCode"


async def test_command_line_is_not_run_under_a_shell(node: Node) -> None:
    """As on Batch nodes: quotes are honoured but variables, redirections and ``&&`` are not."""
    spec = node.spec("echo '$HOME' \"a  b\" > x && done")
    result = await run(spec)
    assert result.exit_code == 0
    assert (spec.task_dir / "stdout.txt").read_text() == "$HOME a  b > x && done\n"
    assert not (spec.task_dir / "wd" / "x").exists()


async def test_a_shell_started_by_the_command_line_expands_variables(node: Node) -> None:
    spec = node.spec("/bin/sh -c 'echo $AZ_BATCH_TASK_ID > id.txt'", task_id="expand-me")
    assert (await run(spec)).exit_code == 0
    assert (spec.task_dir / "wd" / "id.txt").read_text() == "expand-me\n"


async def test_missing_program_fails_to_launch(node: Node) -> None:
    result = await run(node.spec("no-such-program-anywhere --flag"))
    assert result.exit_code is None
    assert result.failure_info is not None
    assert result.failure_info["category"] == "usererror"
    assert result.failure_info["code"] == "CommandProgramNotFound"
    assert "no-such-program-anywhere" in result.failure_info["message"]


async def test_unparseable_command_line_fails_to_launch(node: Node) -> None:
    result = await run(node.spec("echo 'unterminated"))
    assert result.exit_code is None
    assert result.failure_info is not None and result.failure_info["code"] == "CommandLaunchFailed"


def _dump_env() -> str:
    return python("import json, os; json.dump(dict(os.environ), open('env.json', 'w'))")


async def test_task_environment(node: Node, tmp_path: Path) -> None:
    prep_dir = node.root / "workitems" / "jobpreparation"
    app_dir = tmp_path / "apps" / "tool"
    spec = node.spec(
        _dump_env(),
        task_id="task-7",
        environment={"MY_SETTING": "42", "AZ_BATCH_TASK_ID": "spoofed"},
        app_package_dirs={"AZ_BATCH_APP_PACKAGE_tool_1_0": app_dir},
        job_prep_dir=prep_dir,
        account_url="http://127.0.0.1:1234/emuaccount",
        node_is_dedicated=False,
    )
    assert (await run(spec)).exit_code == 0
    env = json.loads((spec.task_dir / "wd" / "env.json").read_text())
    root = node.root
    expected = {
        "AZ_BATCH_ACCOUNT_NAME": "emuaccount",
        "AZ_BATCH_ACCOUNT_URL": "http://127.0.0.1:1234/emuaccount",
        "AZ_BATCH_POOL_ID": "pool-1",
        "AZ_BATCH_NODE_ID": "tvmps_node-1",
        "AZ_BATCH_NODE_IS_DEDICATED": "false",
        "AZ_BATCH_NODE_ROOT_DIR": str(root),
        "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
        "AZ_BATCH_NODE_STARTUP_DIR": str(root / "startup"),
        "AZ_BATCH_NODE_MOUNTS_DIR": str(root / "fsmounts"),
        "AZ_BATCH_TASK_DIR": str(spec.task_dir),
        "AZ_BATCH_TASK_WORKING_DIR": str(spec.task_dir / "wd"),
        "AZ_BATCH_JOB_ID": "job-1",
        "AZ_BATCH_TASK_ID": "task-7",
        "AZ_BATCH_JOB_PREP_DIR": str(prep_dir),
        "AZ_BATCH_JOB_PREP_WORKING_DIR": str(prep_dir / "wd"),
        "AZ_BATCH_APP_PACKAGE_tool_1_0": str(app_dir),
        "AZ_BATCH_CERTIFICATES_DIR": str(spec.task_dir / "certs"),
        "AZ_BATCH_TASK_USER": "_azbatch",
        "AZ_BATCH_TASK_USER_IDENTITY": "PoolNonAdmin",
        "MY_SETTING": "42",
        # As on a Linux node: HOME is the working directory, USER the task user.
        "HOME": str(spec.task_dir / "wd"),
        "USER": "_azbatch",
    }
    assert {name: env.get(name) for name in expected} == expected
    assert (root / "shared").is_dir()
    assert (spec.task_dir / "certs").is_dir()
    path = env["PATH"].split(os.pathsep)
    # The emulator's Python comes first on PATH, so "python" means the same interpreter; the
    # shared and working directories come last, as on a Linux node.
    assert path[0] == os.path.dirname(sys.executable)
    assert path[-2:] == [str(root / "shared"), str(spec.task_dir / "wd")]


async def test_programs_in_the_working_directory_run_by_name(node: Node) -> None:
    spec = node.spec("hello.sh world")
    script = spec.task_dir / "wd" / "hello.sh"
    script.parent.mkdir(parents=True)
    script.write_text('#!/bin/sh\necho "hello $1"\n')
    script.chmod(0o755)
    assert (await run(spec)).exit_code == 0
    assert (spec.task_dir / "stdout.txt").read_text() == "hello world\n"


async def test_user_identity_variables(node: Node) -> None:
    named = node.spec(_dump_env(), user_identity={"userName": "alice"})
    assert (await run(named)).exit_code == 0
    env = json.loads((named.task_dir / "wd" / "env.json").read_text())
    assert env["AZ_BATCH_TASK_USER"] == env["USER"] == "alice"
    assert "AZ_BATCH_TASK_USER_IDENTITY" not in env


async def test_start_task_environment_has_no_job_or_task_ids(node: Node) -> None:
    spec = node.spec(
        _dump_env(),
        kind=RunKind.START_TASK,
        user_identity={"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
    )
    assert (await run(spec)).exit_code == 0
    env = json.loads((node.root / "startup" / "wd" / "env.json").read_text())
    assert env["AZ_BATCH_TASK_USER"] == "_azbatchtask_start"
    assert env["AZ_BATCH_TASK_USER_IDENTITY"] == "TaskNonAdmin"
    assert env["AZ_BATCH_TASK_DIR"] == env["AZ_BATCH_NODE_STARTUP_DIR"] == str(node.root / "startup")
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(node.root / "startup" / "wd")
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "true"
    assert "AZ_BATCH_JOB_ID" not in env
    assert "AZ_BATCH_TASK_ID" not in env
    assert "AZ_BATCH_ACCOUNT_URL" not in env


async def test_job_preparation_task_gets_no_job_prep_variables(node: Node) -> None:
    prep_dir = node.root / "workitems" / "jobpreparation"
    spec = node.spec(
        _dump_env(),
        kind=RunKind.JOB_PREPARATION,
        task_id="jobpreparation",
        task_dir=prep_dir,
        job_prep_dir=prep_dir,
    )
    assert (await run(spec)).exit_code == 0
    env = json.loads((prep_dir / "wd" / "env.json").read_text())
    assert env["AZ_BATCH_JOB_ID"] == "job-1"
    assert env["AZ_BATCH_TASK_ID"] == "jobpreparation"
    assert "AZ_BATCH_JOB_PREP_DIR" not in env
    assert "AZ_BATCH_JOB_PREP_WORKING_DIR" not in env


async def test_wall_clock_kills_the_whole_process_tree(node: Node) -> None:
    spec = node.spec(
        "/bin/sh -c 'sleep 100 & echo $! > background.pid; sleep 100'",
        max_wall_clock_seconds=0.5,
    )
    started = time.monotonic()
    result = await run(spec)
    assert time.monotonic() - started < 5
    assert result.timed_out
    assert not result.cancelled
    assert result.exit_code == -15  # killed by SIGTERM, reported as Linux nodes do
    assert result.failure_info is not None
    assert result.failure_info["category"] == "servererror"
    assert result.failure_info["code"] == "TaskEnded"
    background = int((spec.task_dir / "wd" / "background.pid").read_text())
    assert wait_gone(background)


async def test_wall_clock_escalates_to_sigkill_when_sigterm_is_ignored(node: Node) -> None:
    spec = node.spec(
        "/bin/sh -c 'trap \"\" TERM; sleep 100 & echo $! > background.pid; sleep 100'",
        max_wall_clock_seconds=0.3,
    )
    started = time.monotonic()
    result = await run(spec, kill_grace_seconds=0.3)
    assert time.monotonic() - started < 5
    assert result.timed_out
    assert result.exit_code == -9
    assert wait_gone(int((spec.task_dir / "wd" / "background.pid").read_text()))


async def test_cancel_kills_the_process_tree(node: Node) -> None:
    spec = node.spec("/bin/sh -c 'sleep 100 & echo $! > background.pid; sleep 100'")
    cancel = asyncio.Event()
    running = asyncio.ensure_future(run(spec, cancel))
    pid_file = spec.task_dir / "wd" / "background.pid"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    cancel.set()
    result = await asyncio.wait_for(running, 5)
    assert result.cancelled
    assert not result.timed_out
    assert result.result == "failure"
    assert wait_gone(int(pid_file.read_text()))


async def test_cancel_before_start_runs_nothing(node: Node) -> None:
    cancel = asyncio.Event()
    cancel.set()
    spec = node.spec("/bin/sh -c 'echo ran > ran.txt'")
    result = await run(spec, cancel)
    assert result.cancelled
    assert result.exit_code is None
    assert not (spec.task_dir / "wd" / "ran.txt").exists()


async def test_many_trivial_tasks_run_side_by_side(node: Node) -> None:
    """200 tasks through 16 slots all run, each in its own directory (speed: ``make bench``)."""
    executor = TaskExecutor()
    slots = asyncio.Semaphore(16)

    async def one(index: int) -> TaskRunResult:
        async with slots:
            return await executor.run(
                node.spec("/bin/sh -c 'echo $AZ_BATCH_TASK_ID'", task_id=f"t{index}"), asyncio.Event()
            )

    results = await asyncio.gather(*(one(index) for index in range(200)))
    executor.close()
    assert all(result.exit_code == 0 for result in results)
    outputs = {
        (node.root / "workitems" / f"t{index}" / "stdout.txt").read_text().strip() for index in range(200)
    }
    assert outputs == {f"t{index}" for index in range(200)}
