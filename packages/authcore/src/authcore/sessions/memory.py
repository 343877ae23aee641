"""The default session store: this process's memory."""

from __future__ import annotations

import json
import threading
from typing import Any

from ..errors import InvalidToken, TokenExpired
from .base import PURGE_EVERY, RefreshTokenReused, SessionRecord, _check_hash, _identity_json


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
        self._by_login: dict[str, set[str]] = {}
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
            self._by_login.setdefault(record.login, set()).add(record.session_id)
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
                    error: InvalidToken = RefreshTokenReused(reused)
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

    def touch(self, session_id: str, *, now: float, idle_timeout: float) -> bool:
        """Slide the idle expiry of a live session (see :meth:`SessionStore.touch`)."""
        with self._lock:
            stored = self._sessions.get(session_id)
            if stored is None or not stored.record.active(now):
                return False
            stored.record = _replace_times(stored.record, now, idle_timeout)
            return True

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

    def session_of(self, refresh_hash: bytes) -> str | None:
        """The session of a current or used refresh hash (see :meth:`SessionStore.session_of`)."""
        with self._lock:
            return self._by_current.get(refresh_hash) or self._by_used.get(refresh_hash)

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace the identity snapshot (see :meth:`SessionStore.update_identity`)."""
        identity_json = _identity_json(identity)
        with self._lock:
            stored = self._sessions.get(session_id)
            if stored is None:
                raise InvalidToken("session ended")
            stored.identity_json = identity_json

    def sessions_of(self, login: str, *, now: float) -> list[SessionRecord]:
        """The live sessions of *login*, oldest first (see :meth:`SessionStore.sessions_of`)."""
        with self._lock:
            found = [self._sessions[sid] for sid in self._by_login.get(login, ())]
            live = [(s.record, s.identity_json) for s in found if s.record.active(now)]
        live.sort(key=lambda pair: (pair[0].created_at, pair[0].session_id))
        return [_with_identity(record, identity_json) for record, identity_json in live]

    def purge(self, now: float) -> int:
        """Delete revoked and expired sessions (see :meth:`SessionStore.purge`)."""
        with self._lock:
            dead = [sid for sid, stored in self._sessions.items() if not stored.record.active(now)]
            for session_id in dead:
                stored = self._sessions.pop(session_id)
                self._by_current.pop(stored.current_hash, None)
                for used in stored.used_hashes:
                    self._by_used.pop(used, None)
                of_login = self._by_login.get(stored.record.login)
                if of_login is not None:
                    of_login.discard(session_id)
                    if not of_login:
                        del self._by_login[stored.record.login]
        return len(dead)

    def close(self) -> None:
        """Forget every session."""
        with self._lock:
            self._sessions.clear()
            self._by_current.clear()
            self._by_used.clear()
            self._by_login.clear()


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
