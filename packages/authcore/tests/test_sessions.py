"""Sessions: rotation, reuse detection, sliding and absolute expiry, revocation, both stores, several processes."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authcore.config import SessionConfig
from authcore.errors import ConfigError, InvalidToken
from authcore.sessions import (
    MemorySessionStore,
    SessionRecord,
    Sessions,
    SessionStore,
    SQLiteSessionStore,
    hash_refresh_token,
    open_store,
)
from authcore.testing import SessionStoreConformance
from authcore.testing.race import outcomes, race

NOW = 1_700_000_000.0
IDLE = 100.0
LIFETIME = 250.0
URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
IDENTITY = {"login": "alice", "groups": ["staff"], "session_state": {"upstream_refresh": "upstream-secret-value"}}


@pytest.fixture(params=["memory", "sqlite", "sqlite-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    made: SessionStore
    if request.param == "memory":
        made = MemorySessionStore()
    elif request.param == "sqlite":
        made = SQLiteSessionStore(tmp_path / "sessions.db")
    else:
        made = SQLiteSessionStore(":memory:")
    yield made
    made.close()


@pytest.fixture
def sessions(store: SessionStore) -> Sessions:
    return Sessions(store, SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))


def start(sessions: Sessions, now: float = NOW, login: str = "alice") -> tuple[SessionRecord, str]:
    return sessions.start(login=login, provider="dummy", identity=json.loads(json.dumps(IDENTITY)), now=now)


# --------------------------------------------------------------------------- the contract, per built-in store


class TestMemoryStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self) -> Iterator[SessionStore]:
        store = MemorySessionStore()
        yield store
        store.close()


class TestSQLiteStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self, tmp_path: Path) -> Iterator[SessionStore]:
        store = SQLiteSessionStore(tmp_path / "sessions.db")
        yield store
        store.close()


class TestSQLiteInMemoryStore(SessionStoreConformance):
    @pytest.fixture
    def session_store(self) -> Iterator[SessionStore]:
        store = SQLiteSessionStore(":memory:")
        yield store
        store.close()


# --------------------------------------------------------------------------- what only the built-in stores do


def test_store_flags_and_protocol(store: SessionStore) -> None:
    assert isinstance(store, SessionStore)
    if isinstance(store, MemorySessionStore):
        assert (store.blocking, store.shared) == (False, False)
    else:
        assert store.blocking is True
        # A private ":memory:" database is seen by no other process.
        assert store.shared is (repr(store) != "SQLiteSessionStore(':memory:')")


def test_purge_runs_every_thousand_creates(store: SessionStore) -> None:
    sessions = Sessions(store, SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))
    first, _ = start(sessions, now=NOW)
    for index in range(999):
        start(sessions, now=NOW + 1000 + index)  # the 1000th create purges, at its own time
    assert sessions.get(first.session_id) is None


def test_record_active() -> None:
    record = SessionRecord("s", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20)
    assert record.active(NOW + 9.9) and not record.active(NOW + 10)
    late = SessionRecord("s", "alice", "p", {}, NOW, NOW, NOW + 30, NOW + 20)
    assert not late.active(NOW + 20)
    revoked = SessionRecord("s", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20, revoked=True)
    assert not revoked.active(NOW)
    assert hash(record) == hash(SessionRecord("s", "alice", "p", {"x": 1}, NOW, NOW, NOW + 10, NOW + 20))


def test_sqlite_stores_only_hashes(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.db")
    sessions = Sessions(store, SessionConfig())
    _, token = sessions.start(login="alice", provider="dummy", identity={}, now=NOW)
    _, newer = sessions.refresh(token, now=NOW + 1)
    store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert token.encode() not in raw and newer.encode() not in raw
    assert token[3:].encode() not in raw
    assert hash_refresh_token(newer) in raw  # what is stored instead


def test_sqlite_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    config = SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME)
    first = Sessions(SQLiteSessionStore(path), config)
    record, token = start(first)
    _, second_token = first.refresh(token, now=NOW + 1)
    first.store.close()
    with pytest.raises(RuntimeError):
        first.get(record.session_id)

    reopened = Sessions(SQLiteSessionStore(path), config)
    fetched = reopened.get(record.session_id)
    assert fetched is not None and fetched.identity == IDENTITY and fetched.last_used_at == NOW + 1
    reopened.refresh(second_token, now=NOW + 2)
    # Reuse detection survived the restart as well.
    with pytest.raises(InvalidToken):
        reopened.refresh(token, now=NOW + 3)
    assert not reopened.is_active(record.session_id, now=NOW + 3)
    reopened.store.close()


def test_sqlite_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path)
    Sessions(store, SessionConfig()).start(login="a", provider="p", identity={})
    for file in tmp_path.iterdir():  # the database and its -wal / -shm companions
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    assert {file.name for file in tmp_path.iterdir()} >= {"sessions.db", "sessions.db-wal"}
    store.close()


def test_sqlite_warns_about_a_readable_existing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sessions.db"
    path.touch()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="authcore.sessions"):
        SQLiteSessionStore(path).close()
    assert any("chmod 600" in message for message in caplog.messages)


def test_sqlite_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SQLiteSessionStore(tmp_path / "absent" / "sessions.db")


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    import sqlite3

    SQLiteSessionStore(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


_CHILD = textwrap.dedent(
    """
    import json, sys
    from authcore.config import SessionConfig
    from authcore.errors import InvalidToken
    from authcore.sessions import SQLiteSessionStore, Sessions

    request = json.loads(sys.stdin.read())
    store = SQLiteSessionStore(request["path"])
    sessions = Sessions(store, SessionConfig(idle_timeout=100, max_lifetime=250))
    result = {}
    if "revoke" in request:
        result["revoked"] = sessions.revoke(request["revoke"])
    if "refresh" in request:
        try:
            record, token = sessions.refresh(request["refresh"], now=request["now"])
            result["refreshed"] = token
        except InvalidToken as exc:
            result["error"] = type(exc).__name__
    if "check" in request:
        result["active"] = sessions.is_active(request["check"], now=request["now"])
    store.close()
    print(json.dumps(result))
    """
)


def _child(request: dict[str, Any]) -> subprocess.Popen[str]:
    # Tokens travel on stdin, never on a command line other users could read.
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(request))
    process.stdin.close()
    return process


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def test_two_processes_see_each_others_revocation(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    sessions = Sessions(SQLiteSessionStore(path), SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))
    mine, _ = start(sessions)
    theirs, _ = start(sessions)
    # The other process revokes a session: this one sees it at once.
    assert _result(_child({"path": path, "revoke": mine.session_id})) == {"revoked": True}
    assert not sessions.is_active(mine.session_id, now=NOW)
    # This process revokes one: the other process sees it.
    sessions.revoke(theirs.session_id)
    assert _result(_child({"path": path, "check": theirs.session_id, "now": NOW})) == {"active": False}
    sessions.store.close()


def test_two_processes_rotation_and_reuse(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    sessions = Sessions(SQLiteSessionStore(path), SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))
    record, token = start(sessions)
    # Four processes race to refresh the same token: exactly one wins, the rest are reuse.
    children = [_child({"path": path, "refresh": token, "now": NOW + 1}) for _ in range(4)]
    results = [_result(child) for child in children]
    winners = [result["refreshed"] for result in results if "refreshed" in result]
    assert len(winners) == 1
    assert sorted(result.get("error", "") for result in results) == ["", *["RefreshTokenReused"] * 3]
    assert not sessions.is_active(record.session_id, now=NOW + 1)
    with pytest.raises(InvalidToken):
        sessions.refresh(winners[0], now=NOW + 2)
    sessions.store.close()


def test_sqlite_memory_store_is_private() -> None:
    first, second = SQLiteSessionStore(":memory:"), SQLiteSessionStore(":memory:")
    record, _ = Sessions(first, SessionConfig()).start(login="a", provider="p", identity={})
    assert second.get(record.session_id) is None and first.get(record.session_id) is not None
    first.close()
    second.close()


# --------------------------------------------------------------------------- URLs


def test_open_store_memory() -> None:
    assert isinstance(open_store("memory://"), MemorySessionStore)
    assert isinstance(open_store("MEMORY://"), MemorySessionStore)


def test_open_store_sqlite_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db")
    assert isinstance(store, SQLiteSessionStore)
    assert (tmp_path / "relative.db").exists()
    store.close()
    (tmp_path / "sub").mkdir()
    nested = open_store("sqlite:///sub/nested.db")
    assert nested is not None and (tmp_path / "sub" / "nested.db").exists()
    nested.close()


def test_open_store_sqlite_absolute(tmp_path: Path) -> None:
    target = tmp_path / "absolute.db"
    store = open_store(f"sqlite:///{target}")  # target starts with "/": four slashes in all
    assert isinstance(store, SQLiteSessionStore) and target.exists()
    assert store.shared
    store.close()


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:"])
def test_open_store_sqlite_memory(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteSessionStore) and not store.shared
    store.close()


@pytest.mark.parametrize("url", ["mongodb://x/y", "memcached://h/0", "postgresql+psycopg://x/y"])
def test_open_store_unknown_scheme(url: str) -> None:
    assert open_store(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "",
        "memory",
        "memory:",
        "memory://extra",
        "sqlite:",
        "sqlite:/x.db",
        "sqlite://",
        "sqlite:///",
        "sqlite:////",
        "sqlite://host/db.sqlite",
        "sqlite:///a.db?mode=ro",
        "sqlite:///dir/",
        "://nothing",
        "1abc://x",
        "redis:/:hunter2@host",
    ],
)
def test_open_store_malformed(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert "hunter2" not in str(caught.value)
    assert not any(tmp_path.iterdir())  # nothing created on the way


def test_a_new_sqlite_file_write_locked_by_another_connection_is_waited_for(tmp_path: Path) -> None:
    """The switch to WAL is refused at once (no busy handler) while another connection holds a
    write lock on a file still in rollback mode; the store waits, and opens once it commits."""
    from authcore.testing.sqlite_locks import write_locked

    path = tmp_path / "sessions.db"
    with write_locked(path):
        store = SQLiteSessionStore(path)
    store.close()


def test_many_first_opens_of_one_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """Services starting together open one new session file at once: switching it to WAL answers
    "database is locked" without waiting for the busy timeout, so the store retries (seen in CI:
    8 managers starting on one development state directory)."""
    for attempt in range(20):
        path = tmp_path / f"sessions-{attempt}.db"
        results = race(lambda _, target=path: SQLiteSessionStore(target).close(), 16)
        assert outcomes(results) == {"ok": 16}, results
