"""The runner ends every process a run starts, with a cgroup or, without one, by environment marker."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator

import pytest

from airflow_batch_provider.emulator.compute.runner.containment import cgroup_parent
from airflow_batch_provider.emulator.compute.runner.executor import TaskExecutor
from tests.emulator.escapes import Escapes

from .helpers import Node

MODES = [
    pytest.param(True, id="cgroup", marks=pytest.mark.skipif(cgroup_parent() is None, reason="no cgroup v2")),
    pytest.param(False, id="environment-marker"),
]


@pytest.fixture
def escapes() -> Iterator[Escapes]:
    escapes = Escapes()
    yield escapes
    escapes.kill()


@pytest.mark.parametrize("use_cgroups", MODES)
async def test_what_a_task_leaves_running_ends_with_it(
    node: Node, escapes: Escapes, use_cgroups: bool
) -> None:
    executor = TaskExecutor(use_cgroups=use_cgroups)
    try:
        result = await executor.run(node.spec(escapes.command_line(0.5)), asyncio.Event())
    finally:
        executor.close()
    assert result.exit_code == 0
    assert await asyncio.to_thread(escapes.wait_gone) == []


@pytest.mark.parametrize("use_cgroups", MODES)
async def test_the_wall_clock_ends_every_process(node: Node, escapes: Escapes, use_cgroups: bool) -> None:
    executor = TaskExecutor(use_cgroups=use_cgroups, kill_grace_seconds=0.5)
    try:
        result = await executor.run(
            node.spec(escapes.command_line(300), max_wall_clock_seconds=1.5), asyncio.Event()
        )
    finally:
        executor.close()
    assert result.timed_out
    assert await asyncio.to_thread(escapes.wait_gone) == []


@pytest.mark.parametrize("use_cgroups", MODES)
async def test_closing_the_executor_ends_every_process(
    node: Node, escapes: Escapes, use_cgroups: bool
) -> None:
    executor = TaskExecutor(use_cgroups=use_cgroups)
    run = asyncio.ensure_future(executor.run(node.spec(escapes.command_line(300)), asyncio.Event()))
    await asyncio.to_thread(escapes.wait_started)
    await asyncio.to_thread(executor.close)
    assert await asyncio.to_thread(escapes.wait_gone) == []
    await asyncio.wait_for(run, 10)


def test_run_cgroups_are_removed(node: Node) -> None:
    parent = cgroup_parent()
    if parent is None:
        pytest.skip("no cgroup v2 here")
    executor = TaskExecutor()
    try:
        asyncio.run(executor.run(node.spec("true"), asyncio.Event()))
    finally:
        executor.close()
    assert not parent.exists() or [path for path in parent.iterdir() if path.is_dir()] == []


@pytest.mark.skipif(cgroup_parent() is None, reason="no cgroup v2 here")
async def test_the_cgroup_ends_descendants_that_clear_their_environment(node: Node, escapes: Escapes) -> None:
    script = f"env -i sleep {escapes.background} & env -i setsid sleep {escapes.detached} & sleep 0.5"
    executor = TaskExecutor()
    try:
        result = await executor.run(node.spec(f"/bin/sh -c {shlex.quote(script)}"), asyncio.Event())
    finally:
        executor.close()
    assert result.exit_code == 0
    assert await asyncio.to_thread(escapes.wait_gone) == []
