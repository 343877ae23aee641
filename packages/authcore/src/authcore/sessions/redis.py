"""Sessions in Redis, shared by every instance of a service: ``sessions.store: redis://...``.

redis-py is imported when a store is made, never by ``import authcore`` or
``import authcore.sessions`` (install it with ``pip install 'authcore[redis]>=0.2'``). The key
layout and the scripts that keep every multi-key change atomic are in :mod:`.redis_scripts`;
URL parsing is in :mod:`.redis_url`, redis-py's blocking client (and calls held for its next
round trip) in :mod:`.redis_blocking`, the event loop's connection in :mod:`.redis_loop`.

Expiry: every key of a session expires (a Redis TTL) at its absolute end, the later of its
two deadlines (the idle one never passes the absolute one), plus :data:`RETENTION_MARGIN`,
so :meth:`get` and :meth:`peek` still see an ended session for a while; the record's own
times decide whether it is active. TTLs are relative (``PEXPIRE`` with the time left by the
caller's clock), so a clock difference between the service and Redis moves nothing.
:meth:`purge` deletes dead sessions at once (those revoked or past a deadline at ``now``)
with their hashes and index entries; the TTLs would remove them later anyway.

Timeouts bound every call (``socket_timeout``, ``socket_connect_timeout``); a connection
error or timeout is :class:`~authcore.errors.SessionStoreUnavailable` (a ProviderUnavailable, "session store
unavailable", a 503), and the next call reconnects by itself. Calls are not retried: a
rotation that timed out may still have happened on the server, and running it again would
look like refresh-token reuse (the client sees a 503 and the session goes on; a client that
then retries with its old refresh token ends it, as with any lost answer).

Sentinel (``redis+sentinel://``): the URL's credentials are the master's; the Sentinels are
asked without a password. Redis Cluster is not supported: the scripts derive a session's
keys from what they read, which a cluster cannot route.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidToken, SessionStoreUnavailable, TokenExpired
from . import redis_scripts as scripts
from .base import PURGE_EVERY, RefreshTokenReused, SessionRecord, _check_hash, _identity_json
from .held import holding
from .redis_blocking import ScriptCall, connect, send_with_held, unavailable_errors
from .redis_loop import LoopCalls, loop_calls_for
from .redis_shared import RedisSharedState, key_hash
from .redis_url import parse_redis_url

if TYPE_CHECKING:
    from redis.commands.core import Script

__all__ = ["RETENTION_MARGIN", "RedisSessionStore", "key_hash"]

log = logging.getLogger("authcore.sessions")

#: Seconds an ended session's keys outlive its absolute end, so lookups still see it (revoked or expired).
RETENTION_MARGIN: Final = 300.0
#: Sessions one purge script deletes at most; purge() runs batches until none is left.
_PURGE_BATCH: Final = 500
_PEEK_FIELDS: Final = scripts.RECORD_FIELDS[:-1]


def _created(outcome: Any) -> None:
    if outcome != b"ok":
        # As the other stores: a clash of 128/256-bit random values means a caller bug.
        raise ValueError("session id or refresh token hash already exists")


def _ignored(_outcome: Any) -> None:
    pass


def _time(value: float) -> str:
    """A time as the scripts store it: the float's shortest exact text, which compares as the same double."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("session times must be finite")
    return repr(number)


def _text(value: bytes | str | None) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else value.decode("utf-8", "surrogatepass")


def _record(values: Sequence[bytes | str | None], *, identity: bool = True) -> SessionRecord:
    """A record from the RECORD_FIELDS values of a script or HMGET reply."""
    sid, login, provider, created, last, idle, absolute, revoked = (_text(v) for v in values[:8])
    snapshot: dict[str, Any] = json.loads(_text(values[8])) if identity else {}
    return SessionRecord(
        session_id=sid,
        login=login,
        provider=provider,
        identity=snapshot,
        created_at=float(created),
        last_used_at=float(last),
        idle_expires_at=float(idle),
        absolute_expires_at=float(absolute),
        revoked=revoked == "1",
    )


def _rotated(reply: Sequence[Any]) -> SessionRecord:
    """The record a ROTATE reply carries, or the error it names."""
    outcome = reply[0]
    if outcome == b"ok":
        return _record(reply[1:])
    if outcome == b"reused":
        raise RefreshTokenReused(_text(reply[1]))
    if outcome == b"expired":
        raise TokenExpired("session expired")
    if outcome == b"ended":
        raise InvalidToken("session ended")
    if outcome == b"clash":
        raise ValueError("refresh token hash already exists")
    raise InvalidToken("unknown refresh token")


class RedisSessionStore(RedisSharedState):
    """Sessions in Redis: shared by every instance of a service, atomic through server-side scripts.

    Give it a ``redis://``, ``rediss://`` or ``redis+sentinel://`` URL (see
    :mod:`authcore.sessions.redis_url`). Nothing connects until the first call, so a service
    starts while Redis is down and works once it is back. Thread-safe (redis-py's pool).
    """

    #: Every call is a network round trip.
    blocking: bool = True
    #: Every instance using the same Redis (and prefix) sees the same sessions.
    shared: bool = True

    def __init__(self, url: str) -> None:
        self._location = parse_redis_url(url)
        self._prefix = self._location.prefix
        self._client, self._sentinels = connect(self._location)
        self._unavailable = unavailable_errors()
        # Calls made by code an async adapter runs on its event loop (authcore.loop_bridge).
        self._loop_calls = loop_calls_for(self._location)
        self._on_event_loop: Callable[[], bool] = _never
        self._collecting_block: Callable[[], object] = _none
        if self._loop_calls is not None:
            from ..loop_bridge import collected, on_loop

            self._on_event_loop, self._collecting_block = on_loop, collected
        #: Whether an async adapter may run this store's calls on its event loop (run_bridged).
        self.awaits_on_loop = self._loop_calls is not None
        register = self._client.register_script
        self._create = register(scripts.CREATE)
        self._rotate = register(scripts.ROTATE)
        self._touch = register(scripts.TOUCH)
        self._revoke = register(scripts.REVOKE)
        self._update_identity = register(scripts.UPDATE_IDENTITY)
        self._session_of = register(scripts.SESSION_OF)
        self._sessions_of = register(scripts.SESSIONS_OF)
        self._purge = register(scripts.PURGE)
        self._register_shared()  # the SharedState scripts (throttle counters, SSO claims and key)
        self._index = self._prefix + "sessions"
        self._lock = threading.Lock()
        self._creates = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisSessionStore({self._location.where()!r}, prefix={self._prefix!r})"

    # ------------------------------------------------------------------ keys and calls

    def _session_key(self, session_id: str) -> str:
        return f"{self._prefix}s:{key_hash(session_id)}"

    def _refresh_key(self, refresh_hash: bytes) -> str:
        return f"{self._prefix}r:{refresh_hash.hex()}"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the session store is closed")

    @contextmanager
    def _calling(self) -> Iterator[None]:
        """Turn Redis being unreachable or slow into SessionStoreUnavailable, without the cause's details."""
        self._check_open()
        try:
            yield
        except self._unavailable as exc:
            # The exception's text names host and port only, but its type is all an operator needs here.
            log.warning("session store unavailable (%s)", type(exc).__name__)
            raise SessionStoreUnavailable() from None

    def _on_loop(self) -> LoopCalls | None:
        """The event loop's calls when the caller runs bridged on one, or in-line in a coroutine
        :func:`~authcore.loop_bridge.collecting` its calls; else ``None`` (the blocking client)."""
        if not self._on_event_loop():
            return None
        assert self._loop_calls is not None
        self._check_open()
        return self._loop_calls

    def _run(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        on_loop = self._on_loop()
        if on_loop is not None:
            return on_loop.script(script, keys, args)
        with self._calling():
            if held := self._held_here():
                return send_with_held(self._client, held, ScriptCall(script, keys, args, _ignored))
            return script(keys=list(keys), args=list(args))

    def _run_checked(
        self, script: Script, keys: Sequence[str], args: Sequence[str | int], check: Callable[[Any], None]
    ) -> None:
        """Run *script* for its effect; *check* raises if its reply says it failed. On the event
        loop the reply is checked when the code next waits, or before its call ends
        (:func:`~authcore.loop_bridge.check_later`): a login's session then goes to Redis in
        the same write as the throttle's settle, one round trip for both; from a thread within
        :func:`~authcore.sessions.held.held_calls`, held to go with the store's next call."""
        on_loop = self._on_loop()
        if on_loop is not None:
            on_loop.script_later(script, keys, args, check)
        elif (held := holding()) is not None:
            self._check_open()
            held.hold(self, ScriptCall(script, keys, args, check))
        else:
            check(self._run(script, keys, args))

    def _command(self, *command: str | int | bytes) -> Any:
        """One command, its reply raw (bytes, integers, lists, ``None``)."""
        on_loop = self._on_loop()
        if on_loop is not None:
            return on_loop.command(*command)
        with self._calling():
            if held := self._held_here():
                return send_with_held(self._client, held, command)
            return self._client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py's

    def _held_here(self) -> list[ScriptCall]:
        """The calls this store holds in the caller's :func:`~authcore.sessions.held.held_calls` block."""
        held = holding()
        return [] if held is None else held.take(self)

    def send_held(self, calls: list[ScriptCall]) -> None:
        """Send the calls still held when a :func:`~authcore.sessions.held.held_calls` block ends."""
        with self._calling():
            send_with_held(self._client, calls, None)

    # ------------------------------------------------------------------ the SessionStore protocol

    def create(self, record: SessionRecord, refresh_hash: bytes) -> None:
        """Store a new session (see :meth:`SessionStore.create`)."""
        _check_hash(refresh_hash)
        identity_json = _identity_json(record.identity)
        hs = key_hash(record.session_id)
        lk = key_hash(record.login)
        end = min(record.idle_expires_at, record.absolute_expires_at)
        # The keys live until the later deadline plus the margin, counted from the record's own clock.
        last_deadline = max(record.idle_expires_at, record.absolute_expires_at)
        ttl_ms = max(1000, math.ceil((last_deadline - record.created_at + RETENTION_MARGIN) * 1000))
        args: list[str | int] = [
            record.session_id,
            record.login,
            record.provider,
            identity_json,
            _time(record.created_at),
            _time(record.last_used_at),
            _time(record.idle_expires_at),
            _time(record.absolute_expires_at),
            "1" if record.revoked else "0",
            refresh_hash.hex(),
            lk,
            "-inf" if record.revoked else _time(end),
            ttl_ms,
            hs,
        ]
        keys = [self._session_key(record.session_id), self._refresh_key(refresh_hash), self._index]
        self._run_checked(self._create, [*keys, f"{self._prefix}l:{lk}"], args, _created)
        with self._lock:
            self._creates += 1
            due = self._creates % PURGE_EVERY == 0
        if due:
            self._purge_due(record.created_at)

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or ``None`` (see :meth:`SessionStore.get`)."""
        values = self._command("HMGET", self._session_key(session_id), *scripts.RECORD_FIELDS)
        return self._found(session_id, values, identity=True)

    def peek(self, session_id: str) -> SessionRecord | None:
        """The session without its identity (see :meth:`SessionStore.peek`)."""
        values = self._command("HMGET", self._session_key(session_id), *_PEEK_FIELDS)
        return self._found(session_id, values, identity=False)

    @staticmethod
    def _found(session_id: str, values: Sequence[bytes | str | None], *, identity: bool) -> SessionRecord | None:
        # The stored id is compared too: a key name is a truncated hash, not the id.
        if values[0] is None or _text(values[0]) != session_id:
            return None
        return _record(values, identity=identity)

    def rotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        """Compare-and-swap the refresh hash on the server (see :meth:`SessionStore.rotate`)."""
        return _rotated(self._run(self._rotate, *self._rotation(old_hash, new_hash, now, idle_timeout)))

    async def arotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        """:meth:`rotate` for a coroutine on an event loop: the script awaited on the loop's own
        connection, without :mod:`~authcore.loop_bridge` (``AuthManager.arefresh``; a worker
        thread where the blocking client stays, without hiredis or greenlet)."""
        if self._loop_calls is None:
            import asyncio

            return await asyncio.to_thread(self.rotate, old_hash, new_hash, now=now, idle_timeout=idle_timeout)
        keys, args = self._rotation(old_hash, new_hash, now, idle_timeout)
        self._check_open()
        return _rotated(await self._loop_calls.ascript(self._rotate, keys, args))

    def _rotation(
        self, old_hash: bytes, new_hash: bytes, now: float, idle_timeout: float
    ) -> tuple[list[str], list[str | int]]:
        """The ROTATE script's keys and arguments."""
        _check_hash(new_hash)
        if not isinstance(old_hash, bytes):
            raise InvalidToken("unknown refresh token")
        keys = [self._refresh_key(old_hash), self._refresh_key(new_hash), self._index]
        args: list[str | int] = [self._prefix, _time(now), _time(now + idle_timeout), old_hash.hex(), new_hash.hex()]
        return keys, args

    def touch(self, session_id: str, *, now: float, idle_timeout: float) -> bool:
        """Slide the idle expiry of a live session (see :meth:`SessionStore.touch`)."""
        args = [_time(now), _time(now + idle_timeout), key_hash(session_id), session_id]
        return bool(self._run(self._touch, [self._session_key(session_id), self._index], args) == 1)

    def revoke(self, session_id: str) -> bool:
        """Revoke a session (see :meth:`SessionStore.revoke`).

        In a coroutine's :func:`~authcore.loop_bridge.collecting` block, where nothing may wait,
        the revocation is sent and its reply checked when the block ends, and the answer is
        ``True``: the one made there ends the session of a login whose token failed after it
        was stored (``Sessions.discard``)."""
        keys = [self._session_key(session_id), self._index]
        args: list[str | int] = [self._prefix, key_hash(session_id), session_id]
        if self._collecting_block() is not None:
            self._run_checked(self._revoke, keys, args, _ignored)
            return True
        return bool(self._run(self._revoke, keys, args) == 1)

    def session_of(self, refresh_hash: bytes) -> str | None:
        """The session of a current or used refresh hash (see :meth:`SessionStore.session_of`)."""
        if not isinstance(refresh_hash, bytes):
            return None
        found = self._run(self._session_of, [self._refresh_key(refresh_hash)], [self._prefix])
        return None if found is None else _text(found)

    def sessions_of(self, login: str, *, now: float) -> list[SessionRecord]:
        """The live sessions (SessionRecord.active(now)) of *login*, any provider, with identities,
        oldest first (created_at, then session_id)."""
        rows = self._run(self._sessions_of, [f"{self._prefix}l:{key_hash(login)}"], [self._prefix])
        records = [_record(row) for row in rows]
        live = [record for record in records if record.login == login and record.active(now)]
        return sorted(live, key=lambda record: (record.created_at, record.session_id))

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace the identity snapshot (see :meth:`SessionStore.update_identity`)."""
        identity_json = _identity_json(identity)
        if self._run(self._update_identity, [self._session_key(session_id)], [identity_json, session_id]) != 1:
            raise InvalidToken("session ended")

    def purge(self, now: float) -> int:
        """Delete sessions revoked or past a deadline at *now*, with their refresh hashes and index
        entries (see :meth:`SessionStore.purge`); return how many went.

        Runs in batches of :data:`_PURGE_BATCH` sessions, each batch one atomic script.
        """
        deleted = 0
        while True:
            gone, looked_at = self._run(self._purge, [self._index], [self._prefix, _time(now), _PURGE_BATCH])
            deleted += int(gone)
            if int(looked_at) < _PURGE_BATCH:
                return deleted

    def _purge_due(self, now: float) -> None:
        """Every :data:`PURGE_EVERY` creations: :meth:`purge`, or, on the event loop, as many
        sessions as were created since, sent without waiting (a login does not wait for it, and
        code run within :func:`~authcore.loop_bridge.collecting` cannot)."""
        if self._on_loop() is None:
            self.purge(now)
            return
        for _batch in range(PURGE_EVERY // _PURGE_BATCH):
            self._run_checked(self._purge, [self._index], [self._prefix, _time(now), _PURGE_BATCH], _ignored)

    def watch_revocations(
        self,
        *,
        on_revoked: Callable[[str], None],
        on_lost: Callable[[], None],
        on_resync: Callable[[], None],
    ) -> Callable[[], None]:
        """Hear every session revoked by any instance (:mod:`.redis_feed`); returns the ``stop`` call."""
        from .redis_feed import RevocationWatcher

        watcher = RevocationWatcher(
            self._client,
            self._prefix + "revoked",
            on_revoked=on_revoked,
            on_lost=on_lost,
            on_resync=on_resync,
            unavailable=self._unavailable,
        )
        return watcher.stop

    def close(self) -> None:
        """Close the connections; the store is unusable afterwards."""
        self._closed = True
        if self._loop_calls is not None:
            self._loop_calls.close()
        self._client.close()
        for sentinel in self._sentinels:
            sentinel.close()


def _never() -> bool:
    return False


def _none() -> None:
    return None
