"""A session store written here, plugged in through the ``authcore_session_store`` hook.

It is deliberately built differently from the shipped stores (one list, linear scans, no
indexes), so the conformance suite is shown to test the contract rather than one
implementation, and the hook is shown to reach the manager.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from authcore import AuthManager, hookimpl
from authcore.config import parse_config
from authcore.errors import InvalidToken, TokenExpired
from authcore.plugins import create_plugin_manager
from authcore.sessions import RefreshTokenReused, SessionRecord, SessionStore
from authcore.testing import SessionStoreConformance


@dataclasses.dataclass
class _Row:
    record: SessionRecord
    identity_json: str
    current: bytes
    used: list[bytes]


class ListStore:
    """Every session in one list; every lookup a scan. Small, slow, and correct."""

    blocking = False
    shared = False

    def __init__(self) -> None:
        self._rows: list[_Row] = []
        self._lock = threading.Lock()

    def _find(self, session_id: str) -> _Row | None:
        return next((row for row in self._rows if row.record.session_id == session_id), None)

    def create(self, record: SessionRecord, refresh_hash: bytes) -> None:
        if not isinstance(refresh_hash, bytes) or len(refresh_hash) != 32:
            raise ValueError("a refresh hash is 32 bytes")
        identity_json = json.dumps(record.identity, allow_nan=False)
        with self._lock:
            for row in self._rows:
                if row.record.session_id == record.session_id or refresh_hash in (row.current, *row.used):
                    raise ValueError("duplicate session or refresh hash")
            self._rows.append(_Row(dataclasses.replace(record, identity={}), identity_json, refresh_hash, []))

    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._find(session_id)
            return None if row is None else dataclasses.replace(row.record, identity=json.loads(row.identity_json))

    def peek(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._find(session_id)
            return None if row is None else row.record

    def rotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        with self._lock:
            for row in self._rows:
                if row.current == old_hash:
                    if row.record.revoked:
                        raise InvalidToken("session ended")
                    if not row.record.active(now):
                        raise TokenExpired("session expired")
                    row.used.append(old_hash)
                    row.current = new_hash
                    row.record = dataclasses.replace(
                        row.record,
                        last_used_at=now,
                        idle_expires_at=min(now + idle_timeout, row.record.absolute_expires_at),
                    )
                    return dataclasses.replace(row.record, identity=json.loads(row.identity_json))
                if old_hash in row.used:
                    row.record = dataclasses.replace(row.record, revoked=True)
                    raise RefreshTokenReused(row.record.session_id)
        raise InvalidToken("unknown refresh token")

    def touch(self, session_id: str, *, now: float, idle_timeout: float) -> bool:
        with self._lock:
            row = self._find(session_id)
            if row is None or not row.record.active(now):
                return False
            row.record = dataclasses.replace(
                row.record, last_used_at=now, idle_expires_at=min(now + idle_timeout, row.record.absolute_expires_at)
            )
            return True

    def revoke(self, session_id: str) -> bool:
        with self._lock:
            row = self._find(session_id)
            if row is None or row.record.revoked:
                return False
            row.record = dataclasses.replace(row.record, revoked=True)
            return True

    def session_of(self, refresh_hash: bytes) -> str | None:
        with self._lock:
            for row in self._rows:
                if refresh_hash == row.current or refresh_hash in row.used:
                    return row.record.session_id
        return None

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        identity_json = json.dumps(identity, allow_nan=False)
        with self._lock:
            row = self._find(session_id)
            if row is None:
                raise InvalidToken("session ended")
            row.identity_json = identity_json

    def sessions_of(self, login: str, *, now: float) -> list[SessionRecord]:
        with self._lock:
            rows = [row for row in self._rows if row.record.login == login and row.record.active(now)]
            found = [dataclasses.replace(row.record, identity=json.loads(row.identity_json)) for row in rows]
        return sorted(found, key=lambda record: (record.created_at, record.session_id))

    def purge(self, now: float) -> int:
        with self._lock:
            alive = [row for row in self._rows if row.record.active(now)]
            purged = len(self._rows) - len(alive)
            self._rows = alive
        return purged

    def close(self) -> None:
        with self._lock:
            self._rows = []


class ListStorePlugin:
    """Answers ``list://`` URLs with a new :class:`ListStore`."""

    def __init__(self) -> None:
        self.opened: list[ListStore] = []

    @hookimpl
    def authcore_session_store(self, url: str) -> SessionStore | None:
        if url != "list://":
            return None
        store = ListStore()
        self.opened.append(store)
        return store


def _manager(plugin: ListStorePlugin) -> AuthManager:
    plugins = create_plugin_manager()
    plugins.register(plugin)
    config = parse_config({"sessions": {"store": "list://"}, "providers": [{"name": "dummy"}]})
    return AuthManager(config, plugin_manager=plugins)


class TestListStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self) -> Iterator[SessionStore]:
        plugins = create_plugin_manager()
        plugins.register(ListStorePlugin())
        store = plugins.hook.authcore_session_store(url="list://")  # as the manager asks for it
        assert isinstance(store, ListStore)
        yield store
        store.close()


def test_the_hook_supplies_the_managers_store() -> None:
    plugin = ListStorePlugin()
    with _manager(plugin) as manager:
        assert len(plugin.opened) == 1
        store = plugin.opened[0]
        result = manager.login("dummy", login="alice", password="Admin")
        record = store.get(result.session_id)
        assert record is not None and record.login == "alice" and record.provider == "dummy"
        renewed = manager.refresh(result.refresh_token)
        manager.logout(renewed.refresh_token)
        with pytest.raises(InvalidToken):
            manager.verify(renewed.access_token)
        assert store.peek(result.session_id) is not None and store.peek(result.session_id).revoked  # type: ignore[union-attr]


def test_a_scheme_no_plugin_answers_is_a_config_error() -> None:
    from authcore import ConfigError

    with pytest.raises(ConfigError, match="no session store for scheme 'nothere'"):
        AuthManager.from_config({"sessions": {"store": "nothere://x"}, "providers": [{"name": "dummy"}]})
