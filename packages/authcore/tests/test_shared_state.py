"""The SharedState contract (throttle counters, single-use claims, agreed secrets), in memory and on a real Redis.

* :class:`SharedStateContract` is run against :class:`MemorySharedState` and the Redis session
  store: counts and fixed windows with injected times, limits that count nothing once reached,
  give-back and forget, claims, agreed secrets, hostile keys. For Redis, "two instances" are two
  store objects (two connection pools) on one server and prefix.
* Redis only: key names are hashes (no raw key, login, address or state), every counter and
  claim carries a TTL, the agreed secret deliberately none; Redis down is ProviderUnavailable
  from every method, and the same store works again once Redis is back.
* The Throttle on a shared state: failures counted through one throttle refuse on another.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import redis

from authcore.errors import ProviderUnavailable, Throttled
from authcore.sessions import MemorySessionStore, open_store
from authcore.sessions.redis import RedisSessionStore
from authcore.sessions.shared import MemorySharedState, SharedState, Tally, shared_state_of
from authcore.testing.on_loop import LoopThread, calls_on_loop
from authcore.testing.redis_server import RedisServer, start_redis
from authcore.web.throttle import Throttle

WINDOW = 60.0
T0 = 1_800_000_000.0
HOSTILE_KEYS = [
    "x" * 1_000_000,
    "ＡＬＩＣＥ\u0130\u0131ß",
    "nul\x00inside",
    "\ud800lone surrogate",
    "",
    "a:10.0.0.1",
    "l:" + "f" * 32,
]


class SharedStateContract:
    """What every SharedState does; subclasses give ``pair``: two handles on one shared state."""

    @pytest.fixture
    def pair(self) -> Iterator[tuple[SharedState, SharedState]]:
        raise NotImplementedError

    @pytest.fixture
    def state(self, pair: tuple[SharedState, SharedState]) -> SharedState:
        return pair[0]

    def test_is_a_shared_state(self, state: SharedState) -> None:
        assert isinstance(state, SharedState)

    def test_hits_count_within_a_window_anchored_at_the_first(self, state: SharedState) -> None:
        before = [state.hit(["k"], None, window=WINDOW, now=T0 + i)[0] for i in range(3)]
        assert before == [Tally(0, T0), Tally(1, T0 + WINDOW), Tally(2, T0 + WINDOW)]
        assert state.counts(["k"], now=T0 + WINDOW - 0.5) == [Tally(3, T0 + WINDOW)]

    def test_a_window_ends_and_the_next_event_starts_a_new_one(self, state: SharedState) -> None:
        state.hit(["k"], None, window=WINDOW, now=T0)
        state.hit(["k"], None, window=WINDOW, now=T0 + 1)
        assert state.counts(["k"], now=T0 + WINDOW) == [Tally(0, T0 + WINDOW)]
        assert state.hit(["k"], None, window=WINDOW, now=T0 + WINDOW + 5) == [Tally(0, T0 + WINDOW + 5)]
        assert state.counts(["k"], now=T0 + WINDOW + 6) == [Tally(1, T0 + 2 * WINDOW + 5)]

    def test_a_key_at_its_limit_counts_nothing_on_any_key(self, state: SharedState) -> None:
        for _ in range(2):
            state.hit(["login", "addr"], [2, 10], window=WINDOW, now=T0)
        refused = state.hit(["login", "addr"], [2, 10], window=WINDOW, now=T0 + 1)
        assert [t.hits for t in refused] == [2, 2]  # before: the login holds its limit
        assert [t.hits for t in state.counts(["login", "addr"], now=T0 + 2)] == [2, 2]  # nothing counted
        assert state.hit(["addr"], [10], window=WINDOW, now=T0 + 3) == [Tally(2, T0 + WINDOW)]
        assert state.counts(["addr"], now=T0 + 3) == [Tally(3, T0 + WINDOW)]

    def test_give_back_never_goes_below_zero_and_forget_drops(self, state: SharedState) -> None:
        state.hit(["a", "b"], None, window=WINDOW, now=T0)
        state.give_back(["a", "b", "never-seen"])
        state.give_back(["a"])
        assert [t.hits for t in state.counts(["a", "b", "never-seen"], now=T0)] == [0, 0, 0]
        state.hit(["a"], None, window=WINDOW, now=T0)
        state.hit(["c"], None, window=WINDOW, now=T0)
        state.forget(["a", "missing"])
        assert [t.hits for t in state.counts(["a", "c"], now=T0)] == [0, 1]

    def test_settle_gives_back_checks_and_forgets_in_one_step(self, state: SharedState) -> None:
        for _ in range(2):
            state.hit(["typed", "addr"], None, window=WINDOW, now=T0)
        state.hit(["returned"], None, window=WINDOW, now=T0)
        tallies = state.settle(["typed", "addr"], ["returned"], [3], ["returned", "typed"], now=T0 + 1)
        assert tallies == [Tally(1, T0 + WINDOW)]
        counts = state.counts(["typed", "addr", "returned"], now=T0 + 1)
        assert [t.hits for t in counts] == [0, 1, 0]  # given back, then forgotten; the address keeps one
        # A checked key at its limit: the tallies say so and nothing is forgotten.
        for _ in range(3):
            state.hit(["locked", "typed"], None, window=WINDOW, now=T0 + 2)
        refused = state.settle(["typed"], ["locked"], [3], ["locked", "typed"], now=T0 + 3)
        assert refused == [Tally(3, T0 + 2 + WINDOW)]
        assert [t.hits for t in state.counts(["locked", "typed"], now=T0 + 3)] == [3, 2]
        assert state.settle([], [], [], [], now=T0) == []
        with pytest.raises(ValueError):
            state.settle([], ["k"], [], [], now=T0)

    def test_empty_key_lists_do_nothing(self, state: SharedState) -> None:
        assert state.hit([], None, window=WINDOW, now=T0) == []
        assert state.counts([], now=T0) == []
        state.give_back([])
        state.forget([])

    def test_counters_are_shared_between_the_two_handles(self, pair: tuple[SharedState, SharedState]) -> None:
        first, second = pair
        first.hit(["shared"], [3], window=WINDOW, now=T0)
        first.hit(["shared"], [3], window=WINDOW, now=T0)
        assert second.hit(["shared"], [3], window=WINDOW, now=T0 + 1) == [Tally(2, T0 + WINDOW)]
        assert [t.hits for t in first.hit(["shared"], [3], window=WINDOW, now=T0 + 2)] == [3]
        second.forget(["shared"])
        assert first.counts(["shared"], now=T0 + 2) == [Tally(0, T0 + 2)]

    def test_a_claim_succeeds_once_on_either_handle(self, pair: tuple[SharedState, SharedState]) -> None:
        first, second = pair
        assert first.claim("state-1", ttl=600) is True
        assert first.claim("state-1", ttl=600) is False
        assert second.claim("state-1", ttl=600) is False
        assert second.claim("state-2", ttl=600) is True
        assert first.claim("state-2", ttl=600) is False

    def test_the_agreed_secret_is_the_same_for_both_handles(self, pair: tuple[SharedState, SharedState]) -> None:
        first, second = pair
        secret = first.agreed_secret("sso-state")
        assert len(secret) == 32 and secret != b"\x00" * 32
        assert second.agreed_secret("sso-state") == secret == first.agreed_secret("sso-state")
        assert first.agreed_secret("other") != secret
        assert len(second.agreed_secret("sso-state", 64)) == 64

    @pytest.mark.parametrize("key", HOSTILE_KEYS, ids=["huge", "unicode", "nul", "surrogate", "empty", "ip", "hexlike"])
    def test_hostile_keys_are_plain_keys(self, state: SharedState, key: str) -> None:
        state.hit([key], [1], window=WINDOW, now=T0)
        assert [t.hits for t in state.hit([key], [1], window=WINDOW, now=T0)] == [1]
        assert state.counts([key, key + "-other"], now=T0) == [Tally(1, T0 + WINDOW), Tally(0, T0)]
        assert state.claim(key, ttl=60) is True and state.claim(key, ttl=60) is False
        state.forget([key])
        assert state.counts([key], now=T0)[0].hits == 0


class TestMemorySharedState(SharedStateContract):
    """In one process: the two handles are the one object (what a single instance has)."""

    @pytest.fixture
    def pair(self) -> Iterator[tuple[SharedState, SharedState]]:
        state = MemorySharedState()
        yield state, state

    def test_memory_is_bounded(self) -> None:
        state = MemorySharedState(max_entries=50)
        for i in range(1000):
            state.hit([f"user{i}"], None, window=WINDOW, now=T0)
            state.claim(f"state{i}", ttl=600)
        assert len(state) == 50 and len(state._claims) == 50
        assert MemorySharedState() and Throttle()  # empty, yet truthy: `if throttle:` means "is there one"
        assert state.counts(["user999"], now=T0)[0].hits == 1  # the most recent are kept
        with pytest.raises(ValueError):
            MemorySharedState(max_entries=0)

    def test_memory_and_sqlite_stores_get_a_memory_state(self) -> None:
        state = shared_state_of(MemorySessionStore())
        assert isinstance(state, MemorySharedState)
        assert shared_state_of(MemorySessionStore()) is not state  # one per caller, as before


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module (each test uses its own key prefix)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def open_pair(url: str) -> tuple[RedisSessionStore, RedisSessionStore]:
    """Two store objects (two connection pools: two service instances) on one prefix."""
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    stores = [open_store(f"{url}?prefix={prefix}") for _ in range(2)]
    assert all(isinstance(store, RedisSessionStore) for store in stores)
    return stores[0], stores[1]  # type: ignore[return-value]


class TestRedisSharedState(SharedStateContract):
    """On Debian's redis-server: the two handles are two store objects."""

    @pytest.fixture
    def pair(self, shared_redis: RedisServer) -> Iterator[tuple[SharedState, SharedState]]:
        first, second = open_pair(shared_redis.url)
        yield first, second
        first.close()
        second.close()

    def test_the_store_is_its_own_shared_state(self, state: SharedState) -> None:
        assert shared_state_of(state) is state


class TestRedisSharedStateOnTheEventLoop(SharedStateContract):
    """On Debian's redis-server, every call bridged onto an event loop as an async adapter makes it
    (the blocking clients pointed where nothing listens); the two handles on two loops. Awaited:
    ``settle`` awaits ``asettle`` there without the bridge, as ``WebLogin.awaited`` does."""

    @pytest.fixture(params=[False, True], ids=["bridged", "awaited"])
    def pair(
        self, shared_redis: RedisServer, request: pytest.FixtureRequest
    ) -> Iterator[tuple[SharedState, SharedState]]:
        loops = LoopThread(), LoopThread()
        first, second = (
            calls_on_loop(store, loop, strict=True, awaited=request.param)
            for store, loop in zip(open_pair(shared_redis.url), loops, strict=True)
        )
        yield first, second
        first.close()
        second.close()
        for loop in loops:
            loop.stop()

    def test_key_names_are_hashes_with_ttls(self, state: RedisSessionStore, shared_redis: RedisServer) -> None:
        raw = redis.Redis(host="127.0.0.1", port=shared_redis.port, socket_timeout=5)
        secret_words = ["alice@example.org", "10.0.0.77", "state-QWERTY"]
        state.hit([f"l:{secret_words[0]}", f"a:{secret_words[1]}"], None, window=WINDOW, now=T0)
        assert state.claim(f"sso-state:{secret_words[2]}", ttl=600)
        state.agreed_secret("sso-state")
        prefix = state._prefix
        names = [name.decode() for name in raw.keys(prefix + "*")]
        assert len(names) == 4
        for name in names:
            assert re.fullmatch(re.escape(prefix) + r"[tok]:[0-9a-f]{32}", name), name
            assert not any(word in name for word in secret_words)
            ttl = raw.pttl(name)
            if name.startswith(prefix + "t:"):
                assert 0 < ttl <= WINDOW * 1000
            elif name.startswith(prefix + "o:"):
                assert 0 < ttl <= 600_000
            else:
                assert ttl == -1  # the agreed secret outlives any instance on purpose (see redis_shared)
        # Nothing stores the raw value either: counters hold a count and a time, the claim a marker.
        for name in names:
            dump = raw.dump(name) or b""
            assert not any(word.encode() in dump for word in secret_words)
        raw.close()

    def test_a_malformed_stored_secret_is_a_clear_error(
        self, state: RedisSessionStore, shared_redis: RedisServer
    ) -> None:
        from authcore.errors import ConfigError
        from authcore.sessions.redis import key_hash

        raw = redis.Redis(host="127.0.0.1", port=shared_redis.port, socket_timeout=5)
        raw.set(f"{state._prefix}k:{key_hash('broken:32')}", b"not hex")
        with pytest.raises(ConfigError, match="malformed") as caught:
            state.agreed_secret("broken")
        assert "not hex" not in str(caught.value)
        raw.close()


def test_redis_down_is_provider_unavailable_and_recovers(redis_server: RedisServer) -> None:
    first, second = open_pair(redis_server.url)
    try:
        first.hit(["k"], [5], window=WINDOW, now=T0)
        redis_server.stop()
        calls = [
            lambda: first.hit(["k"], [5], window=WINDOW, now=T0),
            lambda: first.counts(["k"], now=T0),
            lambda: first.give_back(["k"]),
            lambda: first.forget(["k"]),
            lambda: first.claim("s", ttl=60),
            lambda: first.agreed_secret("sso-state"),
        ]
        for call in calls:
            with pytest.raises(ProviderUnavailable, match="session store unavailable"):
                call()
        throttle = Throttle(max_per_login=3, state=first)
        with pytest.raises(ProviderUnavailable):
            throttle.reserve("alice", "10.0.0.1")  # neither a pass nor a lock-out
        redis_server.start()  # AOF on: the counter written before the outage is back
        assert second.counts(["k"], now=T0 + 1) == [Tally(1, T0 + WINDOW)]
        assert first.claim("s", ttl=60) is True
    finally:
        first.close()
        second.close()


def test_throttles_on_one_redis_count_the_same_failures(shared_redis: RedisServer) -> None:
    first, second = open_pair(shared_redis.url)
    try:
        now = [T0]
        a = Throttle(max_per_login=3, max_per_address=5, window=WINDOW, clock=lambda: now[0], state=first)
        b = Throttle(max_per_login=3, max_per_address=5, window=WINDOW, clock=lambda: now[0], state=second)
        assert len(a) == 0 and "RedisSessionStore" in repr(a) and not a.private
        a.failure("alice", "10.0.0.1")
        b.reserve("ALICE", "10.0.0.2")  # canonical form: the same counter
        a.failure("alice", "10.0.0.3")
        with pytest.raises(Throttled) as refused:
            b.reserve("Alice", "10.0.0.4")
        assert refused.value.retry_after == pytest.approx(WINDOW)
        with pytest.raises(Throttled):
            a.check("alice", None)
        assert b.refusal_after_login("bob", "alice") is not None  # the returned login is locked
        b.release("bob", None)
        for address in ("10.0.0.9",) * 5:
            a.failure(f"user-{uuid.uuid4().hex}", address)
        with pytest.raises(Throttled):
            b.check("someone-else", "10.0.0.9")
        now[0] += WINDOW
        b.check("alice", "10.0.0.9")  # both windows are over
        b.failure("carol", None)
        assert a.refusal_after_login("carol", "carol") is None
        assert first.counts(a._keys("carol", None)[0], now=now[0])[0].hits == 0
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("login", "address"),
    [
        ("x" * 100_000, "y" * 100_000),
        ("ＡＬＩＣＥ\u0130", "fe80::1%eth0"),
        ("nul\x00login", "nul\x00address"),
        ("\ud800\udfff", "\udcff"),
    ],
    ids=["huge", "unicode", "nul", "surrogates"],
)
def test_hostile_logins_and_addresses_as_throttle_keys(shared_redis: RedisServer, login: str, address: str) -> None:
    first, second = open_pair(shared_redis.url)
    try:
        for state in (first, MemorySharedState()):
            throttle = Throttle(max_per_login=2, max_per_address=100, state=state)
            throttle.reserve(login, address)
            throttle.failure(login, address)
            with pytest.raises(Throttled):
                Throttle(max_per_login=2, max_per_address=100, state=state).check(login, None)
            throttle.success(login)
            throttle.check(login, address)
        raw = redis.Redis(host="127.0.0.1", port=shared_redis.port, socket_timeout=5)
        for name in raw.keys(first._prefix + "*"):
            assert re.fullmatch(rb"[0-9a-z]+:t:[0-9a-f]{32}", name), name
        raw.close()
    finally:
        first.close()
        second.close()
