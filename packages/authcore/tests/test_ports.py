"""authcore.testing.ports: ports handed to test servers, never the same one to two test processes."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from authcore.testing import ports
from authcore.testing.ports import BLOCK_SIZE, BLOCKS, free_port, port_block


def test_blocks_are_disjoint_and_below_the_ephemeral_range() -> None:
    blocks = [port_block(worker) for worker in range(BLOCKS)]
    taken: set[int] = set()
    for block in blocks:
        assert len(block) == BLOCK_SIZE
        assert taken.isdisjoint(block)
        taken.update(block)
    assert min(taken) >= 1024
    assert max(taken) < ports._ephemeral_low() or ports._ephemeral_low() - BLOCKS * BLOCK_SIZE < 1024
    assert port_block(BLOCKS) == port_block(0)  # more workers than blocks share them


@pytest.mark.parametrize(
    ("worker", "number"),
    [
        ("", 0),
        ("gw0", 0),
        ("gw1", 1),
        ("gw13", 13),
        ("gw", 0),
        ("gw-1", 0),
        ("gwx", 0),
        ("master", 0),
        ("gw\u0663", 0),  # an Arabic-Indic digit is no worker number
        ("gw" + "9" * 5000, 0),
    ],
)
def test_worker_number(monkeypatch: pytest.MonkeyPatch, worker: str, number: int) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    assert ports._worker_number() == number
    assert port_block() == port_block(number)


def test_ports_come_from_this_process_block_in_turn() -> None:
    handed = [free_port() for _ in range(50)]
    assert len(set(handed)) == 50
    assert all(port in port_block() for port in handed)


def test_a_port_someone_listens_on_is_not_handed_out() -> None:
    with socket.create_server(("127.0.0.1", free_port())) as listener:
        busy = listener.getsockname()[1]
        assert busy not in {free_port() for _ in range(BLOCK_SIZE)}


def test_two_workers_are_handed_different_ports() -> None:
    """Two processes, as pytest-xdist's workers gw0 and gw1: no port in common."""
    code = "from authcore.testing.ports import free_port; print(*(free_port() for _ in range(200)))"
    handed = []
    for worker in ("gw0", "gw1"):
        env = {"PYTEST_XDIST_WORKER": worker, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        handed.append({int(port) for port in out.stdout.split()})
    assert len(handed[0]) == len(handed[1]) == 200
    assert handed[0].isdisjoint(handed[1])
