"""A real Redis for tests: Debian's ``redis-server`` on a free loopback port, stopped by its pid.

:func:`start_redis` starts one with its data in a directory of the test's (append-only
file on, fsync on every write, no RDB snapshots), waits until it answers ``PING``, and
returns a :class:`RedisServer` that can be stopped, restarted on the same port and
directory (the AOF is read back: what was written survives), killed as in a crash, and
paused (``SIGSTOP``) to play a Redis too slow to answer. A missing ``redis-server`` is an
error that says what to install: tests that need Redis fail, never skip.

Only the standard library here: the readiness check speaks RESP over a plain socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Final
from urllib.parse import quote

from .processes import kill_process, stop_process
from .servers import free_port
from .tls import TlsFiles

__all__ = ["REDIS_SERVER", "RedisServer", "SentinelServer", "start_redis", "start_sentinel"]

#: The server binary: Debian's ``redis-server`` package (``AUTHCORE_REDIS_SERVER`` overrides the path).
REDIS_SERVER: Final = os.environ.get("AUTHCORE_REDIS_SERVER", "/usr/bin/redis-server")
#: A bound on waiting for the server to answer (AOF loading included): not a timed assertion.
_STARTUP_BOUND: Final = 30.0


class RedisServer:
    """One throwaway ``redis-server``: a port on 127.0.0.1 and a data directory, both kept across restarts."""

    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        appendonly: bool,
        password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.directory = directory
        self.port = port
        self.appendonly = appendonly
        self._password = password
        self.tls = tls
        #: The TLS port (``tls`` given), beside the plain one, which the readiness check and the fault tests use.
        self.tls_port = free_port() if tls is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, pid={self.pid}, running={self.running})"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``, with ``:password@`` when the server requires one."""
        credentials = f":{quote(self._password, safe='')}@" if self._password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    @property
    def tls_url(self) -> str:
        """``rediss://127.0.0.1:<tls port>/0?ssl_ca_certs=<the test CA>`` (with the password, if any)."""
        if self.tls is None or self.tls_port is None:
            raise RuntimeError("this redis-server was started without tls=")
        credentials = f":{quote(self._password, safe='')}@" if self._password else ""
        ca_file = quote(str(self.tls.ca_file), safe="/")
        return f"rediss://{credentials}127.0.0.1:{self.tls_port}/0?ssl_ca_certs={ca_file}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._process.pid if self._process is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (paused counts as alive)."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_file(self) -> Path:
        """Where the server writes its log."""
        return self.directory / "redis.log"

    def start(self) -> None:
        """Start the server (again) on its port and directory and wait until it answers PING."""
        if self.running:
            raise RuntimeError("redis-server is running already")
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError(
                f"{REDIS_SERVER} is missing: apt-get install redis-server (Redis tests are never skipped)"
            )
        self._process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._paused = False
        deadline = time.monotonic() + _STARTUP_BOUND
        while not _answers_ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else "(no log)"
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{tail}")
            time.sleep(0.02)

    def _command(self) -> list[str]:
        command = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--logfile", str(self.log_file),
        ]  # fmt: skip
        if self._password:
            command += ["--requirepass", self._password]
        if self.tls is not None:
            command += [
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(self.tls.certificate),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca_file),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        return command

    def stop(self) -> None:
        """SIGTERM the server by its pid (resuming it first if paused), SIGKILL if it lingers, and reap it."""
        process, self._process = self._process, None
        self._paused = False
        if process is not None:
            stop_process(process)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: no shutdown, only what was fsynced survives."""
        process, self._process = self._process, None
        if process is not None:
            kill_process(process)
        self._paused = False

    def restart(self) -> None:
        """Stop and start again on the same port and directory (the AOF is reloaded)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections still open, nothing answered, until :meth:`resume`."""
        if self._process is None or not self.running:
            raise RuntimeError("redis-server is not running")
        os.kill(self._process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._process is not None and self._paused:
            os.kill(self._process.pid, signal.SIGCONT)
            self._paused = False


class SentinelServer(RedisServer):
    """``redis-server --sentinel`` watching one :class:`RedisServer` as the master of *service*."""

    def __init__(self, directory: Path, port: int, master: RedisServer, service: str) -> None:
        super().__init__(directory, port, appendonly=False)
        self.master = master
        self.service = service

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<port>/<service>/0`` (with the master's password, if any)."""
        credentials = f":{quote(self.master._password, safe='')}@" if self.master._password else ""
        return f"redis+sentinel://{credentials}127.0.0.1:{self.port}/{self.service}/0"

    def _command(self) -> list[str]:
        config = self.directory / "sentinel.conf"
        if not config.exists():  # Sentinel rewrites its file: a restart keeps what it learnt
            lines = [
                f"port {self.port}",
                "bind 127.0.0.1",
                f"dir {self.directory}",
                f"logfile {self.log_file}",
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1",
            ]
            if self.master._password:
                lines.append(f"sentinel auth-pass {self.service} {self.master._password}")
            config.write_text("\n".join(lines) + "\n")
            config.chmod(0o600)
        return [REDIS_SERVER, str(config), "--sentinel"]


def start_sentinel(
    directory: str | os.PathLike[str], master: RedisServer, *, service: str = "mymaster"
) -> SentinelServer:
    """Start a Sentinel on a free loopback port that names *master* the master of *service*."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    server = SentinelServer(path, free_port(), master, service)
    server.start()
    return server


def _answers_ping(port: int) -> bool:
    """Whether a Redis on *port* answers PING (with PONG, or NOAUTH when it wants a password),
    not -LOADING while it reads its AOF."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def start_redis(
    directory: str | os.PathLike[str],
    *,
    appendonly: bool = True,
    password: str | None = None,
    tls: TlsFiles | None = None,
) -> RedisServer:
    """Start ``redis-server`` on a free loopback port with its data in *directory* (created if missing).

    *password* makes the server require it (``requirepass``); :attr:`RedisServer.url` then carries it.
    *tls* (from :func:`~authcore.testing.tls.make_test_ca`) opens a TLS port beside the plain one,
    served with that certificate: :attr:`RedisServer.tls_url`.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    server = RedisServer(path, free_port(), appendonly=appendonly, password=password, tls=tls)
    server.start()
    return server
