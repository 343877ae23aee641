"""Session lifecycle on top of a store, and opening the store a ``sessions.store`` URL names."""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, Final, NamedTuple

from ..config.schema import SessionConfig
from ..errors import ConfigError, InvalidToken
from .base import (
    MAX_REFRESH_TOKEN_LENGTH,
    PERSONAL_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    RefreshTokenReused,
    SessionRecord,
    SessionStore,
    hash_refresh_token,
)
from .memory import MemorySessionStore
from .sqlite import SQLiteSessionStore

log = logging.getLogger("authcore.sessions")

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def open_store(url: str) -> SessionStore | None:
    """Open the store a ``sessions.store`` URL names, or return ``None`` for a scheme authcore does not know.

    * ``memory://`` -> :class:`MemorySessionStore`
    * ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention), ``sqlite://:memory:`` -> :class:`SQLiteSessionStore`
    * ``redis://``, ``rediss://``, ``redis+sentinel://`` ->
      :class:`~authcore.sessions.redis.RedisSessionStore` (needs redis-py: ``authcore[redis]``)

    Other schemes return ``None`` (the manager then asks plugins). A malformed URL raises
    :class:`~authcore.errors.ConfigError`; messages do not echo the URL, which may hold a
    password for a plugin's server.
    """
    if not isinstance(url, str):
        raise ConfigError("sessions.store must be a URL string")
    scheme, separator, rest = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise ConfigError("sessions.store is not a URL: expected 'memory://', 'sqlite:///path.db' or '<scheme>://...'")
    scheme = scheme.lower()
    if scheme == "memory":
        if rest:
            raise ConfigError("sessions.store: 'memory://' takes no path or options")
        return MemorySessionStore()
    if scheme in ("redis", "rediss", "redis+sentinel"):
        from .redis import RedisSessionStore  # here: redis-py is imported only when a Redis URL is used

        return RedisSessionStore(url)
    if scheme != "sqlite":
        return None
    if rest in (":memory:", "/:memory:"):
        return SQLiteSessionStore(":memory:")
    if not rest.startswith("/"):
        raise ConfigError(
            "sessions.store: an SQLite URL has no host: use 'sqlite:///relative/path.db' or 'sqlite:////absolute/path.db'"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ConfigError("sessions.store: the SQLite URL names no database file")
    if "?" in path or "#" in path or "\x00" in path:
        raise ConfigError("sessions.store: SQLite URLs take no query string or fragment")
    return SQLiteSessionStore(path)


def _log_reuse(exc: RefreshTokenReused) -> None:
    # A security event worth an operator's attention; the session id is no credential.
    log.warning("refresh token reuse detected: session %s revoked", exc.session_id)


def _looks_like_refresh_token(value: object) -> bool:
    return (
        type(value) is str
        and len(value) <= MAX_REFRESH_TOKEN_LENGTH
        and value.isascii()
        and value.startswith(REFRESH_TOKEN_PREFIX)
    )


class NewSession(NamedTuple):
    """A session :meth:`Sessions.prepare` made: its record, its refresh token and that token's hash."""

    record: SessionRecord
    refresh_token: str
    refresh_hash: bytes


class Sessions:
    """Session lifecycle on top of a store."""

    #: Where the sessions live.
    store: SessionStore

    def __init__(self, store: SessionStore, config: SessionConfig) -> None:
        self.store = store
        self._idle_timeout = float(config.idle_timeout)
        self._max_lifetime = float(config.max_lifetime)

    def __repr__(self) -> str:
        return f"Sessions(store={self.store!r}, idle_timeout={self._idle_timeout}, max_lifetime={self._max_lifetime})"

    @staticmethod
    def _new_refresh_token() -> tuple[str, bytes]:
        token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits -> 43 characters
        return token, hash_refresh_token(token)

    def start(
        self,
        *,
        login: str,
        provider: str,
        identity: dict[str, Any],
        now: float | None = None,
        lifetime: float | None = None,
    ) -> tuple[SessionRecord, str]:
        """Start a session for *login*; return ``(record, refresh_token)``.

        *lifetime* makes it a token's session (a script's, lowball's): it lives exactly that
        long, with no idle expiry, instead of ``sessions.max_lifetime`` and ``idle_timeout``.
        """
        new = self.prepare(login=login, provider=provider, identity=identity, now=now, lifetime=lifetime)
        self.keep(new)
        return new.record, new.refresh_token

    def prepare(
        self,
        *,
        login: str,
        provider: str,
        identity: dict[str, Any],
        now: float | None = None,
        lifetime: float | None = None,
    ) -> NewSession:
        """:meth:`start`'s session, not stored yet (:meth:`keep` stores it): the manager works out
        its token's claims in between, so that a plugin refusing them leaves nothing in the store."""
        token, token_hash = self._new_refresh_token()
        return NewSession(self._record(login, provider, identity, now, lifetime), token, token_hash)

    def keep(self, new: NewSession) -> None:
        """Store a session :meth:`prepare` made."""
        self.store.create(new.record, new.refresh_hash)

    def discard(self, new: NewSession) -> None:
        """End a session :meth:`keep` stored whose tokens could not be made (nothing holds them).

        A failure to end it is logged, not raised: the caller raises the tokens' own error."""
        try:
            self.store.revoke(new.record.session_id)
        except Exception as exc:
            log.warning("a session whose tokens failed could not be ended (%s)", type(exc).__name__)

    def start_personal(
        self,
        *,
        login: str,
        provider: str,
        identity: dict[str, Any],
        lifetime: float,
        now: float | None = None,
        prefix: str = PERSONAL_TOKEN_PREFIX,
    ) -> tuple[SessionRecord, str]:
        """A token's session whose secret is a personal access token (``pat_`` + 256 random bits);
        return ``(record, token)``. Only its SHA-256 hash is stored, where a refresh token's is.

        Another *prefix* makes another kind of opaque secret (a second-factor challenge, ``mfa_``),
        which :meth:`refresh` refuses like a personal access token."""
        record = self._record(login, provider, identity, now, lifetime)
        token = prefix + secrets.token_urlsafe(32)
        self.store.create(record, hash_refresh_token(token))
        return record, token

    def _record(
        self, login: str, provider: str, identity: dict[str, Any], now: float | None, lifetime: float | None
    ) -> SessionRecord:
        now = time.time() if now is None else now
        absolute = now + (self._max_lifetime if lifetime is None else lifetime)
        idle = absolute if lifetime is not None else min(now + self._idle_timeout, absolute)
        return SessionRecord(
            session_id=secrets.token_urlsafe(16),  # 128 bits
            login=login,
            provider=provider,
            identity=identity,
            created_at=now,
            last_used_at=now,
            idle_expires_at=idle,
            absolute_expires_at=absolute,
        )

    def session_of_personal_token(self, token: str, prefix: str = PERSONAL_TOKEN_PREFIX) -> str | None:
        """The session a personal access token (or another *prefix*'s secret) opens, or ``None``
        (malformed, unknown)."""
        if type(token) is not str or len(token) != len(prefix) + 43 or not token.isascii():
            return None
        if not token.startswith(prefix):
            return None
        return self.store.session_of(hash_refresh_token(token))

    def refresh(self, refresh_token: str, *, now: float | None = None) -> tuple[SessionRecord, str]:
        """Trade *refresh_token* for a new one (rotation); return ``(record, new_refresh_token)``.

        Raises :class:`~authcore.errors.InvalidToken` for anything that is not a current
        refresh token, :class:`RefreshTokenReused` (an ``InvalidToken``) for a token used
        before (its session is revoked: drop cached access tokens of ``error.session_id``),
        and :class:`~authcore.errors.TokenExpired` when the session's time is up.
        """
        old_hash, new_token, new_hash, now = self._rotation(refresh_token, now)
        try:
            record = self.store.rotate(old_hash, new_hash, now=now, idle_timeout=self._idle_timeout)
        except RefreshTokenReused as exc:
            _log_reuse(exc)
            raise
        return record, new_token

    async def arefresh(self, refresh_token: str, *, now: float | None = None) -> tuple[SessionRecord, str]:
        """:meth:`refresh` with the rotation awaited: for a store with an ``arotate`` coroutine
        (the Redis store, on an event loop; see :attr:`awaits_rotation`)."""
        arotate = getattr(self.store, "arotate", None)
        if arotate is None:
            raise TypeError("the session store has no awaitable rotation")
        old_hash, new_token, new_hash, now = self._rotation(refresh_token, now)
        try:
            record: SessionRecord = await arotate(old_hash, new_hash, now=now, idle_timeout=self._idle_timeout)
        except RefreshTokenReused as exc:
            _log_reuse(exc)
            raise
        return record, new_token

    @property
    def awaits_rotation(self) -> bool:
        """Whether :meth:`arefresh` awaits the rotation on the caller's event loop (a store with
        ``arotate`` whose calls await on the loop: the Redis store on ``redis://``)."""
        store = self.store
        return hasattr(store, "arotate") and getattr(store, "awaits_on_loop", False) is True

    def _rotation(self, refresh_token: str, now: float | None) -> tuple[bytes, str, bytes, float]:
        """What a rotation sends: the old token's hash, a new token and its hash, and the time."""
        if not _looks_like_refresh_token(refresh_token):
            raise InvalidToken("malformed refresh token")
        new_token, new_hash = self._new_refresh_token()
        return hash_refresh_token(refresh_token), new_token, new_hash, time.time() if now is None else now

    def is_active(self, session_id: str, *, now: float | None = None) -> bool:
        """Whether *session_id* names a session that is not revoked and not expired."""
        record = self.store.peek(session_id)
        return record is not None and record.active(time.time() if now is None else now)

    def touch(self, session_id: str, *, now: float | None = None) -> bool:
        """Slide a live session's idle expiry (an authenticated request). True if it is live."""
        return self.store.touch(session_id, now=time.time() if now is None else now, idle_timeout=self._idle_timeout)

    def revoke(self, session_id: str) -> bool:
        """End a session (logout). True if it was not revoked already."""
        return self.store.revoke(session_id)

    def session_of_refresh_token(self, refresh_token: str) -> str | None:
        """The id of the session a (current or earlier) refresh token belongs to, or ``None``."""
        if not _looks_like_refresh_token(refresh_token):
            return None
        return self.store.session_of(hash_refresh_token(refresh_token))

    def get(self, session_id: str) -> SessionRecord | None:
        """The session *session_id*, or ``None``."""
        return self.store.get(session_id)

    def peek(self, session_id: str) -> SessionRecord | None:
        """The session *session_id* without its identity (cheaper), or ``None``."""
        return self.store.peek(session_id)
