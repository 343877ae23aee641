"""The test kit's stop_process and kill_process, on real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from authcore.testing.processes import kill_process, stop_process

#: A child that sets its signal handling, says so, and sleeps until it is ended.
CHILD = """
import signal, sys, time
{setup}
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:  # whatever a failing test left running
        if process.poll() is None:
            process.kill()
            process.wait()


def _start(children: list[subprocess.Popen[str]], setup: str = "") -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", CHILD.format(setup=setup)], stdout=subprocess.PIPE, text=True)
    children.append(process)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def test_a_process_that_heeds_its_signal_exits_by_it(children: list[subprocess.Popen[str]]) -> None:
    process = _start(children)
    assert stop_process(process) == -signal.SIGTERM
    assert process.returncode == -signal.SIGTERM


def test_a_process_that_ignores_its_signal_is_killed_after_the_bound(children: list[subprocess.Popen[str]]) -> None:
    process = _start(children, "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    assert stop_process(process, bound=0.3) == -signal.SIGKILL


def test_a_paused_process_is_resumed_so_it_stops_cleanly(children: list[subprocess.Popen[str]]) -> None:
    # Without SIGCONT the SIGTERM would stay pending and only the SIGKILL after the bound end it.
    process = _start(children)
    os.kill(process.pid, signal.SIGSTOP)
    assert stop_process(process, bound=30) == -signal.SIGTERM


def test_the_shutdown_signal_is_the_callers(children: list[subprocess.Popen[str]]) -> None:
    process = _start(children, "signal.signal(signal.SIGINT, lambda *_: sys.exit(3))")
    assert stop_process(process, shutdown=signal.SIGINT) == 3


def test_an_exited_process_is_only_reaped_and_a_second_stop_does_nothing(
    children: list[subprocess.Popen[str]],
) -> None:
    process = _start(children, 'print("ready", flush=True)\nsys.exit(7)')
    assert process.wait(30) == 7
    assert stop_process(process) == 7
    assert stop_process(process) == 7
    assert kill_process(process) == 7


def test_kill_process_ends_a_process_that_ignores_every_polite_signal(children: list[subprocess.Popen[str]]) -> None:
    setup = "\n".join(f"signal.signal(signal.{name}, signal.SIG_IGN)" for name in ("SIGTERM", "SIGINT", "SIGHUP"))
    process = _start(children, setup)
    assert kill_process(process) == -signal.SIGKILL
    assert process.poll() == -signal.SIGKILL
