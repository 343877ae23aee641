"""``authcore serve`` as a real process on a free loopback port, for deployment tests.

:func:`start_service` runs the installed ``authcore`` command (else ``python -m authcore.cli``)
with a configuration file, waits until ``/healthz`` answers, and returns a
:class:`ServiceProcess` that is stopped by pid (``stop``: SIGTERM, then SIGKILL; ``kill``: a
crash). Output goes to a log file beside the configuration, never to a pipe nobody reads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .processes import kill_process, stop_process
from .servers import free_port

__all__ = ["ServiceProcess", "authcore_command", "start_service"]

#: A bound on waiting for the service to come up: not a timed assertion.
_STARTUP_BOUND = 60.0


def authcore_command() -> list[str]:
    """The installed ``authcore`` command, else this interpreter running ``authcore.cli``."""
    found = shutil.which("authcore", path=str(Path(sys.executable).parent)) or shutil.which("authcore")
    return [found] if found else [sys.executable, "-m", "authcore.cli"]


class ServiceProcess:
    """One running ``authcore serve``: its ``url``, ``pid`` and ``log`` file."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int | None:
        """The process id while the service runs, else None."""
        return self.process.pid if self.running else None

    @property
    def running(self) -> bool:
        """Whether the process has not exited (paused counts as running)."""
        return self.process.poll() is None

    def log_text(self) -> str:
        """What the service wrote so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; idempotent."""
        stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash, with no shutdown of its own."""
        kill_process(self.process)

    def __repr__(self) -> str:
        return f"<ServiceProcess pid={self.pid} url={self.url}>"


def start_service(
    config: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> ServiceProcess:
    """Start ``authcore serve --config <config>`` on 127.0.0.1 and wait until it answers.

    *env* replaces the environment (default: this one); *args* are more ``serve`` flags. Raises
    :class:`RuntimeError` with the log's tail when the service exits or does not come up.
    """
    import httpx

    port = port or free_port()
    log = config.with_name(f"{config.stem}-serve-{port}.log")
    command = [*authcore_command(), "serve", "--config", str(config), "--port", str(port), *args]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=dict(env if env is not None else os.environ)
        )
    service = ServiceProcess(process, port, log)
    deadline = time.monotonic() + _STARTUP_BOUND
    while time.monotonic() < deadline:
        if not service.running:
            raise RuntimeError(f"authcore serve exited with {process.returncode}:\n{service.log_text()[-2000:]}")
        try:
            if httpx.get(service.url + "/healthz", timeout=1).status_code == 200:
                return service
        except httpx.TransportError:
            time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"authcore serve did not come up:\n{service.log_text()[-2000:]}")
