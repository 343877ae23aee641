"""Calls held for the next round trip (:mod:`authcore.sessions.held`) on the Redis store's
blocking client, against a real redis-server: a worker thread's login through a provider that
waits makes two round trips (the throttle's reservation, then the new session with the
settle), the held session's reply is checked before the next call's is used, a Redis that
lost its scripts or went away mid-block answers as ever, and nothing secret reaches a log.
The conformance suite's held-call tests run on every store (testing/session_store_calls.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from authcore import AuthManager, Credentials, Identity, InvalidCredentials, PasswordCredentials, Provider
from authcore.errors import ProviderUnavailable, Throttled
from authcore.sessions import SessionRecord, hash_refresh_token, open_store
from authcore.sessions.held import held_calls
from authcore.sessions.redis import RedisSessionStore
from authcore.testing.redis_server import RedisServer, start_redis
from authcore.web.common import LoginBody
from authcore.web.fastapi import FastAPIAuth
from authcore.web.settings import WebSettings
from authcore.web.throttle import Throttle

NOW = 1_700_000_000.0
SECRET = "held-calls-test-secret-" + "h" * 40


class Directory(Provider):
    """A provider that waits on a server (LDAP, say): its logins run in a worker thread."""

    type = "directory"
    blocking = True

    def authenticate(self, credentials: Credentials) -> Identity:
        assert isinstance(credentials, PasswordCredentials)
        if credentials.password.get_secret_value() != "right":
            raise InvalidCredentials()
        return Identity(login=credentials.login, permissions=("read",))


#: Commands of a connection's own (set up on connect, health checks) and of the revocation
#: feed's subscription, which a manager's thread sends when it will: not a call of the store's.
NOT_THE_STORES = {b"SUBSCRIBE", b"PSUBSCRIBE", b"UNSUBSCRIBE", b"PING", b"CLIENT", b"HELLO", b"AUTH", b"SELECT"}


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write of the store's calls by redis-py's blocking clients from now on (one a round trip), as sent."""
    from redis.connection import AbstractConnection

    sent: list[bytes] = []
    send = AbstractConnection.send_packed_command

    def observed(connection: AbstractConnection, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(command)
        if packed.split(b"\r\n", 3)[2].upper() not in NOT_THE_STORES:  # *<n>, $<len>, the command's name
            sent.append(packed)
        send(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", observed)  # observed, not replaced
    return sent


def store_on(server: RedisServer) -> RedisSessionStore:
    store = open_store(f"{server.url}?prefix=h{uuid.uuid4().hex[:12]}:")
    assert isinstance(store, RedisSessionStore)
    return store


def record(session_id: str, login: str = "alice") -> SessionRecord:
    return SessionRecord(session_id, login, "p", {"login": login}, NOW, NOW, NOW + 100, NOW + 200)


def test_a_held_session_goes_with_the_next_call(shared_redis: RedisServer, round_trips: list[bytes]) -> None:
    store = store_on(shared_redis)
    store.get("warm-up")  # connects
    round_trips.clear()
    with held_calls():
        store.create(record("s1"), hash_refresh_token("rt_1"))
        assert round_trips == []  # held
        found = store.get("s1")
    assert found is not None and found.login == "alice"
    assert len(round_trips) == 1 and round_trips[0].count(b"EVAL") == 1 and b"HMGET" in round_trips[0]
    store.close()


def test_what_is_still_held_is_sent_when_the_block_ends(shared_redis: RedisServer, round_trips: list[bytes]) -> None:
    store = store_on(shared_redis)
    store.get("warm-up")
    round_trips.clear()
    with held_calls():
        store.create(record("s1"), hash_refresh_token("rt_1"))
        store.create(record("s2", "bob"), hash_refresh_token("rt_2"))
    assert len(round_trips) == 1 and round_trips[0].count(b"EVAL") == 2
    assert [store.session_of(hash_refresh_token(token)) for token in ("rt_1", "rt_2")] == ["s1", "s2"]
    store.close()


def test_a_held_session_survives_a_redis_that_lost_its_scripts(shared_redis: RedisServer) -> None:
    """The held call is sent as the script's text, so a flushed script cache cannot answer
    NOSCRIPT in the middle of a pipeline whose later calls Redis has run."""
    store = store_on(shared_redis)
    store.create(record("before"), hash_refresh_token("rt_0"))  # the scripts loaded
    with redis.Redis(host="127.0.0.1", port=shared_redis.port) as raw:
        raw.script_flush()
    with held_calls():
        store.create(record("s1"), hash_refresh_token("rt_1"))
        assert store.counts(["k"], now=NOW)[0].hits == 0  # a script call sent with it (its text too)
    assert store.get("s1") is not None
    store.close()


def test_a_refused_held_session_raises_before_the_next_calls_answer_is_used(shared_redis: RedisServer) -> None:
    store = store_on(shared_redis)
    store.create(record("dup"), hash_refresh_token("rt_dup"))
    with pytest.raises(ValueError), held_calls():
        store.create(record("dup"), hash_refresh_token("rt_other"))
        store.hit(["k"], [5], window=60, now=NOW)  # sent with it; its count made, the create's error raised
    assert store.session_of(hash_refresh_token("rt_other")) is None
    store.close()


def test_redis_gone_mid_block_is_unavailable_and_logs_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis(tmp_path / "redis", password="held-pw-Secret")
    store = open_store(f"redis://:held-pw-Secret@127.0.0.1:{server.port}/0?prefix=h:")
    try:
        store.get("warm-up")
        with caplog.at_level(logging.DEBUG), pytest.raises(ProviderUnavailable) as caught, held_calls():
            store.create(record("s1"), hash_refresh_token("rt_secret_refresh"))
            server.stop()
        assert str(caught.value) == "session store unavailable"
        assert "held-pw-Secret" not in caplog.text + repr(caught.value) + repr(store)
        assert "rt_secret_refresh" not in caplog.text
    finally:
        server.stop()
        store.close()


@pytest.fixture
def directory_site(shared_redis: RedisServer) -> Iterator[tuple[AuthManager, Any]]:
    config = {
        "providers": [{"name": "directory", "class": f"{__name__}:Directory"}, {"name": "dummy", "type": "dummy"}],
        "sessions": {"store": f"{shared_redis.url}?prefix=h{uuid.uuid4().hex[:12]}:"},
        "tokens": {"secret": SECRET},
    }
    with AuthManager.from_config(config) as manager:
        throttle = Throttle(max_per_login=3, max_per_address=100, window=600)
        yield manager, FastAPIAuth(manager, WebSettings(cookie_auth=False, throttle=throttle)).core


def body(password: str, login: str = "dora") -> LoginBody:
    return LoginBody.model_validate({"plugin": "directory", "login": login, "password": password})


def test_a_worker_threads_login_takes_two_round_trips(
    directory_site: tuple[AuthManager, Any], round_trips: list[bytes]
) -> None:
    """The throttle's reservation before the provider is asked, then the new session with the
    settle: one round trip fewer than the three it took."""
    manager, core = directory_site
    assert manager.login_waits("directory") == "thread"
    core.login(body("right"), "192.0.2.1")  # connects, loads the scripts
    round_trips.clear()
    result = core.login(body("right"), "192.0.2.1")
    assert len(round_trips) == 2, [trip[:40] for trip in round_trips]
    assert manager.verify(result.access_token).login == "dora"


def test_a_worker_threads_login_is_still_throttled(directory_site: tuple[AuthManager, Any]) -> None:
    """Failures count, the limit holds for the right password too, and the refused login's
    session, held and sent with the settle that refused it, is ended."""
    manager, core = directory_site
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            core.login(body("wrong", "éric"), "192.0.2.2")
    with pytest.raises(Throttled) as refused:
        core.login(body("right", "éric"), "192.0.2.2")
    assert "right" not in str(refused.value)
    assert manager.sessions_of("éric") == []


def test_a_login_off_the_event_loop_takes_one_round_trip(
    directory_site: tuple[AuthManager, Any], round_trips: list[bytes]
) -> None:
    """A WSGI host (Flask, Django) calls the login in its own thread, with the blocking client:
    through a provider that does not wait, the new session and the settle go in one round trip."""
    manager, core = directory_site
    dummy = LoginBody.model_validate({"plugin": "dummy", "login": "flo", "password": "read"})
    core.login(dummy, "192.0.2.3")  # connects, loads the scripts
    round_trips.clear()
    result = core.login(dummy, "192.0.2.3")
    assert len(round_trips) == 1, [trip[:40] for trip in round_trips]
    assert manager.verify(result.access_token).login == "flo"
