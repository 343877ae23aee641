"""Sessions: rotation, reuse detection, sliding and absolute expiry, revocation, both stores, several processes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authcore.config import SessionConfig, TokenConfig
from authcore.errors import ConfigError, InvalidToken, TokenExpired
from authcore.sessions import (
    MemorySessionStore,
    RefreshTokenReused,
    SessionRecord,
    Sessions,
    SessionStore,
    SQLiteSessionStore,
    hash_refresh_token,
    open_store,
)
from authcore.tokens import TokenService

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


# --------------------------------------------------------------------------- basics


def test_start(sessions: Sessions) -> None:
    record, token = start(sessions)
    assert token.startswith("rt_") and len(token) == 46 and set(token[3:]) <= URLSAFE
    assert len(record.session_id) == 22 and set(record.session_id) <= URLSAFE
    assert record.login == "alice" and record.provider == "dummy" and record.identity == IDENTITY
    assert record.created_at == record.last_used_at == NOW
    assert record.idle_expires_at == NOW + IDLE and record.absolute_expires_at == NOW + LIFETIME
    assert not record.revoked and record.active(NOW)
    assert sessions.get(record.session_id) == record
    assert sessions.is_active(record.session_id, now=NOW)
    other_record, other_token = start(sessions)
    assert other_record.session_id != record.session_id and other_token != token


def test_store_flags_and_protocol(store: SessionStore) -> None:
    assert isinstance(store, SessionStore)
    if isinstance(store, MemorySessionStore):
        assert (store.blocking, store.shared) == (False, False)
    else:
        assert store.blocking is True
        # A private ":memory:" database is seen by no other process.
        assert store.shared is (repr(store) != "SQLiteSessionStore(':memory:')")


def test_identity_is_a_copy(sessions: Sessions) -> None:
    record, _ = start(sessions)
    record.identity["groups"].append("admin")
    fetched = sessions.get(record.session_id)
    assert fetched is not None and fetched.identity["groups"] == ["staff"]


def test_update_identity(sessions: Sessions) -> None:
    record, token = start(sessions)
    sessions.store.update_identity(record.session_id, {"login": "alice", "groups": ["admin"]})
    fetched = sessions.get(record.session_id)
    assert fetched is not None and fetched.identity == {"login": "alice", "groups": ["admin"]}
    refreshed, _ = sessions.refresh(token, now=NOW + 1)
    assert refreshed.identity == {"login": "alice", "groups": ["admin"]}
    with pytest.raises(InvalidToken):
        sessions.store.update_identity("no-such-session", {})
    with pytest.raises((TypeError, ValueError)):
        sessions.store.update_identity(record.session_id, {"not json": object()})


def test_duplicate_session_or_hash_is_refused(store: SessionStore) -> None:
    record = SessionRecord("sid", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20)
    store.create(record, hash_refresh_token("rt_a"))
    with pytest.raises(ValueError):
        store.create(record, hash_refresh_token("rt_b"))
    with pytest.raises(ValueError):
        store.create(SessionRecord("other", "bob", "p", {}, NOW, NOW, NOW + 10, NOW + 20), hash_refresh_token("rt_a"))
    with pytest.raises(ValueError):
        store.create(SessionRecord("third", "bob", "p", {}, NOW, NOW, NOW + 10, NOW + 20), b"short")
    assert store.get("other") is None and store.get("third") is None


def test_purge_runs_every_thousand_creates(store: SessionStore) -> None:
    sessions = Sessions(store, SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))
    first, _ = start(sessions, now=NOW)
    for index in range(999):
        start(sessions, now=NOW + 1000 + index)  # the 1000th create purges, at its own time
    assert sessions.get(first.session_id) is None


def test_record_repr_hides_identity(sessions: Sessions) -> None:
    record, token = start(sessions)
    text = repr(record) + str(record)
    assert "alice" in text and record.session_id in text
    assert "upstream-secret-value" not in text and "staff" not in text and token not in text
    assert token not in repr(sessions) + repr(sessions.store)


def test_unknown_session(sessions: Sessions) -> None:
    assert sessions.get("nope") is None
    assert not sessions.is_active("nope", now=NOW)
    assert sessions.revoke("nope") is False


# --------------------------------------------------------------------------- rotation and reuse


def test_refresh_rotates(sessions: Sessions) -> None:
    record, first = start(sessions)
    refreshed, second = sessions.refresh(first, now=NOW + 10)
    assert second != first and second.startswith("rt_")
    assert refreshed.session_id == record.session_id
    assert refreshed.last_used_at == NOW + 10 and refreshed.idle_expires_at == NOW + 10 + IDLE
    _, third = sessions.refresh(second, now=NOW + 20)
    _, fourth = sessions.refresh(third, now=NOW + 30)
    assert len({first, second, third, fourth}) == 4
    assert sessions.is_active(record.session_id, now=NOW + 30)


def test_reuse_revokes_the_session(sessions: Sessions, caplog: pytest.LogCaptureFixture) -> None:
    record, first = start(sessions)
    _, second = sessions.refresh(first, now=NOW + 1)
    with caplog.at_level(logging.WARNING, logger="authcore.sessions"), pytest.raises(InvalidToken) as caught:
        sessions.refresh(first, now=NOW + 2)  # the old token again: theft assumed
    # An InvalidToken that names the session, so the manager can drop its cached access tokens.
    assert type(caught.value) is RefreshTokenReused and caught.value.session_id == record.session_id
    assert record.session_id not in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).session_id == record.session_id
    assert first not in str(caught.value) and second not in str(caught.value)
    assert any("reuse" in message and first not in message for message in caplog.messages)
    fetched = sessions.get(record.session_id)
    assert fetched is not None and fetched.revoked
    assert not sessions.is_active(record.session_id, now=NOW + 2)
    # The newest token stops working too.
    with pytest.raises(InvalidToken) as newest:
        sessions.refresh(second, now=NOW + 3)
    assert type(newest.value) is InvalidToken


def test_reuse_of_an_older_token_in_a_chain(sessions: Sessions) -> None:
    record, first = start(sessions)
    _, second = sessions.refresh(first, now=NOW + 1)
    _, third = sessions.refresh(second, now=NOW + 2)
    with pytest.raises(InvalidToken):
        sessions.refresh(first, now=NOW + 3)
    with pytest.raises(InvalidToken):
        sessions.refresh(third, now=NOW + 4)
    assert not sessions.is_active(record.session_id, now=NOW + 4)


def test_reuse_after_expiry_still_revokes(sessions: Sessions) -> None:
    record, first = start(sessions)
    sessions.refresh(first, now=NOW + 1)
    with pytest.raises(InvalidToken):
        sessions.refresh(first, now=NOW + LIFETIME + 5)
    fetched = sessions.get(record.session_id)
    assert fetched is not None and fetched.revoked


def test_reuse_does_not_touch_other_sessions(sessions: Sessions) -> None:
    _, first = start(sessions)
    other, other_token = start(sessions, login="bob")
    sessions.refresh(first, now=NOW + 1)
    with pytest.raises(InvalidToken):
        sessions.refresh(first, now=NOW + 2)
    assert sessions.is_active(other.session_id, now=NOW + 2)
    assert sessions.refresh(other_token, now=NOW + 3)[0].login == "bob"


def test_concurrent_refresh_of_one_token(sessions: Sessions) -> None:
    # Switch threads as often as possible so that an unguarded check-then-swap would interleave.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(40):
            _race_one_token(sessions)
    finally:
        sys.setswitchinterval(previous)


def _race_one_token(sessions: Sessions) -> None:
    record, token = start(sessions)
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            sessions.refresh(token, now=NOW + 1)
            outcome = "won"
        except TokenExpired:
            outcome = "expired"
        except InvalidToken:
            outcome = "refused"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused"] * 7 + ["won"]
    fetched = sessions.get(record.session_id)
    assert fetched is not None and fetched.revoked  # the losers were reuse


def test_many_threads_many_sessions(sessions: Sessions) -> None:
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for round_ in range(15):
                record, token = start(sessions, login=f"user{index}")
                for step in range(3):
                    record, token = sessions.refresh(token, now=NOW + step + 1)
                assert sessions.is_active(record.session_id, now=NOW + 5)
                if round_ % 2:
                    assert sessions.revoke(record.session_id)
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sessions.store.purge(NOW + 5) == 8 * 7  # the revoked ones


# --------------------------------------------------------------------------- expiry


def test_idle_expiry_slides(sessions: Sessions) -> None:
    record, token = start(sessions)
    assert sessions.is_active(record.session_id, now=NOW + IDLE - 1)
    assert not sessions.is_active(record.session_id, now=NOW + IDLE)
    record, token = sessions.refresh(token, now=NOW + 90)
    assert record.idle_expires_at == NOW + 90 + IDLE
    assert sessions.is_active(record.session_id, now=NOW + 180)  # beyond the first idle deadline
    record, token = sessions.refresh(token, now=NOW + 180)
    assert record.idle_expires_at == NOW + LIFETIME  # capped: 280 > 250
    # Idle too long: the next refresh is too late.
    record2, token2 = start(sessions, now=NOW)
    with pytest.raises(TokenExpired):
        sessions.refresh(token2, now=NOW + IDLE)
    assert not sessions.is_active(record2.session_id, now=NOW + IDLE)


def test_absolute_lifetime_caps(sessions: Sessions) -> None:
    record, token = start(sessions)
    for moment in (90, 180, 240, 249):
        record, token = sessions.refresh(token, now=NOW + moment)
        assert record.idle_expires_at == min(NOW + moment + IDLE, NOW + LIFETIME)
    assert sessions.is_active(record.session_id, now=NOW + LIFETIME - 0.001)
    assert not sessions.is_active(record.session_id, now=NOW + LIFETIME)
    with pytest.raises(TokenExpired) as caught:
        sessions.refresh(token, now=NOW + LIFETIME)
    assert token not in str(caught.value)


def test_idle_longer_than_lifetime_is_capped(store: SessionStore) -> None:
    sessions = Sessions(store, SessionConfig(idle_timeout=1000, max_lifetime=50))
    record, _ = sessions.start(login="a", provider="p", identity={}, now=NOW)
    assert record.idle_expires_at == record.absolute_expires_at == NOW + 50


def test_record_active() -> None:
    record = SessionRecord("s", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20)
    assert record.active(NOW + 9.9) and not record.active(NOW + 10)
    late = SessionRecord("s", "alice", "p", {}, NOW, NOW, NOW + 30, NOW + 20)
    assert not late.active(NOW + 20)
    revoked = SessionRecord("s", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20, revoked=True)
    assert not revoked.active(NOW)
    assert hash(record) == hash(SessionRecord("s", "alice", "p", {"x": 1}, NOW, NOW, NOW + 10, NOW + 20))


# --------------------------------------------------------------------------- revoke and purge


def test_revoke(sessions: Sessions) -> None:
    record, token = start(sessions)
    assert sessions.revoke(record.session_id) is True
    assert sessions.revoke(record.session_id) is False
    assert not sessions.is_active(record.session_id, now=NOW)
    with pytest.raises(InvalidToken) as caught:
        sessions.refresh(token, now=NOW + 1)
    assert type(caught.value) is InvalidToken  # ended, not expired
    fetched = sessions.get(record.session_id)
    assert fetched is not None and fetched.revoked


def test_peek_is_get_without_the_identity(sessions: Sessions) -> None:
    record, token = start(sessions)
    assert sessions.peek("no-such-session") is None
    peeked = sessions.peek(record.session_id)
    assert peeked is not None and peeked.identity == {}
    assert dataclasses.replace(peeked, identity=IDENTITY) == sessions.get(record.session_id)
    rotated, _ = sessions.refresh(token, now=NOW + 10)  # times change: peek follows them
    peeked = sessions.peek(record.session_id)
    assert peeked is not None and peeked.idle_expires_at == rotated.idle_expires_at
    sessions.revoke(record.session_id)
    peeked = sessions.peek(record.session_id)
    assert peeked is not None and peeked.revoked


def test_purge(sessions: Sessions) -> None:
    revoked, _ = start(sessions)
    expired, expired_token = start(sessions, now=NOW - 500)
    alive, alive_token = start(sessions)
    rotated, first = start(sessions)
    _, second = sessions.refresh(first, now=NOW + 1)
    sessions.revoke(revoked.session_id)
    assert sessions.store.purge(NOW + 2) == 2
    assert sessions.get(revoked.session_id) is None and sessions.get(expired.session_id) is None
    assert sessions.get(alive.session_id) is not None and sessions.get(rotated.session_id) is not None
    with pytest.raises(InvalidToken):
        sessions.refresh(expired_token, now=NOW + 3)  # gone: now simply unknown
    assert sessions.refresh(alive_token, now=NOW + 3)[0].session_id == alive.session_id
    assert sessions.refresh(second, now=NOW + 3)[0].session_id == rotated.session_id
    assert sessions.store.purge(NOW + 3) == 0
    assert sessions.store.purge(NOW + 10_000) == 2


# --------------------------------------------------------------------------- malformed refresh tokens


@pytest.mark.parametrize(
    "token",
    [
        "",
        "rt_",
        "rt_" + "A" * 10_000,
        "x" * 1_000_000,
        "rt_é" + "A" * 42,
        "rt_\x00" + "A" * 42,
        "rt_" + "A" * 42 + "\x00",
        "RT_" + "A" * 43,
        "xx_" + "A" * 43,
        "A" * 46,
        " rt_" + "A" * 43,
        "rt_" + "A" * 43,  # the right shape, but nobody's token
        "\udcff",
        None,
        b"rt_AAAA",
        46,
        ["rt_AAAA"],
    ],
)
def test_malformed_refresh_tokens(sessions: Sessions, token: Any) -> None:
    start(sessions)
    with pytest.raises(InvalidToken) as caught:
        sessions.refresh(token, now=NOW + 1)
    assert type(caught.value) is InvalidToken
    well_formed = isinstance(token, str) and token.startswith("rt_") and len(token) < 100 and token.isascii()
    # Refused by shape before any hashing or store lookup, except the one well-formed stranger.
    assert ("malformed" in str(caught.value)) is not well_formed
    if isinstance(token, str) and len(token) > 4:
        assert token not in str(caught.value)


def test_access_token_is_not_a_refresh_token(sessions: Sessions) -> None:
    record, refresh_token = start(sessions)
    tokens = TokenService(TokenConfig(secret="x" * 40))
    access = tokens.issue({"sub": "alice", "sid": record.session_id, "exp": NOW + 60}, now=NOW)
    with pytest.raises(InvalidToken):
        sessions.refresh(access, now=NOW + 1)
    with pytest.raises(InvalidToken):
        sessions.refresh("rt_" + access, now=NOW + 1)
    assert sessions.refresh(refresh_token, now=NOW + 1)  # untouched by the attempts


def test_refresh_token_with_the_prefix_but_wrong_content_does_not_revoke(sessions: Sessions) -> None:
    record, token = start(sessions)
    with pytest.raises(InvalidToken):
        sessions.refresh(token[:-1] + ("A" if token[-1] != "A" else "B"), now=NOW + 1)
    assert sessions.is_active(record.session_id, now=NOW + 1)


# --------------------------------------------------------------------------- SQLite


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


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://:password@host/1", "postgresql+psycopg://x/y"])
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
