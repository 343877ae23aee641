"""Revocation reaches every instance in under a second: Redis's revocation feed and the verified-token cache.

Two (or three) :class:`AuthManager` objects on one real ``redis-server`` play the instances of
a service. Each has its verified-token cache on (the default), so without the feed a logout on
one instance would be accepted by the others' caches for up to
``tokens.revocation_check_interval`` (5 s). Bounded polls wait for the 1 s the issue allows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from authcore import AuthManager, InvalidToken, ProviderUnavailable
from authcore.models import VerifiedToken
from authcore.testing.redis_server import RedisServer
from authcore.token_cache import TokenCache

BOUND = 1.0  # the bound on revocation reaching every instance


def _config(url: str, **sessions: Any) -> dict[str, Any]:
    return {
        "tokens": {"secret": "revocation-feed-test-only-secret-0123456789"},
        "sessions": {"store": url + "?socket_timeout=0.5&socket_connect_timeout=0.5", **sessions},
        "providers": [{"name": "dummy"}],
    }


@pytest.fixture
def instances(redis_server: RedisServer) -> Iterator[Callable[..., AuthManager]]:
    made: list[AuthManager] = []

    def make(**sessions: Any) -> AuthManager:
        manager = AuthManager.from_config(_config(redis_server.url, **sessions))
        made.append(manager)
        _wait_until_following(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


def _wait_until_following(manager: AuthManager) -> None:
    """Until the feed has subscribed (the cache trusts nothing before): a bounded wait."""
    cache = manager._cache
    assert cache is not None
    deadline = time.monotonic() + 10
    while cache._cap != math.inf:
        assert time.monotonic() < deadline, "the revocation feed did not subscribe"
        time.sleep(0.01)


def _cached(manager: AuthManager, token: str) -> bool:
    cache = manager._cache
    return cache is not None and cache.get(token, time.time()) is not None


def _refused_within(manager: AuthManager, token: str, bound: float = BOUND) -> float:
    """Seconds until *manager* refuses *token*; fails the test past *bound*."""
    start = time.monotonic()
    while True:
        try:
            manager.verify(token)
        except (InvalidToken, ProviderUnavailable):
            return time.monotonic() - start
        elapsed = time.monotonic() - start
        assert elapsed < bound, f"still accepted after {elapsed:.2f} s"
        time.sleep(0.005)


def test_a_logout_on_one_instance_is_refused_by_the_others_caches(instances: Callable[..., AuthManager]) -> None:
    a, b, c = instances(), instances(), instances()
    result = a.login("dummy", login="alice", password="read")
    for other in (b, c):
        other.verify(result.access_token)
        assert _cached(other, result.access_token)  # the cache, not the store, answers from now on
    a.logout(result.access_token)
    for other in (b, c):
        _refused_within(other, result.access_token)
        assert not _cached(other, result.access_token)


def test_a_detected_refresh_reuse_reaches_every_instance(instances: Callable[..., AuthManager]) -> None:
    a, b = instances(), instances()
    first = a.login("dummy", login="alice", password="read")
    second = b.refresh(first.refresh_token)
    a.verify(second.access_token)
    b.verify(second.access_token)
    with pytest.raises(InvalidToken):
        b.refresh(first.refresh_token)  # reuse: the session is revoked on the server
    _refused_within(a, second.access_token)


def test_ending_every_session_of_a_user_reaches_every_instance(instances: Callable[..., AuthManager]) -> None:
    a, b = instances(), instances()
    tokens = [a.login("dummy", login="bob", password="read").access_token for _ in range(3)]
    for token in tokens:
        b.verify(token)
    assert a.end_sessions_of("bob") == 3
    for token in tokens:
        _refused_within(b, token)


def test_a_lost_notification_is_made_up_for(instances: Callable[..., AuthManager], redis_server: RedisServer) -> None:
    """The subscriber's connection dies just before the logout: its message never arrives, yet the
    token is refused within the bound (the cache distrusts itself until the feed is back)."""
    a, b = instances(), instances()
    result = a.login("dummy", login="alice", password="read")
    b.verify(result.access_token)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        admin.client_kill_filter(_type="pubsub")  # every subscriber, b's included
        a.logout(result.access_token)
    finally:
        admin.close()
    _refused_within(b, result.access_token)
    again = a.login("dummy", login="alice", password="read")
    _wait_until_following(b)  # the feed comes back by itself; the cache works again
    b.verify(again.access_token)
    assert _cached(b, again.access_token)


def test_redis_down_fails_closed_then_recovers(
    instances: Callable[..., AuthManager], redis_server: RedisServer
) -> None:
    a = instances()
    result = a.login("dummy", login="alice", password="read")
    a.verify(result.access_token)
    redis_server.stop()
    try:
        _refused_within(a, result.access_token)  # even the cached token: fail closed by default
        with pytest.raises(ProviderUnavailable):
            a.verify(result.access_token)
        with pytest.raises(ProviderUnavailable):
            a.login("dummy", login="alice", password="read")
    finally:
        redis_server.start()
    _wait_until_following(a)
    assert a.verify(result.access_token).login == "alice"  # the session survived (AOF)
    assert a.login("dummy", login="alice", password="read").login == "alice"


def test_an_outage_grace_keeps_cached_tokens_verifying(
    instances: Callable[..., AuthManager], redis_server: RedisServer
) -> None:
    a = instances(outage_grace="1h")
    cached = a.login("dummy", login="alice", password="read")
    fresh = a.login("dummy", login="bob", password="read")
    a.verify(cached.access_token)
    redis_server.stop()
    try:
        deadline = time.monotonic() + 5
        while a._cache is not None and a._cache._cap == math.inf:  # until the feed noticed
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert a.verify(cached.access_token).login == "alice"  # from the cache, within the grace
        with pytest.raises(ProviderUnavailable):
            a.verify(fresh.access_token)  # never verified before: the store must answer
    finally:
        redis_server.start()
    _wait_until_following(a)
    assert a.verify(fresh.access_token).login == "bob"


# --------------------------------------------------------------------------- the cache's side


def _token(session: str) -> VerifiedToken:
    return VerifiedToken("alice", "dummy", frozenset(), (), session, "jti", 0.0, math.inf, {})


def test_distrust_caps_every_entry_and_repeated_losses_do_not_stretch_it() -> None:
    cache = TokenCache(10)
    cache.put("t1", _token("s1"), 1000.0)
    cache.distrust(100.0)
    assert cache.get("t1", 99.0) is not None and cache.get("t1", 100.0) is None
    cache.put("t2", _token("s2"), 1000.0)
    assert cache.get("t2", 100.0) is None  # stored during the outage: capped too
    cache.distrust(500.0)  # the feed failed again later: the first cap holds
    cache.put("t3", _token("s3"), 1000.0)
    assert cache.get("t3", 200.0) is None
    cache.trust()
    assert len(cache) == 0
    cache.put("t4", _token("s4"), 1000.0)
    assert cache.get("t4", 999.0) is not None


def test_a_put_racing_with_a_lost_feed_is_dropped() -> None:
    cache = TokenCache(10)
    generation = cache.generation
    cache.distrust(0.0)
    cache.put("t", _token("s"), 1000.0, generation)
    assert len(cache) == 0


def test_stores_without_a_feed_are_not_followed() -> None:
    from authcore.sessions import MemorySessionStore

    cache = TokenCache(10)
    assert cache.follow(MemorySessionStore(), 0.0) is None
    cache.put("t", _token("s"), 1000.0)
    assert cache.get("t", 1.0) is not None
