"""Sessions in an SQLite file, shared by the processes of one host."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigError, InvalidToken, TokenExpired
from .base import PURGE_EVERY, RefreshTokenReused, SessionRecord, _check_hash, _identity_json

log = logging.getLogger("authcore.sessions")

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
    "CREATE INDEX IF NOT EXISTS authcore_sessions_by_login ON authcore_sessions (login)",
)
_COLUMNS: Final = (
    "session_id, login, provider, identity, created_at, last_used_at, idle_expires_at, absolute_expires_at, revoked"
)
#: The same columns with the identity snapshot replaced by an empty JSON object (peek()).
_PEEK_COLUMNS: Final = _COLUMNS.replace("identity", "'{}'")
_DEAD: Final = "revoked = 1 OR idle_expires_at <= :now OR absolute_expires_at <= :now"
#: Files SQLite creates beside the database (write-ahead log, shared memory, rollback journal).
_SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
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
        # A symbolic link at the database's path (or at one of the files SQLite keeps beside
        # it) would let whoever planted it point our writes at another file: refuse it.
        for candidate in (path, *(path.with_name(path.name + suffix) for suffix in _SQLITE_SIDE_FILES)):
            if candidate.is_symlink():
                raise ConfigError(f"sessions.store: {str(candidate)!r} is a symbolic link; name the file itself")
        try:
            # O_CREAT with mode 0600 before SQLite opens it: never a moment with a readable file.
            # SQLite gives the -wal and -shm files the database file's permissions. O_NOFOLLOW
            # closes the window between the check above and this open.
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
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
            switch_to_wal(connection)
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
                    error = RefreshTokenReused(used[0])
                else:
                    error = InvalidToken("unknown refresh token")
        # Raised after COMMIT: a reuse revocation must be stored, not rolled back with the error.
        raise error

    def touch(self, session_id: str, *, now: float, idle_timeout: float) -> bool:
        """Slide the idle expiry of a live session (see :meth:`SessionStore.touch`)."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE authcore_sessions SET last_used_at = :now,"
                " idle_expires_at = MIN(:now + :idle, absolute_expires_at)"
                " WHERE session_id = :id AND revoked = 0 AND idle_expires_at > :now AND absolute_expires_at > :now",
                {"id": session_id, "now": now, "idle": idle_timeout},
            ).rowcount
        return changed == 1

    def revoke(self, session_id: str) -> bool:
        """Revoke a session (see :meth:`SessionStore.revoke`)."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE authcore_sessions SET revoked = 1 WHERE session_id = ? AND revoked = 0", (session_id,)
            ).rowcount
        return changed == 1

    def session_of(self, refresh_hash: bytes) -> str | None:
        """The session of a current or used refresh hash (see :meth:`SessionStore.session_of`)."""
        with self._connection() as connection:
            row = connection.execute(
                "SELECT session_id FROM authcore_sessions WHERE refresh_hash = :hash"
                " UNION ALL SELECT session_id FROM authcore_used_refresh_hashes WHERE refresh_hash = :hash",
                {"hash": refresh_hash},
            ).fetchone()
        return None if row is None else str(row[0])

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace the identity snapshot (see :meth:`SessionStore.update_identity`)."""
        identity_json = _identity_json(identity)
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE authcore_sessions SET identity = ? WHERE session_id = ?", (identity_json, session_id)
            ).rowcount
        if changed != 1:
            raise InvalidToken("session ended")

    def sessions_of(self, login: str, *, now: float) -> list[SessionRecord]:
        """The live sessions of *login*, oldest first (see :meth:`SessionStore.sessions_of`)."""
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM authcore_sessions WHERE login = :login AND NOT ({_DEAD})"
                " ORDER BY created_at, session_id",
                {"login": login, "now": now},
            ).fetchall()
        return [_row_to_record(row) for row in rows]

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


def switch_to_wal(connection: sqlite3.Connection, patience: float = _BUSY_TIMEOUT_SECONDS) -> None:
    """``PRAGMA journal_mode = WAL`` on *connection*, retried for up to *patience* seconds.

    SQLite answers this pragma "database is locked" at once, without its busy handler, while
    another connection holds a write lock on a database still in rollback mode: what happens
    when several processes or threads open the same new file together (services starting at
    once). auth-local's engines use it too.
    """
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
