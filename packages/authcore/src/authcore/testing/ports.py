"""Loopback ports for test servers that parallel test processes do not hand out twice.

A port from ``bind(("127.0.0.1", 0))`` is free when the kernel picks it, but the server it is for
binds it a moment later, after the probe is closed: meanwhile another test process (a
pytest-xdist worker, another interpreter's run) may be given the same port by the same kernel
call. :func:`free_port` therefore hands out ports from a block of its own for each xdist worker,
below the kernel's ephemeral range (where ``bind(..., 0)`` and outgoing connections take theirs),
each port in turn from a random start, and only one that binds now. Two workers of one run never
share a block (two runs at once start at random places in theirs); one process reuses a port
only after the rest of its block.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from pathlib import Path

__all__ = ["free_port", "port_block"]

#: Ports in each worker's block, and blocks below the ephemeral range (more workers share them).
BLOCK_SIZE = 1500
BLOCKS = 8
#: Linux's default ephemeral range starts here; read from /proc where it exists.
_DEFAULT_EPHEMERAL_LOW = 32768
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _worker_number() -> int:
    """This process's pytest-xdist worker number (``PYTEST_XDIST_WORKER=gw3`` is 3); 0 without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = worker.removeprefix("gw")
    return int(digits) if worker.startswith("gw") and digits.isascii() and digits.isdecimal() and len(digits) < 6 else 0


def port_block(worker: int | None = None) -> range:
    """The ports :func:`free_port` hands out in *worker*'s process (default: this process's)."""
    number = _worker_number() if worker is None else worker
    first = max(1024, _ephemeral_low() - BLOCKS * BLOCK_SIZE)
    start = first + (number % BLOCKS) * BLOCK_SIZE
    return range(start, start + BLOCK_SIZE)


class _Ports:
    """This process's turn through its block (a lock: fixtures of several threads ask at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block: range | None = None
        self._next = 0

    def take(self) -> int:
        with self._lock:
            if self._block is None:
                self._block = port_block()
                self._next = random.randrange(len(self._block))
            for _ in range(len(self._block)):
                port = self._block[self._next % len(self._block)]
                self._next += 1
                if _binds(port):
                    return port
        return _any_port()  # the whole block busy: the kernel's choice, as before


def _binds(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _any_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_PORTS = _Ports()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on now and no other test process is handed."""
    return _PORTS.take()
