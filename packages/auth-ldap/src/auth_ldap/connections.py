"""Connections: server failover with back-off, and small thread-safe pools of reused connections.

ldap3 connections are not shared between threads here: a pool hands each connection to
one thread at a time. A connection that fails is thrown away; a pooled connection found
dead (a server restarted) is replaced by a fresh one at once, so the host application
never needs a restart after the directory comes back.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from ldap3 import ANONYMOUS, NONE, SIMPLE, SYNC, Connection, Server, Tls  # type: ignore[import-untyped,unused-ignore]
from ldap3.core.exceptions import LDAPCommunicationError, LDAPExceptionError, LDAPStartTLSError  # type: ignore[import-untyped,unused-ignore]

from authcore import ProviderUnavailable

from .config import LdapConfig

__all__ = [
    "ServerSet",
    "ConnectionPool",
    "Pooled",
    "ServerFailure",
    "BindFailed",
    "server_failure",
    "failure_reason",
]

log = logging.getLogger("auth_ldap")

T = TypeVar("T")

#: LDAP result codes that mean "this server cannot serve now": busy, unavailable, unwillingToPerform is not one.
_SERVER_DOWN_RESULTS = frozenset({51, 52, 80})


class ServerFailure(Exception):
    """A server did not answer (closed, refused, timed out, TLS failed) or said it is unavailable."""

    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.timeout = timeout


class BindFailed(Exception):
    """A service account's bind was refused (wrong configured password, say); *code* is the LDAP result."""

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


def failure_reason(failure: BaseException) -> str:
    """A short, password-free reason for a health report: ``connection refused``, ``timed out``, …"""
    if isinstance(failure, BindFailed):
        if failure.code == 49:
            return "invalid credentials for the service account"
        return f"the directory refused the service account's bind (result {failure.code})"
    text = str(failure)
    lowered = text.lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("certificate verify failed", "TLS certificate verification failed"),
        ("no such file", "no such socket"),
        ("name or service not known", "unknown host name"),
    ):
        if needle in lowered and not lowered.startswith("starttls"):
            return reason
    return text[:200]


def server_failure(exc: BaseException) -> ServerFailure:
    """A :class:`ServerFailure` describing *exc* (type and message: never credentials)."""
    text = str(exc)
    timeout = "timed out" in text or isinstance(exc, socket.timeout | TimeoutError)
    return ServerFailure(f"{type(exc).__name__}: {text[:300]}", timeout=timeout)


def check_result(conn: Connection) -> None:
    """Raise :class:`ServerFailure` if the last result says the server is busy or unavailable."""
    result = conn.result or {}
    if result.get("result") in _SERVER_DOWN_RESULTS:
        raise ServerFailure(f"server answered {result.get('description')}")


@dataclass
class Pooled:
    """A connection with the index of the server it talks to."""

    conn: Connection
    server: int
    opened: float
    reused: bool = False


class ServerSet:
    """The configured servers in order, with a back-off for those that just failed."""

    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        tls: Tls | None = None
        uris = config.uri
        if config.start_tls or any(u.lower().startswith("ldaps:") for u in uris):
            tls = Tls(
                validate=ssl.CERT_REQUIRED if config.tls_verify else ssl.CERT_NONE,
                ca_certs_file=str(config.ca_file) if config.ca_file is not None else None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.uris = uris
        self._tls = tls
        self.servers: list[Server] = [self._make_server(uri) for uri in uris]
        self._failed_until = [0.0] * len(self.servers)
        self._lock = threading.Lock()

    def _make_server(self, uri: str) -> Server:
        parts = urlsplit(uri)
        if parts.scheme.lower() == "ldapi":  # a local socket: ldap3 reads the path from the URI itself
            return Server(uri, get_info=NONE, connect_timeout=self.config.connect_timeout)
        use_ssl = parts.scheme.lower() == "ldaps"
        return Server(
            parts.hostname or "",
            port=parts.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            tls=self._tls,
            get_info=NONE,
            connect_timeout=self.config.connect_timeout,
        )

    def mark_failed(self, index: int, reason: str) -> None:
        """Skip server *index* for ``failure_backoff`` seconds while others are available."""
        with self._lock:
            self._failed_until[index] = time.monotonic() + self.config.failure_backoff
        log.warning("LDAP server %s failed: %s", self.uris[index], reason)

    def mark_ok(self, index: int) -> None:
        """Server *index* answered."""
        if self._failed_until[index]:
            with self._lock:
                self._failed_until[index] = 0.0

    def in_backoff(self, index: int) -> bool:
        """Whether server *index* failed less than ``failure_backoff`` seconds ago."""
        return self._failed_until[index] > time.monotonic()

    def order(self, exclude: set[int]) -> list[int]:
        """Servers to try, in configured order: those not in back-off first, then the others."""
        candidates = [i for i in range(len(self.servers)) if i not in exclude]
        fresh = [i for i in candidates if not self.in_backoff(i)]
        return fresh + [i for i in candidates if i not in fresh]

    def preferred(self) -> int:
        """The first server not in back-off (0 if all are)."""
        for index in range(len(self.servers)):
            if not self.in_backoff(index):
                return index
        return 0

    def connect(self, index: int, user: str | None, password: str | None) -> Connection:
        """Open (and StartTLS, and bind if *user*) a connection to server *index*.

        Raises :class:`ServerFailure` when the server cannot be used, :class:`BindFailed`
        when it refuses the account.
        """
        # A fresh Server object per connection: ldap3 remembers failed addresses on a Server for
        # minutes, which would keep a restarted slapd "down"; our own back-off decides instead.
        conn = Connection(
            self._make_server(self.uris[index]),
            user=user,
            password=password,
            authentication=SIMPLE if user else ANONYMOUS,
            client_strategy=SYNC,
            auto_bind="NONE",
            auto_referrals=False,
            receive_timeout=None,  # set on the socket below: ldap3 packs it as whole seconds for SO_RCVTIMEO
            raise_exceptions=False,
            return_empty_attributes=False,
        )
        try:
            conn.open(read_server_info=False)
            sock = conn.socket
            if sock is not None:
                sock.settimeout(self.config.timeout)  # every later receive waits at most this long
                if sock.family != socket.AF_UNIX:
                    # No Nagle: without it the first request after a TLS handshake stalls ~40 ms.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start_tls = self.config.start_tls and not conn.server.ssl and not conn.server.ipc
            if start_tls and not conn.start_tls(read_server_info=False):
                raise ServerFailure(f"StartTLS refused: {(conn.result or {}).get('description')}")
            if user:
                ok = conn.bind(read_server_info=False)
                check_result(conn)
                if not ok:
                    result = conn.result or {}
                    raise BindFailed(
                        f"the directory refused the bind of {user!r}: {result.get('description')}",
                        code=result.get("result"),
                    )
        except (LDAPCommunicationError, LDAPStartTLSError, LDAPExceptionError, OSError, ssl.SSLError) as exc:
            _close(conn)
            raise server_failure(exc) from None
        except BaseException:
            _close(conn)
            raise
        finally:
            conn.password = None  # never kept on the object (its repr would show it)
        return conn


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # already broken: nothing to tell anyone
        try:
            if conn.socket is not None:
                conn.socket.close()
        except Exception:
            pass


class ConnectionPool:
    """Reused connections to the servers of a :class:`ServerSet`, bound as one account (or unbound).

    :meth:`run` hands a connection to a function; communication failures are retried on
    a fresh connection to the same server (a stale pooled connection) or the next server.
    """

    def __init__(
        self,
        servers: ServerSet,
        *,
        user: str | None = None,
        password: Callable[[], str] | None = None,
        size: int = 8,
        name: str = "pool",
    ) -> None:
        self.servers = servers
        self._user = user
        self._password = password
        self._size = size
        self.name = name
        self._idle: list[Pooled] = []
        self._lock = threading.Lock()
        self._closed = False

    def _take(self, exclude: set[int]) -> Pooled | None:
        preferred = self.servers.preferred()
        backoff = self.servers.config.failure_backoff
        with self._lock:
            while self._idle:
                item = self._idle.pop()
                if item.server in exclude:
                    _close(item.conn)
                    continue
                # Fail back: a connection to a later server is dropped once an earlier one is usable again.
                if item.server > preferred and time.monotonic() - item.opened > backoff:
                    _close(item.conn)
                    continue
                item.reused = True
                return item
        return None

    def _open(self, exclude: set[int]) -> Pooled:
        order = self.servers.order(exclude)
        reasons: list[str] = []
        for index in order:
            try:
                conn = self.servers.connect(index, self._user, self._password() if self._password else None)
            except ServerFailure as failure:
                self.servers.mark_failed(index, str(failure))
                exclude.add(index)
                reasons.append(self.servers.uris[index])
                continue
            except BindFailed as exc:
                log.error("LDAP %s: %s", self.name, exc)
                raise ProviderUnavailable("the directory refused the service account") from None
            self.servers.mark_ok(index)
            return Pooled(conn, index, time.monotonic())
        raise ProviderUnavailable(f"no LDAP server answered (tried {len(reasons)} of {len(self.servers.uris)})")

    def _release(self, item: Pooled) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(item)
                return
        _close(item.conn)

    def _drop_server(self, index: int) -> None:
        with self._lock:
            stale = [i for i in self._idle if i.server == index]
            self._idle = [i for i in self._idle if i.server != index]
        for item in stale:
            _close(item.conn)

    def run(self, operation: Callable[[Connection], T]) -> T:
        """Call *operation* with a connection; retry on communication failures; return its result.

        *operation* raises :class:`ServerFailure` (or lets ldap3's communication errors out) when
        the server did not serve; anything else it raises passes through, the connection is kept.
        """
        exclude: set[int] = set()
        while True:
            item = self._take(exclude) or self._open(exclude)
            try:
                result = operation(item.conn)
            except (ServerFailure, LDAPCommunicationError, OSError) as exc:
                failure = exc if isinstance(exc, ServerFailure) else server_failure(exc)
                _close(item.conn)
                self._drop_server(item.server)
                if item.reused and not failure.timeout:
                    continue  # a stale connection (server restarted): once more on a fresh one
                self.servers.mark_failed(item.server, str(failure))
                exclude.add(item.server)
                if len(exclude) >= len(self.servers.uris):
                    raise ProviderUnavailable("no LDAP server answered") from None
                continue
            except BaseException:
                _close(item.conn)
                raise
            self.servers.mark_ok(item.server)
            self._release(item)
            return result

    def close(self) -> None:
        """Close every idle connection; later releases close theirs."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for item in idle:
            _close(item.conn)

    def __repr__(self) -> str:
        return f"<ConnectionPool {self.name} idle={len(self._idle)}>"
