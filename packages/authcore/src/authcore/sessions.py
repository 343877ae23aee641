"""Sessions: refresh tokens, sliding idle expiry, an absolute lifetime, revocation, and their stores.

A session starts at login and hands out an opaque refresh token (``rt_`` + 43 url-safe
characters, 256 random bits). Only its SHA-256 hash is stored: a leaked database holds
nothing that can be presented. Every refresh *rotates* the token: the old hash is
remembered as used, and presenting a used token again is treated as theft (RFC 9700
4.14.2): the whole session is revoked, so the newest token dies too.

A session ends when it has been idle for ``idle_timeout``, when it reaches
``max_lifetime`` (however active), or when it is revoked (logout, reuse).

Stores implement :class:`SessionStore`: :class:`MemorySessionStore` (one process),
:class:`SQLiteSessionStore` (a file shared by the processes of one host), and plugins'
stores (Redis) through the ``authcore_session_store`` hook.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from .config import SessionConfig
from .errors import ConfigError, InvalidToken, TokenExpired

__all__ = [
    "MAX_REFRESH_TOKEN_LENGTH",
    "REFRESH_TOKEN_PREFIX",
    "MemorySessionStore",
    "RefreshTokenReused",
    "SQLiteSessionStore",
    "SessionRecord",
    "SessionStore",
    "Sessions",
    "hash_refresh_token",
    "open_store",
]

log = logging.getLogger(__name__)

#: Every refresh token starts with this, so it is never mistaken for an access token (and vice versa).
REFRESH_TOKEN_PREFIX: Final = "rt_"
#: Longest string :meth:`Sessions.refresh` looks at.
MAX_REFRESH_TOKEN_LENGTH: Final = 256
#: Stores purge expired sessions on every this many creates, so memory and files stay bounded.
PURGE_EVERY: Final = 1000


class RefreshTokenReused(InvalidToken):
    """A refresh token was presented again after it had been rotated: its session is now revoked.

    ``session_id`` names that session, so a caller can forget what it cached for it
    (verified access tokens) at once. It is an attribute, not part of the message a client sees.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__("refresh token already used: session revoked")

    def __reduce__(self) -> tuple[type[RefreshTokenReused], tuple[str]]:
        return (type(self), (self.session_id,))


def hash_refresh_token(token: str) -> bytes:
    """The stored form of a refresh token: its SHA-256 digest.

    A fast hash is enough: the token holds 256 random bits, nothing to brute-force.
    """
    return hashlib.sha256(token.encode("utf-8")).digest()


def _identity_json(identity: dict[str, Any]) -> str:
    if not isinstance(identity, dict):
        raise TypeError("a session identity is a dict")
    return json.dumps(identity, separators=(",", ":"), allow_nan=False)


def _check_hash(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("a refresh token hash is 32 bytes (SHA-256)")
    return value


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session as a store keeps it. Times are Unix seconds.

    ``identity`` is the JSON-able identity snapshot taken at login (the manager stores
    ``Identity.model_dump()`` plus provider session state there); it is left out of the
    repr, which shows the login only.
    """

    session_id: str
    login: str
    provider: str
    identity: dict[str, Any] = field(repr=False, hash=False)
    created_at: float
    last_used_at: float
    idle_expires_at: float
    absolute_expires_at: float
    revoked: bool = False

    def active(self, now: float) -> bool:
        """Whether the session is usable at *now*: not revoked, not idle too long, not too old."""
        return not self.revoked and now < self.idle_expires_at and now < self.absolute_expires_at

    def __repr__(self) -> str:
        return (
            f"SessionRecord(session_id={self.session_id!r}, login={self.login!r}, provider={self.provider!r}, "
            f"created_at={self.created_at}, idle_expires_at={self.idle_expires_at}, "
            f"absolute_expires_at={self.absolute_expires_at}, revoked={self.revoked})"
        )


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions and refresh-token hashes live. A plugin's Redis store implements this too.

    Implementations must be safe to call from many threads; ``rotate`` must be atomic
    (also across processes when ``shared`` is true).
    """

    #: True when calls do I/O: asynchronous hosts then run them in a worker thread.
    blocking: bool
    #: True when other processes see the same sessions (SQLite file, Redis): verified-token
    #: caches then re-check sessions every ``tokens.revocation_check_interval``.
    shared: bool

    def create(self, record: SessionRecord, refresh_hash: bytes) -> None:
        """Store a new session whose current refresh-token hash is *refresh_hash*."""
        ...

    def get(self, session_id: str) -> SessionRecord | None:
        """The session *session_id* (revoked and expired ones included until purged), or ``None``."""
        ...

    def peek(self, session_id: str) -> SessionRecord | None:
        """Like :meth:`get`, but the record's ``identity`` is left empty.

        What checking an access token needs (revoked? expired?), without the cost of
        reading and decoding the identity snapshot: it is on every uncached verification.
        """
        ...

    def rotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        """Atomically replace the session's current hash *old_hash* with *new_hash*.

        On success ``last_used_at = now`` and ``idle_expires_at = min(now + idle_timeout,
        absolute_expires_at)``; *old_hash* is remembered as used, and the updated record
        returned. A previously used hash means reuse: its session is revoked and
        :class:`RefreshTokenReused` (an :class:`~authcore.errors.InvalidToken` naming the
        session) raised. An unknown hash or a revoked session
        raise :class:`~authcore.errors.InvalidToken`; an idle or absolute expiry that has
        passed raises :class:`~authcore.errors.TokenExpired`.
        """
        ...

    def revoke(self, session_id: str) -> bool:
        """Revoke a session. True if it existed and was not revoked already."""
        ...

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace a session's identity snapshot; :class:`~authcore.errors.InvalidToken` if it is gone."""
        ...

    def purge(self, now: float) -> int:
        """Delete revoked and expired sessions with their used hashes; return how many sessions went."""
        ...

    def close(self) -> None:
        """Release resources (connections). The store is unusable afterwards."""
        ...


# --------------------------------------------------------------------------- memory


class _MemorySession:
    __slots__ = ("current_hash", "identity_json", "record", "used_hashes")

    def __init__(self, record: SessionRecord, identity_json: str, current_hash: bytes) -> None:
        self.record = record
        self.identity_json = identity_json
        self.current_hash = current_hash
        self.used_hashes: list[bytes] = []


class MemorySessionStore:
    """Sessions in this process's memory: the default; gone on restart, invisible to other processes.

    One lock guards everything; expired sessions are purged every :data:`PURGE_EVERY` creates.
    The identity is kept as JSON text, so callers can neither share nor mutate the stored copy.
    """

    #: Calls never block on I/O.
    blocking: bool = False
    #: Only this process sees these sessions.
    shared: bool = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, _MemorySession] = {}
        self._by_current: dict[bytes, str] = {}
        self._by_used: dict[bytes, str] = {}
        self._creates = 0

    def __repr__(self) -> str:
        return f"MemorySessionStore(sessions={len(self._sessions)})"

    def create(self, record: SessionRecord, refresh_hash: bytes) -> None:
        """Store a new session (see :meth:`SessionStore.create`)."""
        _check_hash(refresh_hash)
        identity_json = _identity_json(record.identity)
        stored = _MemorySession(_without_identity(record), identity_json, refresh_hash)
        with self._lock:
            if record.session_id in self._sessions:
                raise ValueError("session id already exists")
            if refresh_hash in self._by_current or refresh_hash in self._by_used:
                raise ValueError("refresh token hash already exists")
            self._sessions[record.session_id] = stored
            self._by_current[refresh_hash] = record.session_id
            self._creates += 1
            due = self._creates % PURGE_EVERY == 0
        if due:
            self.purge(record.created_at)

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or ``None`` (see :meth:`SessionStore.get`)."""
        stored = self._sessions.get(session_id)
        if stored is None:
            return None
        return _with_identity(stored.record, stored.identity_json)

    def peek(self, session_id: str) -> SessionRecord | None:
        """The session without its identity (see :meth:`SessionStore.peek`)."""
        stored = self._sessions.get(session_id)
        return None if stored is None else stored.record  # kept without identity, replaced whole on change

    def rotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        """Compare-and-swap the refresh hash (see :meth:`SessionStore.rotate`)."""
        _check_hash(new_hash)
        with self._lock:
            session_id = self._by_current.get(old_hash)
            if session_id is None:
                reused = self._by_used.get(old_hash)
                if reused is not None:
                    self._revoke_locked(reused)
                    error: InvalidToken = _reuse_error(reused)
                else:
                    error = InvalidToken("unknown refresh token")
            else:
                stored = self._sessions[session_id]
                record = stored.record
                if record.revoked:
                    error = InvalidToken("session ended")
                elif now >= record.idle_expires_at or now >= record.absolute_expires_at:
                    error = TokenExpired("session expired")
                else:
                    record = _replace_times(record, now, idle_timeout)
                    stored.record = record
                    stored.current_hash = new_hash
                    stored.used_hashes.append(old_hash)
                    del self._by_current[old_hash]
                    self._by_current[new_hash] = session_id
                    self._by_used[old_hash] = session_id
                    return _with_identity(record, stored.identity_json)
        raise error

    def revoke(self, session_id: str) -> bool:
        """Revoke a session (see :meth:`SessionStore.revoke`)."""
        with self._lock:
            return self._revoke_locked(session_id)

    def _revoke_locked(self, session_id: str) -> bool:
        stored = self._sessions.get(session_id)
        if stored is None or stored.record.revoked:
            return False
        stored.record = _replace(stored.record, revoked=True)
        return True

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace the identity snapshot (see :meth:`SessionStore.update_identity`)."""
        identity_json = _identity_json(identity)
        with self._lock:
            stored = self._sessions.get(session_id)
            if stored is None:
                raise InvalidToken("session ended")
            stored.identity_json = identity_json

    def purge(self, now: float) -> int:
        """Delete revoked and expired sessions (see :meth:`SessionStore.purge`)."""
        with self._lock:
            dead = [sid for sid, stored in self._sessions.items() if not stored.record.active(now)]
            for session_id in dead:
                stored = self._sessions.pop(session_id)
                self._by_current.pop(stored.current_hash, None)
                for used in stored.used_hashes:
                    self._by_used.pop(used, None)
        return len(dead)

    def close(self) -> None:
        """Forget every session."""
        with self._lock:
            self._sessions.clear()
            self._by_current.clear()
            self._by_used.clear()


def _reuse_error(session_id: str) -> RefreshTokenReused:
    # A security event worth an operator's attention; the session id is no credential.
    log.warning("refresh token reuse detected: session %s revoked", session_id)
    return RefreshTokenReused(session_id)


def _replace(record: SessionRecord, **changes: Any) -> SessionRecord:
    values = {name: getattr(record, name) for name in SessionRecord.__dataclass_fields__}
    values.update(changes)
    return SessionRecord(**values)


def _without_identity(record: SessionRecord) -> SessionRecord:
    return _replace(record, identity={})


def _with_identity(record: SessionRecord, identity_json: str) -> SessionRecord:
    identity: dict[str, Any] = json.loads(identity_json)
    return _replace(record, identity=identity)


def _replace_times(record: SessionRecord, now: float, idle_timeout: float) -> SessionRecord:
    return _replace(
        record,
        last_used_at=now,
        idle_expires_at=min(now + idle_timeout, record.absolute_expires_at),
    )


# --------------------------------------------------------------------------- SQLite

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS authcore_sessions (
        session_id TEXT PRIMARY KEY,
        login TEXT NOT NULL,
        provider TEXT NOT NULL,
        identity TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_used_at REAL NOT NULL,
        idle_expires_at REAL NOT NULL,
        absolute_expires_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0,
        refresh_hash BLOB NOT NULL UNIQUE
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS authcore_used_refresh_hashes (
        refresh_hash BLOB PRIMARY KEY,
        session_id TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS authcore_used_by_session ON authcore_used_refresh_hashes (session_id)",
    "CREATE INDEX IF NOT EXISTS authcore_sessions_by_expiry ON authcore_sessions (absolute_expires_at)",
)
_COLUMNS: Final = (
    "session_id, login, provider, identity, created_at, last_used_at, idle_expires_at, absolute_expires_at, revoked"
)
#: The same columns with the identity snapshot replaced by an empty JSON object (peek()).
_PEEK_COLUMNS: Final = _COLUMNS.replace("identity", "'{}'")
_DEAD: Final = "revoked = 1 OR idle_expires_at <= :now OR absolute_expires_at <= :now"
#: How long a writer waits for another connection's (or process's) transaction to finish.
_BUSY_TIMEOUT_SECONDS: Final = 10.0


def _row_to_record(row: tuple[Any, ...]) -> SessionRecord:
    identity: dict[str, Any] = json.loads(row[3])
    return SessionRecord(
        session_id=row[0],
        login=row[1],
        provider=row[2],
        identity=identity,
        created_at=row[4],
        last_used_at=row[5],
        idle_expires_at=row[6],
        absolute_expires_at=row[7],
        revoked=bool(row[8]),
    )


class SQLiteSessionStore:
    """Sessions in an SQLite file: they survive restarts and are shared by the processes of one host.

    WAL journal, a busy timeout, and writes in ``BEGIN IMMEDIATE`` transactions, so
    rotation is a compare-and-swap across threads and processes. Connections come from a
    small pool (one per concurrently calling thread), which lets readers run in parallel.
    The file is created with mode 0600: it holds identity snapshots. ``":memory:"`` gives
    a private in-memory database on one connection (tests, experiments).
    """

    #: Every call does file I/O.
    blocking: bool = True
    #: Other processes opening the same file see the same sessions.
    shared: bool = True

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._memory = self._path == ":memory:"
        if self._memory:
            self.shared = False  # a private in-memory database is seen by nobody else
        else:
            self._create_file(Path(self._path))
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        # ":memory:" is one database per connection: it gets exactly one, used under this lock.
        self._single_lock = threading.Lock()
        self._single: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        self._creates = 0
        connection = self._connect()
        try:
            self._init_schema(connection)
        except BaseException:
            connection.close()
            raise
        if self._memory:
            self._single = connection
        else:
            self._pool.append(connection)

    def __repr__(self) -> str:
        return f"SQLiteSessionStore({self._path!r})"

    @staticmethod
    def _create_file(path: Path) -> None:
        parent = path.parent
        if not parent.is_dir():
            raise ConfigError(f"sessions.store: directory {str(parent)!r} does not exist")
        try:
            # O_CREAT with mode 0600 before SQLite opens it: never a moment with a readable file.
            # SQLite gives the -wal and -shm files the database file's permissions.
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"sessions.store: cannot open {str(path)!r} ({exc.strerror})") from None
        try:
            mode = os.fstat(descriptor).st_mode
        finally:
            os.close(descriptor)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("session database %s is accessible to other users; chmod 600 it", path)

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self._path,
                timeout=_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
                check_same_thread=False,  # connections move between threads through the pool
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"sessions.store: cannot open SQLite database {self._path!r} ({exc})") from None
        connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_SECONDS * 1000)}")
        return connection

    def _init_schema(self, connection: sqlite3.Connection) -> None:
        if not self._memory:
            # WAL: readers do not block the writer, and a file shared by processes stays consistent.
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                connection.execute(statement)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("the session store is closed")
        if self._single is not None:
            with self._single_lock:
                yield self._single
            return
        with self._pool_lock:
            if self._pid != os.getpid():
                # Forked: the parent's connections must not be used (nor closed) here.
                self._pool = []
                self._pid = os.getpid()
            connection = self._pool.pop() if self._pool else None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        finally:
            with self._pool_lock:
                # A connection left inside a transaction (a failed ROLLBACK) is not reused.
                keep = not self._closed and self._pid == os.getpid() and not connection.in_transaction
                if keep:
                    self._pool.append(connection)
            if not keep:
                connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as connection:
            # IMMEDIATE takes the write lock up front: the read-then-write inside is atomic
            # against other connections and other processes.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def create(self, record: SessionRecord, refresh_hash: bytes) -> None:
        """Store a new session (see :meth:`SessionStore.create`)."""
        _check_hash(refresh_hash)
        identity_json = _identity_json(record.identity)
        try:
            self._insert(record, identity_json, refresh_hash)
        except sqlite3.IntegrityError:
            # As the memory store: a clash of 128/256-bit random values means a caller bug.
            raise ValueError("session id or refresh token hash already exists") from None
        with self._pool_lock:
            self._creates += 1
            due = self._creates % PURGE_EVERY == 0
        if due:
            self.purge(record.created_at)

    def _insert(self, record: SessionRecord, identity_json: str, refresh_hash: bytes) -> None:
        with self._transaction() as connection:
            connection.execute(
                f"INSERT INTO authcore_sessions ({_COLUMNS}, refresh_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.session_id,
                    record.login,
                    record.provider,
                    identity_json,
                    record.created_at,
                    record.last_used_at,
                    record.idle_expires_at,
                    record.absolute_expires_at,
                    int(record.revoked),
                    refresh_hash,
                ),
            )

    def get(self, session_id: str) -> SessionRecord | None:
        """The session, or ``None`` (see :meth:`SessionStore.get`)."""
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM authcore_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return None if row is None else _row_to_record(row)

    def peek(self, session_id: str) -> SessionRecord | None:
        """The session without its identity (see :meth:`SessionStore.peek`)."""
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_PEEK_COLUMNS} FROM authcore_sessions WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        return None if row is None else _row_to_record(row)

    def rotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        """Compare-and-swap the refresh hash (see :meth:`SessionStore.rotate`)."""
        _check_hash(new_hash)
        with self._transaction() as connection:
            swapped = connection.execute(
                "UPDATE authcore_sessions SET refresh_hash = :new, last_used_at = :now,"
                " idle_expires_at = MIN(:now + :idle, absolute_expires_at)"
                " WHERE refresh_hash = :old AND revoked = 0 AND idle_expires_at > :now AND absolute_expires_at > :now",
                {"new": new_hash, "old": old_hash, "now": now, "idle": idle_timeout},
            ).rowcount
            if swapped == 1:
                row = connection.execute(
                    f"SELECT {_COLUMNS} FROM authcore_sessions WHERE refresh_hash = ?", (new_hash,)
                ).fetchone()
                connection.execute(
                    "INSERT OR IGNORE INTO authcore_used_refresh_hashes (refresh_hash, session_id) VALUES (?, ?)",
                    (old_hash, row[0]),
                )
                return _row_to_record(row)
            # Not swapped: find out why, still inside the transaction.
            current = connection.execute(
                "SELECT revoked FROM authcore_sessions WHERE refresh_hash = ?", (old_hash,)
            ).fetchone()
            if current is not None:
                error: InvalidToken = InvalidToken("session ended") if current[0] else TokenExpired("session expired")
            else:
                used = connection.execute(
                    "SELECT session_id FROM authcore_used_refresh_hashes WHERE refresh_hash = ?", (old_hash,)
                ).fetchone()
                if used is not None:
                    connection.execute("UPDATE authcore_sessions SET revoked = 1 WHERE session_id = ?", (used[0],))
                    error = _reuse_error(used[0])
                else:
                    error = InvalidToken("unknown refresh token")
        # Raised after COMMIT: a reuse revocation must be stored, not rolled back with the error.
        raise error

    def revoke(self, session_id: str) -> bool:
        """Revoke a session (see :meth:`SessionStore.revoke`)."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE authcore_sessions SET revoked = 1 WHERE session_id = ? AND revoked = 0", (session_id,)
            ).rowcount
        return changed == 1

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace the identity snapshot (see :meth:`SessionStore.update_identity`)."""
        identity_json = _identity_json(identity)
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE authcore_sessions SET identity = ? WHERE session_id = ?", (identity_json, session_id)
            ).rowcount
        if changed != 1:
            raise InvalidToken("session ended")

    def purge(self, now: float) -> int:
        """Delete revoked and expired sessions (see :meth:`SessionStore.purge`)."""
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM authcore_used_refresh_hashes WHERE session_id IN"
                f" (SELECT session_id FROM authcore_sessions WHERE {_DEAD})",
                {"now": now},
            )
            deleted: int = connection.execute(f"DELETE FROM authcore_sessions WHERE {_DEAD}", {"now": now}).rowcount
        return deleted

    def close(self) -> None:
        """Close every connection; connections in use close when their call finishes."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for connection in pool:
            connection.close()
        if self._single is not None:
            with self._single_lock:
                self._single.close()


# --------------------------------------------------------------------------- URLs

_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def open_store(url: str) -> SessionStore | None:
    """Open the store a ``sessions.store`` URL names, or return ``None`` for a scheme authcore does not know.

    * ``memory://`` -> :class:`MemorySessionStore`
    * ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's
      convention), ``sqlite://:memory:`` -> :class:`SQLiteSessionStore`

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


# --------------------------------------------------------------------------- lifecycle


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
        self, *, login: str, provider: str, identity: dict[str, Any], now: float | None = None
    ) -> tuple[SessionRecord, str]:
        """Start a session for *login*; return ``(record, refresh_token)``."""
        now = time.time() if now is None else now
        absolute = now + self._max_lifetime
        record = SessionRecord(
            session_id=secrets.token_urlsafe(16),  # 128 bits
            login=login,
            provider=provider,
            identity=identity,
            created_at=now,
            last_used_at=now,
            idle_expires_at=min(now + self._idle_timeout, absolute),
            absolute_expires_at=absolute,
        )
        token, token_hash = self._new_refresh_token()
        self.store.create(record, token_hash)
        return record, token

    def refresh(self, refresh_token: str, *, now: float | None = None) -> tuple[SessionRecord, str]:
        """Trade *refresh_token* for a new one (rotation); return ``(record, new_refresh_token)``.

        Raises :class:`~authcore.errors.InvalidToken` for anything that is not a current
        refresh token, :class:`RefreshTokenReused` (an ``InvalidToken``) for a token used
        before (its session is revoked: drop cached access tokens of ``error.session_id``),
        and :class:`~authcore.errors.TokenExpired` when the session's time is up.
        """
        if (
            type(refresh_token) is not str
            or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH
            or not refresh_token.isascii()
            or not refresh_token.startswith(REFRESH_TOKEN_PREFIX)
        ):
            raise InvalidToken("malformed refresh token")
        now = time.time() if now is None else now
        new_token, new_hash = self._new_refresh_token()
        record = self.store.rotate(
            hash_refresh_token(refresh_token), new_hash, now=now, idle_timeout=self._idle_timeout
        )
        return record, new_token

    def is_active(self, session_id: str, *, now: float | None = None) -> bool:
        """Whether *session_id* names a session that is not revoked and not expired."""
        record = self.store.peek(session_id)
        return record is not None and record.active(time.time() if now is None else now)

    def revoke(self, session_id: str) -> bool:
        """End a session (logout). True if it was not revoked already."""
        return self.store.revoke(session_id)

    def get(self, session_id: str) -> SessionRecord | None:
        """The session *session_id*, or ``None``."""
        return self.store.get(session_id)

    def peek(self, session_id: str) -> SessionRecord | None:
        """The session *session_id* without its identity (cheaper), or ``None``."""
        return self.store.peek(session_id)
