"""The Redis store's calls made on an event loop, for code run by :func:`authcore.loop_bridge.run_bridged`.

When an async adapter runs a login or a refresh on its event loop (the store being the only
thing that waits), the store's calls come here instead of going through redis-py's blocking
client: :class:`LoopCalls` awaits them on the running loop through :func:`~authcore.loop_bridge.wait_for`,
or, for a coroutine, directly (:meth:`LoopCalls.ascript`) or sent at once with their checks
collected (:meth:`LoopCalls.script_later` within :func:`~authcore.loop_bridge.collecting`).

Each event loop has one connection (:class:`_Connection`) that carries every call made on it:
a command is written as it comes, and Redis answers in order, so each reply resolves the
oldest waiting call (pipelining without batching; hiredis parses the replies). The same
rules as the blocking client's hold: no retries (a rotation that timed out may have happened),
every call bounded by ``socket_timeout`` (a call that times out closes the connection, and the
calls behind it fail with it: their replies could no longer be told apart), connecting bounded
by ``socket_connect_timeout``, and anything that means "Redis cannot serve now" raised as
:class:`~authcore.errors.SessionStoreUnavailable`, the next call connecting anew.

``redis://`` and ``rediss://`` (the same ``ssl_*`` options as the blocking client: a CA file,
a client certificate, ``ssl_cert_reqs``, ``ssl_check_hostname``, both checks on by default),
and ``redis+sentinel://``: each connection starts by asking the Sentinels, in the URL's order
and each once, which master serves the service (``SENTINEL MASTER``; one marked down, or named
by a Sentinel that sees fewer other Sentinels than ``min_other_sentinels``, does not count), as
the blocking client does. A reply that says this server cannot serve now
(``READONLY`` after a failover, ``LOADING``, a lost authentication) closes the connection, so
the next call connects anew, to the master the Sentinels name then.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from ..errors import SessionStoreUnavailable
from .redis_url import RedisLocation

if TYPE_CHECKING:
    from redis.commands.core import Script

__all__ = ["LoopCalls", "loop_calls_for"]

log = logging.getLogger("authcore.sessions")

# Error replies that mean "this server cannot serve now" (a replica after a failover, a restart
# still loading its file, a lost authentication), as the blocking client's connection errors do.
_UNAVAILABLE_REPLIES = ("READONLY", "LOADING", "NOAUTH", "WRONGPASS", "MASTERDOWN")


def loop_calls_for(location: RedisLocation) -> LoopCalls | None:
    """Calls on the event loop for *location*, or ``None`` where the blocking client stays
    (greenlet or hiredis not installed)."""
    try:
        import greenlet  # noqa: F401  # loop_bridge's
        import hiredis  # noqa: F401
    except ImportError:
        return None
    return LoopCalls(location)


_ReplyError: type[Exception] = Exception  # hiredis's, when it is installed
try:  # this module is imported with the Redis store; the loop calls are used only with hiredis
    from hiredis import ReplyError as _ReplyError

    from ..loop_bridge import check_later, collected, wait_for
except ImportError:  # without hiredis or greenlet, loop_calls_for() says None
    pass


def _unavailable(error: OSError) -> SessionStoreUnavailable:
    log.warning("session store unavailable (%s)", type(error).__name__)
    return SessionStoreUnavailable()


def _reply(take: Callable[[], Any]) -> Any:
    """``take()``, a reply from the loop's connection; a lost or timed-out one is the store's 503."""
    try:
        return take()
    except OSError as exc:  # ConnectionError and TimeoutError (asyncio's too) are OSErrors
        raise _unavailable(exc) from None


async def _areply(sent: Awaitable[Any]) -> Any:
    """:func:`_reply` awaited."""
    try:
        return await sent
    except OSError as exc:
        raise _unavailable(exc) from None


def _evalsha(script: Script, keys: Sequence[str], args: Sequence[str | int]) -> tuple[Any, ...]:
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def _noscript(reply: Any) -> bool:
    """Whether *reply* says Redis does not know the script (restarted, or ``SCRIPT FLUSH``)."""
    return isinstance(reply, _ReplyError) and str(reply).startswith("NOSCRIPT")


def _tls_context(location: RedisLocation) -> ssl.SSLContext | None:
    """The TLS context of a ``rediss`` URL, from the ``ssl_*`` options the blocking client takes alike."""
    if location.scheme != "rediss":
        return None
    options = location.tls
    context = ssl.create_default_context(cafile=_path(options.get("ssl_ca_certs")))
    certfile = _path(options.get("ssl_certfile"))
    if certfile is not None:
        context.load_cert_chain(certfile, _path(options.get("ssl_keyfile")))
    requirement = options.get("ssl_cert_reqs", "required")
    context.check_hostname = requirement != "none" and options.get("ssl_check_hostname", True) is not False
    context.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(
        str(requirement), ssl.CERT_REQUIRED
    )
    return context


def _path(value: str | bool | None) -> str | None:
    return value if isinstance(value, str) and value else None


def _master_address(reply: Any, min_other_sentinels: int = 0) -> tuple[str, int] | None:
    """The address in a Sentinel's ``SENTINEL MASTER`` reply, if it names a master that is up
    and the Sentinel sees at least *min_other_sentinels* others (redis-py's rule)."""
    if not isinstance(reply, list) or len(reply) % 2:
        return None  # an error reply (an unknown service), or not the flat field list
    fields = {_lenient_text(key): _lenient_text(value) for key, value in zip(reply[::2], reply[1::2], strict=True)}
    flags = fields.get("flags", "").split(",")
    if "master" not in flags or "s_down" in flags or "o_down" in flags:
        return None
    if min_other_sentinels and not _at_least(fields.get("num-other-sentinels", ""), min_other_sentinels):
        return None
    try:
        host, port = fields["ip"], int(fields["port"])
    except (KeyError, ValueError):
        return None
    return (host, port) if host and 0 < port < 65536 else None


def _at_least(count: str, wanted: int) -> bool:
    return count.isascii() and count.isdigit() and len(count) < 10 and int(count) >= wanted


def _lenient_text(value: Any) -> str:
    # A Sentinel's reply, from the network: whatever it holds becomes some text (the store's
    # own decoder, redis.py's, is exact and raises on bytes that are not what it stored).
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Connection(asyncio.Protocol):
    """One connection to Redis: commands written in order, replies handed to the waiting calls in order.

    One watchdog timer, not one per call, bounds the calls: it looks at the oldest waiting
    call (the one Redis answers next) and fails them all once that one is *timeout* old.
    Commands given in one loop iteration are written together by a callback it runs next: the
    requests a loop serves at once then cost Redis one read and one wake-up between them, not
    one each (bench_deploy: Redis's CPU per login about halved under 8 concurrent clients).
    The transport writes at once (asyncio's and uvloop's alike, while nothing is queued), so a
    callback scheduled after that one (a login's token signing, ``WebLogin.awaited``) runs
    while Redis works on the commands.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        import hiredis

        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        #: Commands written in this loop iteration, sent together at its end (one system call).
        self._unsent: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport, as asked for

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while self._waiting:
            reply = self._reader.gets()
            if reply is False:
                return
            waiter = self._waiting.popleft()[0]
            if not waiter.done():
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError("connection lost"))

    def fail(self, error: Exception) -> None:
        """Close the connection and fail every waiting call with *error*."""
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.abort()
        while self._waiting:
            waiter = self._waiting.popleft()[0]
            if not waiter.done():
                waiter.set_exception(error)

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Write one packed command; the future of its reply (failed at once if the connection is closed)."""
        assert self._transport is not None
        waiter = self._loop.create_future()
        if self.closed:  # lost between connecting and this call: nothing would ever answer
            waiter.set_exception(ConnectionError("connection lost"))
            return waiter
        now = self._loop.time()
        self._waiting.append((waiter, now))
        if not self._unsent:
            self._loop.call_soon(self._flush)
        self._unsent.append(packed)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(now + self._timeout, self._watch)
        return waiter

    def _flush(self) -> None:
        """Write the commands given in this loop iteration (nothing once the connection is lost)."""
        unsent, self._unsent = self._unsent, []
        if not self.closed and self._transport is not None:
            self._transport.write(b"".join(unsent) if len(unsent) > 1 else unsent[0])

    def _watch(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        due = self._waiting[0][1] + self._timeout
        if self._loop.time() >= due:
            self.fail(TimeoutError("Redis did not answer in time"))
        else:
            self._watchdog = self._loop.call_at(due, self._watch)


class _LoopClient:
    """The calls of one event loop: its connection, made on first use and again after a failure."""

    def __init__(self, location: RedisLocation, loop: asyncio.AbstractEventLoop) -> None:
        import hiredis

        self._location = location
        self._loop = loop
        self._pack = hiredis.pack_command
        self._tls = _tls_context(location)
        self._connection: _Connection | None = None
        #: The connection attempt under way, which every caller meanwhile waits for.
        self._connecting: asyncio.Task[_Connection] | None = None

    def send(self, command: tuple[Any, ...]) -> Awaitable[Any]:
        """Send *command*: its reply, to await (an error reply comes as hiredis's ``ReplyError``)."""
        connection = self._connection
        if connection is None or connection.closed:
            return self._connect_and_send(command)
        return connection.send(self._pack(command))

    async def _connect_and_send(self, command: tuple[Any, ...]) -> Any:
        # One attempt for every caller: if it fails they all fail with it, within one connect
        # timeout, rather than each trying in turn behind the others.
        if self._connecting is None:
            self._connecting = self._loop.create_task(self._connect_bounded())
            self._connecting.add_done_callback(self._connected)
        connection = await asyncio.shield(self._connecting)
        return await connection.send(self._pack(command))

    async def _connect_bounded(self) -> _Connection:
        location = self._location
        address = await self._master() if location.service is not None else location.hosts[0]
        return await asyncio.wait_for(self._connect(*address), location.socket_connect_timeout)

    async def _master(self) -> tuple[str, int]:
        """The master's address, from the first Sentinel that names one that is up (each asked
        once, without a password, every question bounded by the URL's two timeouts)."""
        for host, port in self._location.hosts:
            try:
                address = await self._ask_sentinel(host, port)
            except OSError:  # refused, lost, timed out (asyncio's TimeoutError is one)
                continue
            if address is not None:
                return address
        raise ConnectionError("no Sentinel names a master of the service that is up")

    async def _ask_sentinel(self, host: str, port: int) -> tuple[str, int] | None:
        command: tuple[Any, ...] = ("SENTINEL", "MASTER", self._location.service)
        question = self._pack(command)
        _transport, connection = await asyncio.wait_for(
            self._loop.create_connection(lambda: _Connection(self._loop, self._location.socket_timeout), host, port),
            self._location.socket_connect_timeout,
        )
        try:
            return _master_address(await connection.send(question), self._location.min_other_sentinels)
        finally:
            connection.fail(ConnectionError("the Sentinel's answer was read"))  # closes it

    def _connected(self, attempt: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:  # exception(): retrieved, not logged
            self._connection = attempt.result()

    async def _connect(self, host: str, port: int) -> _Connection:
        timeout = self._location.socket_timeout
        _transport, connection = await self._loop.create_connection(
            lambda: _Connection(self._loop, timeout),
            host,
            port,
            ssl=self._tls,
            server_hostname=host if self._tls else None,
        )
        greeting: list[tuple[Any, ...]] = []
        if self._location.password is not None:
            user = self._location.username
            greeting.append(("AUTH", user, self._location.password) if user else ("AUTH", self._location.password))
        if self._location.db:
            greeting.append(("SELECT", self._location.db))
        try:
            replies = [await connection.send(self._pack(command)) for command in greeting]
        except BaseException:  # timed out (cancelled) or lost: this connection is nobody's
            connection.fail(ConnectionError("the connection was not set up"))
            raise
        if any(isinstance(reply, _ReplyError) for reply in replies):
            connection.fail(ConnectionError("refused"))
            raise ConnectionError("Redis refused the connection's authentication or database")
        return connection

    def drop(self, error: Exception) -> None:
        """Close the connection (on the loop): its waiting calls fail with *error*; the next connects anew."""
        if self._connection is not None:
            self._connection.fail(error)

    def close(self) -> None:
        """Close the connection (from any thread): its waiting calls fail."""
        connection = self._connection
        if connection is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(connection.fail, ConnectionError("the session store is closed"))


class LoopCalls:
    """The store's calls on whichever event loop runs the bridged code: a client per loop."""

    def __init__(self, location: RedisLocation) -> None:
        self._location = location
        self._clients: WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = WeakKeyDictionary()
        self._lock = threading.Lock()

    def command(self, *command: Any) -> Any:
        """Run one command from bridged code; its reply, raw (bytes, integers, lists, ``None``)."""
        return self._checked(self._call(command))

    def script(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run a registered script by its digest, sending its text when Redis does not know it yet."""
        return self._known(script, keys, args, self._call(_evalsha(script, keys, args)))

    async def ascript(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """:meth:`script` awaited by a coroutine on the loop, without the bridge (the store's
        ``arotate``): its switches cost a refresh more CPU than the round trip's own work."""
        return await self._aknown(script, keys, args, self._client().send(_evalsha(script, keys, args)))

    def script_later(
        self, script: Script, keys: Sequence[str], args: Sequence[str | int], check: Callable[[Any], None]
    ) -> None:
        """:meth:`script` sent now, its reply passed to *check* later: when bridged code next
        waits (:func:`~authcore.loop_bridge.check_later`), or when the coroutine's
        ``async with collecting():`` block that makes the call ends (:class:`~authcore.loop_bridge.Sent`)."""
        sent = self._client().send(_evalsha(script, keys, args))
        collector = collected()
        if collector is None:

            def checked(done: asyncio.Future[Any]) -> None:
                check(self._known(script, keys, args, _reply(done.result)))

            check_later(sent, checked)
            return

        async def achecked(done: asyncio.Future[Any]) -> None:
            check(await self._aknown(script, keys, args, done))

        collector.add(asyncio.ensure_future(sent), achecked)

    def close(self) -> None:
        """Close every loop's connection."""
        for client in list(self._clients.values()):
            client.close()

    def _client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            with self._lock:  # loops in two threads may share the store
                client = self._clients.setdefault(loop, _LoopClient(self._location, loop))
        return client

    def _call(self, command: tuple[Any, ...]) -> Any:
        return _reply(lambda: wait_for(self._client().send(command)))

    async def _aknown(
        self, script: Script, keys: Sequence[str], args: Sequence[str | int], sent: Awaitable[Any]
    ) -> Any:
        """:meth:`_known` awaited: the reply to EVALSHA *sent*, checked (the text sent on NOSCRIPT)."""
        reply = await _areply(sent)
        if _noscript(reply):
            reply = await _areply(self._client().send(("EVAL", script.script, len(keys), *keys, *args)))
        return self._checked(reply)

    def _known(self, script: Script, keys: Sequence[str], args: Sequence[str | int], reply: Any) -> Any:
        """*reply* to EVALSHA, checked; the script's text sent first if Redis did not know it (NOSCRIPT)."""
        if _noscript(reply):
            reply = self._call(("EVAL", script.script, len(keys), *keys, *args))
        return self._checked(reply)

    def _checked(self, reply: Any) -> Any:
        if not isinstance(reply, _ReplyError):
            return reply
        text = str(reply)
        if text.startswith(_UNAVAILABLE_REPLIES):
            log.warning("session store unavailable (%s)", text.split(" ", 1)[0])
            # This server cannot serve now (a replica since a failover, loading, a lost
            # password): the next call connects anew, through the Sentinels when there are some.
            self._client().drop(ConnectionError(text.split(" ", 1)[0]))
            raise SessionStoreUnavailable()
        from redis.exceptions import ResponseError

        raise ResponseError(text)  # as the blocking client raises it: a defect, not an outage
