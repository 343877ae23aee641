"""A real load balancer for tests: Debian's ``haproxy`` in front of several ``authcore serve``.

:func:`start_haproxy` writes a configuration file in a directory of the test's, starts
``haproxy -f <file> -db`` (in the foreground, a child process stopped by its pid) on a free
loopback port, and returns a :class:`HAProxy` once every backend is marked up. Health checks
hit ``/healthz`` every 200 ms, so a killed instance is marked down within a fraction of a
second; until then a request that cannot connect is retried on another server (``option
redispatch``), so a crash costs no request. A second loopback port serves HAProxy's statistics
page, read by :meth:`HAProxy.server_states`. A missing ``haproxy`` is an error that says what
to install: tests that need it fail, never skip.

:func:`start_deployment` puts it together as docs/deploy.md describes: one Redis, several
``authcore serve`` started with the same configuration file, HAProxy in front.

Only the standard library here (the statistics are fetched with :mod:`urllib`).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from .processes import stop_process
from .redis_server import RedisServer, start_redis
from .servers import free_port
from .service_process import ServiceProcess, start_service

__all__ = ["HAPROXY", "Deployment", "HAProxy", "start_deployment", "start_haproxy", "deployment_config"]

#: The program: Debian's ``haproxy`` package (``AUTHCORE_HAPROXY`` overrides the path).
HAPROXY: Final = os.environ.get("AUTHCORE_HAPROXY", "/usr/sbin/haproxy")
#: A bound on waiting for HAProxy to listen and mark its backends up: not a timed assertion.
_STARTUP_BOUND: Final = 30.0
#: The backend's name in the configuration and in the statistics.
BACKEND: Final = "authcore"

Balance = Literal["roundrobin", "leastconn", "first", "source"]

# Short enough that a dead backend is noticed in well under a second, long enough that a
# busy two-core test machine does not flap: 2 failed checks 200 ms apart mark a server down,
# 1 good one brings it back. Client and server timeouts bound every request (never a hang).
_CONFIG: Final = """\
global
    maxconn 2000

defaults
    mode http
    option forwardfor
    option redispatch 1
    retries 3
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout check 1s
    timeout http-request 10s

frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
    stats refresh 0

frontend entry
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance {balance}
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 200ms fastinter 200ms downinter 200ms fall 2 rise 1
{servers}
"""


class HAProxy:
    """One running ``haproxy``: its :attr:`url`, :attr:`pid`, configuration and log files."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, stats_port: int, directory: Path, servers: dict[str, str]
    ) -> None:
        self.process = process
        #: Server name in the configuration (``s0``, ``s1``, ...) → its address (``127.0.0.1:port``).
        self.servers = servers
        self.port = port
        self.stats_port = stats_port
        self.directory = directory
        self.url = f"http://127.0.0.1:{port}"

    def __repr__(self) -> str:
        return f"HAProxy(url={self.url!r}, pid={self.pid}, running={self.running})"

    @property
    def pid(self) -> int | None:
        """The process id while HAProxy runs, else None."""
        return self.process.pid if self.running else None

    @property
    def config_file(self) -> Path:
        """The configuration written for this run."""
        return self.directory / "haproxy.cfg"

    @property
    def log_file(self) -> Path:
        """What HAProxy wrote on its standard output and error."""
        return self.directory / "haproxy.log"

    @property
    def running(self) -> bool:
        """Whether the process has not exited (paused counts as running)."""
        return self.process.poll() is None

    def log_text(self) -> str:
        """HAProxy's output so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _server_rows(self) -> dict[str, dict[str, str]]:
        """Each backend server's address → its row of the statistics (CSV)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5) as answer:
            text = answer.read().decode()
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return {
            self.servers[row["svname"]]: row
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] in self.servers
        }

    def server_states(self) -> dict[str, str]:
        """Each backend server's address (``127.0.0.1:port``) → its check status (``UP``, ``DOWN``, ...)."""
        return {address: row["status"].split()[0] for address, row in self._server_rows().items()}

    def idle_connections(self) -> dict[str, int]:
        """Each backend server's address → the kept-alive connections HAProxy holds to it, idle."""
        return {
            address: int(row["idle_conn_cur"] or 0) + int(row["safe_conn_cur"] or 0)
            for address, row in self._server_rows().items()
        }

    def wait_for_states(self, wanted: dict[str, str], bound: float = _STARTUP_BOUND) -> None:
        """Poll the statistics until each server in *wanted* (address → state) has that state.

        *bound* caps the wait (a failure, not a timed assertion): raises :class:`RuntimeError`
        with the states seen last.
        """
        self._wait_for(self.server_states, lambda states: all(states.get(a) == s for a, s in wanted.items()), bound)

    def wait_for_no_idle_connection(self, address: str, bound: float = _STARTUP_BOUND) -> None:
        """Poll the statistics until HAProxy holds no idle connection to *address* (a server that was
        killed: HAProxy drops them once it reads their resets). Raises :class:`RuntimeError` past *bound*."""
        self._wait_for(self.idle_connections, lambda idle: idle.get(address, 0) == 0, bound)

    @staticmethod
    def _wait_for(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], bound: float) -> None:
        deadline = time.monotonic() + bound
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = read()
            if done(seen):
                return
            time.sleep(0.05)
        raise RuntimeError(f"haproxy's servers are {seen}, not as waited for")

    def stop(self) -> None:
        """SIGTERM by pid, SIGKILL if it lingers; idempotent."""
        stop_process(self.process)


def _address(url: str) -> str:
    """``http://127.0.0.1:8000`` → ``127.0.0.1:8000``; refuses anything but a plain http host:port."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port or parts.path not in ("", "/"):
        raise ValueError(f"a backend is http://host:port, not {url!r}")
    return f"{parts.hostname}:{parts.port}"


def start_haproxy(
    directory: str | os.PathLike[str], backends: Sequence[str], *, balance: Balance = "roundrobin"
) -> HAProxy:
    """Start HAProxy on a free loopback port in front of *backends* (``http://host:port`` URLs).

    The configuration and log go to *directory* (created if missing). Returns once HAProxy
    listens and marks every backend up; raises :class:`RuntimeError` with its log otherwise,
    and when ``haproxy`` is not installed.
    """
    if not backends:
        raise ValueError("start_haproxy needs at least one backend")
    if not Path(HAPROXY).exists():
        raise RuntimeError(f"{HAPROXY} is missing: apt-get install haproxy (load-balancer tests are never skipped)")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    addresses = [_address(url) for url in backends]
    port, stats_port = free_port(), free_port()
    names = {f"s{index}": address for index, address in enumerate(addresses)}
    servers = "\n".join(f"    server {name} {address} check" for name, address in names.items())
    config = path / "haproxy.cfg"
    config.write_text(
        _CONFIG.format(port=port, stats_port=stats_port, backend=BACKEND, balance=balance, servers=servers)
    )
    check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(config)], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}")
    with (path / "haproxy.log").open("ab") as log:
        process = subprocess.Popen(
            [HAPROXY, "-f", str(config), "-db"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    proxy = HAProxy(process, port, stats_port, path, names)
    try:
        _wait_until_listening(proxy)
        proxy.wait_for_states(dict.fromkeys(addresses, "UP"))
    except BaseException:
        proxy.stop()
        raise
    return proxy


def _wait_until_listening(proxy: HAProxy) -> None:
    deadline = time.monotonic() + _STARTUP_BOUND
    while time.monotonic() < deadline:
        if not proxy.running:
            raise RuntimeError(f"haproxy exited with {proxy.process.returncode}:\n{proxy.log_text()[-2000:]}")
        try:
            proxy.server_states()
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.05)
    raise RuntimeError(f"haproxy did not come up:\n{proxy.log_text()[-2000:]}")


@dataclass
class Deployment:
    """One Redis, ``authcore serve`` instances sharing one configuration file, and HAProxy in front."""

    redis: RedisServer
    config: Path
    instances: list[ServiceProcess]
    proxy: HAProxy
    env: dict[str, str] | None

    def urls(self) -> list[str]:
        """Each instance's own base URL (bypassing the balancer)."""
        return [instance.url for instance in self.instances]

    def replace(self, index: int) -> None:
        """Start instance *index* again on its port (after a kill, say) and wait until HAProxy marks it up."""
        self.instances[index].stop()
        port = self.instances[index].port
        self.instances[index] = start_service(self.config, port=port, env=self.env)
        self.proxy.wait_for_states({f"127.0.0.1:{port}": "UP"})

    def stop(self) -> None:
        """Stop HAProxy, the instances and Redis, each by its pid."""
        self.proxy.stop()
        for instance in self.instances:
            instance.stop()
        self.redis.stop()


def deployment_config(store: str, secret: str = "deployment-test-secret-0123456789-abcdefghijklm") -> str:
    """The YAML every instance of a test deployment reads: the dummy provider, sessions in *store*,
    one fixed *secret* (so every instance signs and checks alike), no cookie sessions."""
    return f"""\
tokens:
  secret: "{secret}"
sessions:
  store: {store}
providers:
  - name: dummy
    type: dummy
web:
  cookie_session: false
"""


def start_deployment(
    directory: str | os.PathLike[str],
    config: Callable[[str], str] = deployment_config,
    *,
    instances: int = 3,
    env: Mapping[str, str] | None = None,
) -> Deployment:
    """Start Redis, *instances* ``authcore serve`` and HAProxy (round robin), with files under *directory*.

    *config* turns the Redis URL into the YAML text of the one configuration file every instance
    reads (written ``0600``: it may hold ``tokens.secret``). *env* is the instances' environment.
    On a failure, whatever was started is stopped again.
    """
    path = Path(directory)
    redis = start_redis(path / "redis")
    started: list[ServiceProcess] = []
    try:
        config_file = path / "authcore.yml"
        config_file.write_text(config(redis.url))
        config_file.chmod(0o600)
        environment = dict(env) if env is not None else None
        for _ in range(instances):
            started.append(start_service(config_file, env=environment))
        proxy = start_haproxy(path / "haproxy", [instance.url for instance in started])
    except BaseException:
        for instance in started:
            instance.stop()
        redis.stop()
        raise
    return Deployment(redis, config_file, started, proxy, environment)
