"""The Redis session store against Debian's real ``redis-server``, started by fixtures on free loopback ports.

* The whole session-store conformance suite, unchanged, on one module-wide server (a fresh
  key prefix per test), again through a password-protected server, and through a real Sentinel;
  over TLS (a throwaway CA); and on one server, the password-protected one and over TLS with
  every call made as an async adapter makes it, on its event loop (test_redis_loop.py).
* TLS: a certificate from another CA, or for another name, is refused on both paths.
* URL parsing: good and malformed URLs; no message or repr ever holds the password.
* Faults: Redis restarted (AOF) or killed (fsync on every write) loses nothing; Redis down or
  paused makes calls raise ProviderUnavailable (bounded by the socket timeouts), and the same
  store object works again once Redis is back.
* What Redis holds: no refresh token, session id or login in a key name, no refresh token
  anywhere; every session key has a TTL.
* Two store objects (two connection pools, as two service instances) racing on one token, and
  two AuthManagers sharing one Redis through login, refresh, reuse and logout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from authcore import AuthManager
from authcore.config import SessionConfig
from authcore.errors import ConfigError, InvalidToken, ProviderUnavailable
from authcore.sessions import RefreshTokenReused, SessionRecord, Sessions, hash_refresh_token, open_store
from authcore.sessions.redis import RETENTION_MARGIN, RedisSessionStore, key_hash
from authcore.sessions.redis_url import parse_redis_url
from authcore.testing import SessionStoreConformance
from authcore.testing import redis_server as redis_server_module
from authcore.testing.on_loop import LoopThread, calls_on_loop
from authcore.testing.redis_server import RedisServer, SentinelServer, start_redis, start_sentinel
from authcore.testing.session_store_calls import race_refreshes
from authcore.testing.tls import make_test_ca

IDLE = 100.0
LIFETIME = 250.0
PASSWORD = "pw-Secret/with:odd@chars?#%"
OpenStore = Callable[[RedisSessionStore], RedisSessionStore]


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module's tests that need no faults (each uses its own key prefix)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


def open_redis(url: str, **options: str) -> RedisSessionStore:
    query = "&".join(f"{key}={value}" for key, value in {"prefix": unique_prefix(), **options}.items())
    store = open_store(f"{url}{'&' if '?' in url else '?'}{query}")
    assert isinstance(store, RedisSessionStore)
    return store


def lifecycle(store: RedisSessionStore) -> Sessions:
    return Sessions(store, SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))


def raw_client(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


class TestRedisStore(SessionStoreConformance):
    """The conformance suite, unchanged."""

    @pytest.fixture
    def session_store(self, shared_redis: RedisServer) -> Iterator[RedisSessionStore]:
        store = open_redis(shared_redis.url)
        yield store
        store.close()

    def test_flags(self, store: RedisSessionStore) -> None:
        assert store.blocking is True and store.shared is True


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop in a thread of its own, for the store's calls an async adapter makes on its loop."""
    loop = LoopThread()
    yield loop
    loop.stop()


class TestRedisStoreOnTheEventLoop(SessionStoreConformance):
    """The conformance suite again, every call made as an async adapter makes it: bridged onto an
    event loop (authcore.sessions.redis_loop), the blocking client pointed where nothing listens."""

    @pytest.fixture
    def session_store(self, shared_redis: RedisServer, loop_thread: LoopThread) -> Iterator[RedisSessionStore]:
        store = calls_on_loop(open_redis(shared_redis.url), loop_thread, strict=True)
        assert store.awaits_on_loop
        yield store
        store.close()


class TestRedisStoreAwaitedOnTheEventLoop(SessionStoreConformance):
    """The conformance suite again, rotations awaited on the event loop without the bridge
    (``arotate``, as ``AuthManager.arefresh`` makes them), creations made in-line by a coroutine
    with their replies checked after (``collecting``, as ``WebLogin.awaited`` makes them), every
    other call bridged."""

    @pytest.fixture
    def session_store(self, shared_redis: RedisServer, loop_thread: LoopThread) -> Iterator[RedisSessionStore]:
        store = calls_on_loop(open_redis(shared_redis.url), loop_thread, strict=True, awaited=True)
        yield store
        store.close()


class TestRedisStoreWithPasswordOnTheEventLoop(SessionStoreConformance):
    """The conformance suite on the event loop through a server that requires a password, in database 3."""

    @pytest.fixture
    def session_store(self, password_redis: RedisServer, loop_thread: LoopThread) -> Iterator[RedisSessionStore]:
        store = calls_on_loop(open_redis(password_redis.url.rsplit("/", 1)[0] + "/3"), loop_thread, strict=True)
        yield store
        store.close()

    def test_the_data_is_in_database_3(self, store: RedisSessionStore, password_redis: RedisServer) -> None:
        record, _ = lifecycle(store).start(login="alice", provider="p", identity={})
        direct = redis.Redis(host="127.0.0.1", port=password_redis.port, password=PASSWORD, db=3, socket_timeout=5)
        assert direct.exists(f"{store._prefix}s:{key_hash(record.session_id)}") == 1
        direct.close()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server with a TLS port, its certificate from a throwaway CA, for 127.0.0.1 only."""
    files = make_test_ca(tmp_path_factory.mktemp("redis-ca"), hostnames=("127.0.0.1",))
    server = start_redis(tmp_path_factory.mktemp("redis-tls"), tls=files)
    yield server
    server.stop()


class TestRedisStoreOverTls(SessionStoreConformance):
    """The conformance suite over TLS (rediss://, the server checked against the test CA)."""

    @pytest.fixture
    def session_store(self, tls_redis: RedisServer) -> Iterator[RedisSessionStore]:
        store = open_redis(tls_redis.tls_url)
        yield store
        store.close()


class TestRedisStoreOverTlsOnTheEventLoop(SessionStoreConformance):
    """The conformance suite over TLS, every call made on the event loop (the blocking client away)."""

    @pytest.fixture
    def session_store(self, tls_redis: RedisServer, loop_thread: LoopThread) -> Iterator[RedisSessionStore]:
        store = calls_on_loop(open_redis(tls_redis.tls_url), loop_thread, strict=True)
        assert store.awaits_on_loop
        yield store
        store.close()


@pytest.fixture(scope="module")
def localhost_tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server whose certificate names ``localhost`` only: reached as 127.0.0.1, the name does not match."""
    files = make_test_ca(tmp_path_factory.mktemp("redis-ca-localhost"), hostnames=("localhost",))
    server = start_redis(tmp_path_factory.mktemp("redis-tls-localhost"), tls=files)
    yield server
    server.stop()


@pytest.mark.parametrize("refusal", ["unknown CA", "wrong name"])
def test_an_untrusted_tls_server_is_unavailable(
    tls_redis: RedisServer, localhost_tls_redis: RedisServer, tmp_path: Path, calls: OpenStore, refusal: str
) -> None:
    """A server certificate from another CA, or for another name: refused, on both paths; the same
    URL with that one check switched off connects (so the refusal was that check's)."""
    if refusal == "unknown CA":
        other_ca = make_test_ca(tmp_path / "other-ca").ca_file
        url, lenient = tls_redis.tls_url.split("?")[0] + f"?ssl_ca_certs={other_ca}", "ssl_cert_reqs=none"
    else:
        url, lenient = localhost_tls_redis.tls_url, "ssl_check_hostname=false"
    store = calls(open_redis(url))
    with pytest.raises(ProviderUnavailable, match=r"^session store unavailable$"):
        store.get("x")
    store.close()
    relaxed = calls(open_redis(f"{url}&{lenient}"))
    assert relaxed.get("x") is None
    relaxed.close()


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that requires :data:`PASSWORD` (AUTH on every connection)."""
    server = start_redis(tmp_path_factory.mktemp("redis-auth"), password=PASSWORD)
    yield server
    server.stop()


class TestRedisStoreWithPassword(SessionStoreConformance):
    """The conformance suite again, through a server that requires a password."""

    @pytest.fixture
    def session_store(self, password_redis: RedisServer) -> Iterator[RedisSessionStore]:
        store = open_redis(password_redis.url)
        yield store
        store.close()

    def test_password_stays_out_of_reprs(self, store: RedisSessionStore, password_redis: RedisServer) -> None:
        assert PASSWORD not in repr(store) and "pw-Secret" not in repr(store)
        assert repr(store) == f"RedisSessionStore('127.0.0.1:{password_redis.port}', prefix={store._prefix!r})"

    def test_a_wrong_password_is_unavailable_without_echoing_it(self, password_redis: RedisServer) -> None:
        store = RedisSessionStore(f"redis://:wrong-Password-123@127.0.0.1:{password_redis.port}/0")
        with pytest.raises(ProviderUnavailable) as caught:
            store.get("x")
        assert str(caught.value) == "session store unavailable"
        assert "wrong-Password-123" not in repr(caught.value) + repr(store)
        store.close()


@pytest.fixture(scope="module")
def sentinel(password_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelServer]:
    """A Sentinel naming the password-protected server the master of ``mymaster``."""
    server = start_sentinel(tmp_path_factory.mktemp("sentinel"), password_redis)
    yield server
    server.stop()


class TestRedisStoreThroughSentinel(SessionStoreConformance):
    """The conformance suite again, the master found through a real Sentinel (redis+sentinel://)."""

    @pytest.fixture
    def session_store(self, sentinel: SentinelServer) -> Iterator[RedisSessionStore]:
        store = open_redis(sentinel.url)
        yield store
        store.close()

    def test_the_data_is_on_the_master(self, store: RedisSessionStore, password_redis: RedisServer) -> None:
        record, _ = lifecycle(store).start(login="alice", provider="p", identity={})
        direct = RedisSessionStore(f"{password_redis.url}?prefix={store._prefix}")
        assert direct.get(record.session_id) == record
        assert PASSWORD not in repr(store)
        direct.close()


class TestRedisStoreThroughSentinelOnTheEventLoop(SessionStoreConformance):
    """The conformance suite through the Sentinel again, every call on the event loop (its
    connection asks the Sentinel for the master itself), rotations and creations awaited."""

    @pytest.fixture
    def session_store(self, sentinel: SentinelServer, loop_thread: LoopThread) -> Iterator[RedisSessionStore]:
        store = calls_on_loop(open_redis(sentinel.url), loop_thread, strict=True, awaited=True)
        assert store.awaits_on_loop
        yield store
        store.close()


# ------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", {"hosts": (("localhost", 6379),), "db": 0, "password": None, "prefix": "authcore:"}),
        ("REDIS://127.0.0.1:7000/3", {"scheme": "redis", "hosts": (("127.0.0.1", 7000),), "db": 3}),
        ("redis://:p%40ss%2Fw%3Ford@h:1/0", {"password": "p@ss/w?ord", "username": None}),
        ("redis://app:s3cret@h/", {"username": "app", "password": "s3cret", "db": 0}),
        ("redis://:pä$$@h", {"password": "pä$$"}),
        ("redis://[::1]:6380/2", {"hosts": (("::1", 6380),), "db": 2}),
        ("redis://h?prefix=site1:&socket_timeout=0.5", {"prefix": "site1:", "socket_timeout": 0.5}),
        ("redis://h?socket_connect_timeout=7", {"socket_connect_timeout": 7.0, "socket_timeout": 2.0}),
        ("rediss://h:6380/1?ssl_cert_reqs=none", {"scheme": "rediss", "tls": {"ssl_cert_reqs": "none"}}),
        (
            "rediss://h?ssl_ca_certs=/etc/ca.pem&ssl_check_hostname=false",
            {"tls": {"ssl_ca_certs": "/etc/ca.pem", "ssl_check_hostname": False}},
        ),
        (
            "redis+sentinel://:pw@s1:26380,s2,[::1]:26381/mymaster/4",
            {
                "scheme": "redis+sentinel",
                "hosts": (("s1", 26380), ("s2", 26379), ("::1", 26381)),
                "service": "mymaster",
                "db": 4,
                "password": "pw",
            },
        ),
        ("redis+sentinel://s1/svc.main-1", {"service": "svc.main-1", "db": 0, "min_other_sentinels": 0}),
        ("redis+sentinel://s1,s2,s3/svc?min_other_sentinels=2", {"min_other_sentinels": 2}),
        ("redis+sentinel://s1/svc/1?min_other_sentinels=0&prefix=p:", {"min_other_sentinels": 0, "db": 1}),
        ("redis+sentinel://s1/svc?min_other_sentinels=100", {"min_other_sentinels": 100}),
    ],
)  # fmt: skip
def test_good_urls(url: str, expected: dict[str, Any]) -> None:
    location = parse_redis_url(url)
    for name, value in expected.items():
        assert getattr(location, name) == value, name
    if location.password:
        assert location.password not in repr(location) + location.where()


SECRET = "Hunter2Secret"


@pytest.mark.parametrize(
    "url",
    [
        "redis://",
        "redis://:{s}@",
        "redis://:{s}@:6379/0",
        "redis://:{s}@h:0/0",
        "redis://:{s}@h:99999/0",
        "redis://:{s}@h:-1/0",
        "redis://:{s}@h:x/0",
        "redis://:{s}@h:/0",
        "redis://:{s}@h/x",
        "redis://:{s}@h/-1",
        "redis://:{s}@h/0/1",
        "redis://:{s}@h/99999999",
        "redis://:{s}@rédis.example/0",
        "redis://:{s}@h_1/0",
        "redis://:{s}@h@/0",
        "redis://:{s}@[::zz]:1/0",
        "redis://:{s}@[::1/0",
        "redis://:{s}@h,h2/0",
        "redis://{s}@h/0",
        "redis://:@h/0",
        "redis://:{s}\n@h/0",
        "redis://:{s}\x00@h/0",
        "redis://:{s}%0A@h/0",
        "redis://:{s}%00@h/0",
        "redis://:{s}%FF@h/0",
        "redis://:{s} x@h/0",
        "redis://:{s}@h/0#frag",
        "redis://:{s}@h/0?{s}",
        "redis://:{s}@h/0?{s}=1",
        "redis://:{s}@h/0?prefix=a&prefix=b",
        "redis://:{s}@h/0?prefix=",
        "redis://:{s}@h/0?prefix=a%0Ab",
        "redis://:{s}@h/0?prefix=é",
        "redis://:{s}@h/0?socket_timeout=0",
        "redis://:{s}@h/0?socket_timeout=-1",
        "redis://:{s}@h/0?socket_timeout=nan",
        "redis://:{s}@h/0?socket_timeout=inf",
        "redis://:{s}@h/0?socket_timeout=1e9",
        "redis://:{s}@h/0?socket_timeout=abc",
        "redis://:{s}@h/0?ssl_cert_reqs=none",
        "rediss://:{s}@h/0?ssl_cert_reqs=maybe",
        "rediss://:{s}@h/0?ssl_check_hostname=perhaps",
        "rediss://:{s}@h/0?ssl_ca_certs=",
        "redis+sentinel://:{s}@h:26379",
        "redis+sentinel://:{s}@h:26379/",
        "redis+sentinel://:{s}@h:26379/bad name",
        "redis+sentinel://:{s}@h:26379/svc/x",
        "redis+sentinel://:{s}@h:26379/svc/0/1",
        "redis+sentinel://:{s}@h:26379,,h2/svc",
        "redis+sentinel://:{s}@" + ",".join(["h"] * 17) + "/svc",
        "redis://:{s}@h/0?min_other_sentinels=1",  # a Sentinel option on a plain URL
        "rediss://:{s}@h/0?min_other_sentinels=1",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=-1",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=1.5",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=101",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=" + "9" * 5000,
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=two",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=%D9%A2",  # an Arabic-Indic digit
        "redis+sentinel://:{s}@h/svc?min_other_sentinels=1&min_other_sentinels=2",
        "redis+sentinel://:{s}@h/svc?min_other_sentinels={s}",
        "redis://:{s}@" + "h" * 300 + "/0",
        "redis://:{s}@h/0?" + "&".join(f"prefix{i}=1" for i in range(40)),
        "redis://:{s}@" + "a" * 5000,
        "redis:/:{s}@h/0",
        "memcached://:{s}@h/0",
    ],
)
def test_malformed_urls_are_config_errors_that_never_echo_the_password(url: str) -> None:
    url = url.format(s=SECRET)
    with pytest.raises(ConfigError) as caught:
        parse_redis_url(url)
    message = str(caught.value)
    assert message.startswith("sessions.store: ")
    assert SECRET not in message and "h:0" not in message and "rédis" not in message
    if url.startswith(("redis://", "rediss://", "redis+sentinel://")):
        with pytest.raises(ConfigError) as opened:  # open_store says the same
            open_store(url)
        assert SECRET not in str(opened.value)


@pytest.mark.parametrize("url", [None, 6379, b"redis://h"])
def test_a_url_must_be_a_string(url: Any) -> None:
    with pytest.raises(ConfigError):
        parse_redis_url(url)


def test_open_store_makes_clients_without_connecting() -> None:
    # Port 1 on loopback: nothing listens, and nothing is needed until the first call.
    plain = open_store("redis://:pw@127.0.0.1:1/2?prefix=x:")
    assert isinstance(plain, RedisSessionStore)
    kwargs = plain._client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("127.0.0.1", 1, 2, "pw")
    assert kwargs["socket_timeout"] == 2.0 and kwargs["socket_connect_timeout"] == 2.0
    with pytest.raises(ProviderUnavailable, match=r"^session store unavailable$"):
        plain.peek("anything")
    plain.close()
    tls = open_store("rediss://127.0.0.1:1/0?ssl_cert_reqs=none")
    assert isinstance(tls, RedisSessionStore)
    assert tls._client.connection_pool.connection_class is redis.SSLConnection
    assert tls._client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
    tls.close()
    sentinel = open_store(
        "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster/1?socket_timeout=0.2&min_other_sentinels=1"
    )
    assert isinstance(sentinel, RedisSessionStore)
    assert sentinel._client.connection_pool.sentinel_manager.min_other_sentinels == 1
    assert repr(sentinel) == "RedisSessionStore('sentinel 127.0.0.1:1,127.0.0.1:2/mymaster', prefix='authcore:')"
    with pytest.raises(ProviderUnavailable):  # no Sentinel answers: no master to be found
        sentinel.get("anything")
    sentinel.close()


class _Hangup:
    """A port that accepts connections and closes them at once, counting them (a Sentinel
    that is up but cannot answer: restarting, or a firewall resetting what gets through)."""

    def __init__(self) -> None:
        import socket

        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


def test_sentinels_that_cannot_answer_are_each_asked_once_per_call() -> None:
    """No retries, as for the master (a call's time is bounded by the timeouts alone): redis-py's
    default for the Sentinels' own clients, three retries with backoff, held a call 8 s."""
    sentinels = [_Hangup(), _Hangup()]
    try:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in sentinels)
        store = open_store(f"redis+sentinel://{hosts}/mymaster/0?socket_timeout=2")
        assert isinstance(store, RedisSessionStore)
        with pytest.raises(ProviderUnavailable):
            store.get("anything")
        assert [sentinel.accepted for sentinel in sentinels] == [1, 1]
        store.close()
    finally:
        for sentinel in sentinels:
            sentinel.close()


def test_importing_the_core_does_not_import_redis() -> None:
    code = (
        "import sys\n"
        "import authcore, authcore.sessions\n"
        "from authcore.sessions import open_store\n"
        "open_store('memory://')\n"
        "before = [name in sys.modules for name in ('redis', 'greenlet', 'hiredis')]\n"
        "open_store('redis://127.0.0.1:1/0')\n"
        "print(*before, 'redis' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == ["False", "False", "False", "True"]


def test_without_redis_py_a_redis_url_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if redis-py were not installed\n"
        "from authcore.errors import ConfigError\n"
        "from authcore.sessions import open_store\n"
        "try:\n"
        "    open_store('redis://:pw@127.0.0.1:1/0')\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "pip install 'authcore[redis]>=0.2'" in result.stdout and "pw" not in result.stdout


# ------------------------------------------------------------------------------ faults


def make_sessions(sessions: Sessions, count: int) -> list[tuple[SessionRecord, str]]:
    made = [sessions.start(login=f"user{i}", provider="p", identity={"n": i}) for i in range(count)]
    # Every third one rotated twice: current and used hashes must both come back.
    return [
        sessions.refresh(sessions.refresh(token)[1]) if i % 3 == 0 else (r, token) for i, (r, token) in enumerate(made)
    ]


@pytest.fixture(params=["blocking client", "event loop"])
def calls(request: pytest.FixtureRequest) -> Callable[[RedisSessionStore], RedisSessionStore]:
    """How the store is called: from plain code (redis-py's blocking client), or as an async
    adapter calls it, bridged onto its event loop (authcore.sessions.redis_loop)."""
    if request.param == "blocking client":
        return lambda store: store
    loop = request.getfixturevalue("loop_thread")
    return lambda store: calls_on_loop(store, loop, strict=True)


@pytest.mark.parametrize("how", ["restart", "crash"])
def test_no_session_is_lost_when_redis_restarts(redis_server: RedisServer, how: str, calls: OpenStore) -> None:
    store = calls(open_redis(redis_server.url))
    sessions = lifecycle(store)
    _, first_token = sessions.start(login="alice", provider="p", identity={"x": 1})
    _, second_token = sessions.refresh(first_token)
    made = make_sessions(sessions, 12)
    revoked = made[-1][0]
    sessions.revoke(revoked.session_id)
    before = {record.session_id: store.get(record.session_id) for record, _ in made}
    if how == "restart":
        redis_server.restart()
    else:
        redis_server.kill()  # no shutdown: the AOF was fsynced on every write (appendfsync always)
        redis_server.start()
    for record, token in made:
        assert store.get(record.session_id) == before[record.session_id]
        if record.session_id != revoked.session_id:
            assert sessions.refresh(token)[0].session_id == record.session_id
    with pytest.raises(InvalidToken):
        sessions.refresh(made[-1][1])  # still revoked
    with pytest.raises(RefreshTokenReused):
        sessions.refresh(first_token)  # the used hash came back too
    with pytest.raises(InvalidToken):
        sessions.refresh(second_token)
    store.close()


def every_call(store: RedisSessionStore, record: SessionRecord, token: str) -> list[tuple[str, Any]]:
    new = SessionRecord("fresh-id", "bob", "p", {}, 1.0, 1.0, 2e10, 2e10)
    refresh_hash = hash_refresh_token(token)
    return [
        ("create", lambda: store.create(new, hash_refresh_token("rt_fresh"))),
        ("get", lambda: store.get(record.session_id)),
        ("peek", lambda: store.peek(record.session_id)),
        ("rotate", lambda: store.rotate(refresh_hash, hash_refresh_token("rt_x"), now=1.5, idle_timeout=IDLE)),
        ("touch", lambda: store.touch(record.session_id, now=1.5, idle_timeout=IDLE)),
        ("revoke", lambda: store.revoke(record.session_id)),
        ("session_of", lambda: store.session_of(refresh_hash)),
        ("sessions_of", lambda: store.sessions_of("alice", now=1.5)),
        ("update_identity", lambda: store.update_identity(record.session_id, {"y": 2})),
        ("purge", lambda: store.purge(1.5)),
    ]


def test_redis_down_is_unavailable_and_the_store_recovers(redis_server: RedisServer, calls: OpenStore) -> None:
    store = calls(open_redis(redis_server.url))
    sessions = lifecycle(store)
    record, token = sessions.start(login="alice", provider="p", identity={"x": 1})
    redis_server.stop()
    for name, call in every_call(store, record, token):
        with pytest.raises(ProviderUnavailable) as caught:
            call()
        assert str(caught.value) == "session store unavailable", name
        assert str(redis_server.port) not in str(caught.value)
    with pytest.raises(ProviderUnavailable):
        sessions.refresh(token)
    with pytest.raises(ProviderUnavailable):
        sessions.start(login="bob", provider="p", identity={})
    redis_server.start()  # same port and directory: the same store object simply works again
    assert store.get(record.session_id) == record
    refreshed, _ = sessions.refresh(token)
    assert refreshed.session_id == record.session_id
    assert sessions.start(login="bob", provider="p", identity={})[0].login == "bob"
    store.close()


def test_a_paused_redis_is_unavailable_within_the_socket_timeout(redis_server: RedisServer, calls: OpenStore) -> None:
    store = calls(open_redis(redis_server.url, socket_timeout="0.3", socket_connect_timeout="0.3"))
    sessions = lifecycle(store)
    record, token = sessions.start(login="alice", provider="p", identity={"x": 1})
    redis_server.pause()
    try:
        # Reads only: a write sent to a paused server would still run once it resumes.
        for call in (lambda: store.get(record.session_id), lambda: sessions.is_active(record.session_id)):
            with pytest.raises(ProviderUnavailable, match=r"^session store unavailable$"):
                call()
    finally:
        redis_server.resume()
    assert store.get(record.session_id) == record
    assert sessions.refresh(token)[0].session_id == record.session_id
    store.close()


def test_a_missing_redis_server_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_server_module, "REDIS_SERVER", str(tmp_path / "no-redis-server"))
    with pytest.raises(RuntimeError, match="apt-get install redis-server"):
        start_redis(tmp_path / "data")


def test_a_closed_store_refuses_calls(shared_redis: RedisServer) -> None:
    store = open_redis(shared_redis.url)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.get("x")


# ------------------------------------------------------------------------------ what Redis holds


def dump(client: redis.Redis, key: bytes) -> list[bytes]:
    """Every field and value stored under *key*, whatever its type."""
    kind = client.type(key)
    found: list[Any]
    if kind == b"hash":
        found = [part for pair in client.hgetall(key).items() for part in pair]
    elif kind == b"string":
        found = [client.get(key) or b""]
    elif kind == b"set":
        found = list(client.smembers(key))
    else:
        assert kind == b"zset", kind
        found = list(client.zrange(key, 0, -1))
    return [bytes(part) for part in found]


def test_keys_hold_no_token_session_id_or_login(shared_redis: RedisServer) -> None:
    store = open_redis(shared_redis.url)
    sessions = lifecycle(store)
    tokens: list[str] = []
    ids: list[str] = []
    logins = ["alice@example.org", "Zoë", "bob"]
    for login in logins:
        record, token = sessions.start(login=login, provider="p", identity={"login": login})
        tokens.append(token)
        ids.append(record.session_id)
        for _ in range(2):
            _, token = sessions.refresh(token)
            tokens.append(token)
    sessions.revoke(ids[-1])
    client = raw_client(shared_redis)
    keys = [key for key in client.scan_iter(match=store._prefix + "*")]
    assert len(keys) >= 3 * 3 + 2  # sessions, refresh hashes, used sets, indexes
    names = b"\n".join(keys).decode()
    values = b"\n".join(part for key in keys for part in dump(client, key)).decode()
    for token in tokens:
        assert token not in names and token not in values and token[3:] not in values
        assert hash_refresh_token(token).hex() in names  # hashes, hex-encoded, are the key names
    for session_id in ids:
        assert session_id not in names and key_hash(session_id) in names
    for login in logins:
        assert login not in names
    assert all(key.startswith(store._prefix.encode()) for key in keys)
    # Every key of a session expires at its absolute end plus the margin; only the purge index is kept.
    for key in keys:
        ttl = client.pttl(key)
        if key == f"{store._prefix}sessions".encode():
            assert ttl == -1
        else:
            assert 0 < ttl <= (LIFETIME + RETENTION_MARGIN) * 1000, key
    client.close()
    store.close()


def test_revoke_leaves_the_login_index_and_purge_leaves_no_key(shared_redis: RedisServer) -> None:
    store = open_redis(shared_redis.url)
    sessions = lifecycle(store)
    client = raw_client(shared_redis)
    by_login = f"{store._prefix}l:{key_hash('alice')}"
    made = [sessions.start(login="alice", provider="p", identity={}, now=1000.0) for _ in range(3)]
    _, token = sessions.refresh(made[0][1], now=1001.0)
    sessions.refresh(token, now=1002.0)
    assert client.zcard(by_login) == 3
    sessions.revoke(made[1][0].session_id)
    assert client.zcard(by_login) == 2  # a revoked session leaves the login's list at once
    with pytest.raises(RefreshTokenReused):
        sessions.refresh(made[0][1], now=1003.0)  # reuse revokes: out of the list too
    assert client.zcard(by_login) == 1
    assert store.purge(1003.0) == 2
    assert store.purge(1000.0 + LIFETIME) == 1  # the last one, at its absolute end
    assert list(client.scan_iter(match=store._prefix + "*")) == []  # hashes, used sets, indexes: all gone
    client.close()
    store.close()


def test_sessions_whose_keys_expired_leave_nothing_behind(shared_redis: RedisServer) -> None:
    # As if the TTLs had run out: the index entries go on the next purge and listing.
    store = open_redis(shared_redis.url)
    sessions = lifecycle(store)
    record, _ = sessions.start(login="alice", provider="p", identity={}, now=1000.0)
    client = raw_client(shared_redis)
    client.delete(f"{store._prefix}s:{key_hash(record.session_id)}")
    assert store.sessions_of("alice", now=1000.0) == []
    assert client.zcard(f"{store._prefix}l:{key_hash('alice')}") == 0
    assert store.purge(10_000.0) == 0
    assert client.zcard(f"{store._prefix}sessions") == 0
    client.close()
    store.close()


def test_identity_round_trips_exactly(shared_redis: RedisServer) -> None:
    store = open_redis(shared_redis.url)
    identity = {"login": "Zoë", "groups": ["ü", "a" * 10_000], "n": 1.5, "none": None, "nested": {"k": [1, {}]}}
    record, _ = lifecycle(store).start(login="Zoë", provider="prov-ä", identity=json.loads(json.dumps(identity)))
    fetched = store.get(record.session_id)
    assert fetched == record and fetched is not None and fetched.identity == identity
    assert store.sessions_of("Zoë", now=record.created_at)[0].provider == "prov-ä"
    store.close()


# ------------------------------------------------------------------------------ two instances


def test_one_token_raced_from_two_instances(shared_redis: RedisServer) -> None:
    first = open_redis(shared_redis.url)
    second = open_store(f"{shared_redis.url}?prefix={first._prefix}")  # same data, its own connection pool
    assert isinstance(second, RedisSessionStore) and second._client is not first._client
    instances = [lifecycle(first), lifecycle(second)]
    for _ in range(20):
        record, token = instances[0].start(login="alice", provider="p", identity={})
        assert race_refreshes(instances, token) == ["refused"] * 7 + ["won"]
        seen = instances[1].get(record.session_id)
        assert seen is not None and seen.revoked  # the losers were reuse: revoked for both instances
    first.close()
    second.close()


def test_two_instances_see_each_others_changes(shared_redis: RedisServer) -> None:
    first = open_redis(shared_redis.url)
    second = open_store(f"{shared_redis.url}?prefix={first._prefix}")
    assert isinstance(second, RedisSessionStore)
    one, two = lifecycle(first), lifecycle(second)
    record, token = one.start(login="alice", provider="p", identity={"a": 1})
    other, _ = two.start(login="alice", provider="q", identity={"b": 2})
    assert [r.session_id for r in second.sessions_of("alice", now=other.created_at)] == [
        record.session_id,
        other.session_id,
    ]
    _, token = two.refresh(token)  # rotated on the other instance
    assert one.refresh(token)[0].session_id == record.session_id
    assert second.revoke(record.session_id) and not first.revoke(record.session_id)
    assert not one.is_active(record.session_id)
    assert [r.session_id for r in first.sessions_of("alice", now=other.created_at)] == [other.session_id]
    other_prefix = open_redis(shared_redis.url)  # another prefix: another site, nothing shared
    assert other_prefix.get(record.session_id) is None and other_prefix.sessions_of("alice", now=0) == []
    for store in (first, second, other_prefix):
        store.close()


def test_two_managers_share_sessions_through_redis(
    shared_redis: RedisServer, authcore_manager_factory: Callable[..., AuthManager]
) -> None:
    """The whole login, refresh and logout, each step on another AuthManager (instance) sharing one Redis."""
    config = {
        "providers": [{"name": "dummy"}],
        "tokens": {"secret": "redis-test-secret-0123456789abcdefghij"},
        "sessions": {"store": f"{shared_redis.url}?prefix={unique_prefix()}"},
    }
    first, second = authcore_manager_factory(config), authcore_manager_factory(config)
    result = first.login("dummy", login="alice", password="read")
    assert second.verify(result.access_token).login == "alice"
    refreshed = second.refresh(result.refresh_token)
    assert refreshed.session_id == result.session_id
    with pytest.raises(InvalidToken):
        first.refresh(result.refresh_token)  # reuse, seen by the other instance: the session ends
    with pytest.raises(InvalidToken):
        first.refresh(refreshed.refresh_token)
    other = second.login("dummy", login="bob", password="read")
    first.logout(other.refresh_token)
    with pytest.raises(InvalidToken):
        second.refresh(other.refresh_token)
