"""Stopping a server the test kit started, by its pid, within a bound.

Every real server of the suites (slapd, redis-server, HAProxy, PostgreSQL, MariaDB, node's
OpenID server, ``authcore serve``) ends the same way: its shutdown signal, a bounded wait for
a clean exit, then SIGKILL, and the child reaped so no zombie keeps its pid. One function
does it, so a server paused by a fault test (SIGSTOP) or one that ignores its signal cannot
leave a fixture hanging or a process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any, Final

__all__ = ["stop_process", "kill_process"]

#: How long a killed process may take to be reaped: SIGKILL cannot be ignored, so this only
#: bounds a process stuck in the kernel (uninterruptible I/O).
_REAP_BOUND: Final = 10.0


def stop_process(
    process: subprocess.Popen[Any], *, shutdown: signal.Signals = signal.SIGTERM, bound: float = 10.0
) -> int | None:
    """Send *shutdown* to *process*, wait up to *bound* seconds, then SIGKILL it; reap it.

    A paused process (SIGSTOP) is resumed first: a stopped process keeps the signal pending and
    would sit out the whole bound. Idempotent: a process that has exited is only reaped.
    Returns its exit status (negative: the signal that ended it), ``None`` if it could not be
    reaped after SIGKILL.
    """
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGCONT)
        os.kill(process.pid, shutdown)
    try:
        return process.wait(bound)
    except subprocess.TimeoutExpired:
        return kill_process(process)


def kill_process(process: subprocess.Popen[Any]) -> int | None:
    """SIGKILL *process*, as a crash would (no shutdown of its own), and reap it.

    Returns its exit status, ``None`` if the kernel has not released it within a bound.
    """
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    try:
        return process.wait(_REAP_BOUND)
    except subprocess.TimeoutExpired:
        return None
