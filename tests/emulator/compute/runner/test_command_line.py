"""Command lines split as ``shlex.split`` splits them, in time linear in their length."""

from __future__ import annotations

import shlex
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_batch_provider.emulator.compute.runner.failures import TaskFailure
from airflow_batch_provider.emulator.compute.runner.process import (
    MAX_COMMAND_LINE_BYTES,
    _split,
    split_command_line,
)

# The characters that matter to POSIX quoting, and a few that do not.
_command_lines = st.text(alphabet=st.sampled_from(list(" \t\n\r'\"\\ab$é\x00")), max_size=40)


def _shlex(command_line: str) -> list[str] | str:
    try:
        return shlex.split(command_line)
    except ValueError as err:
        return str(err)


def _ours(command_line: str) -> list[str] | str:
    try:
        return _split(command_line)
    except ValueError as err:
        return str(err)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(_command_lines)
def test_splits_exactly_as_shlex(command_line: str) -> None:
    assert _ours(command_line) == _shlex(command_line)


@pytest.mark.parametrize(
    "command_line",
    [
        "echo " + "a" * (MAX_COMMAND_LINE_BYTES - 5),
        "echo " + "\\a" * (MAX_COMMAND_LINE_BYTES // 2 - 3),
        'echo "' + "\\a" * (MAX_COMMAND_LINE_BYTES // 2 - 4) + '"',
    ],
    ids=["one-long-word", "escapes", "escapes-in-quotes"],
)
def test_a_long_word_at_the_limit_splits_in_linear_time(command_line: str) -> None:
    started = time.thread_time()  # CPU time of this thread: what a busy machine does not inflate
    split_command_line(command_line)
    assert time.thread_time() - started < 2.0  # shlex, quadratic in a word's length, takes minutes


def test_a_command_line_over_the_limit_is_refused_without_splitting() -> None:
    with pytest.raises(TaskFailure, match="longer than the service's limit"):
        split_command_line("a" * (MAX_COMMAND_LINE_BYTES + 1))
