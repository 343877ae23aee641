"""The throttle counts a login before its provider is asked, or after when the provider answers
without waiting (:meth:`authcore.web.core.WebCore.login`): the client sees the same answers
either way, on the memory store and on Redis with the login on the event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from authcore_webtest_support import INSTANT, WAITING, InstantProvider, WaitingProvider

from authcore import AuthManager, InvalidCredentials, ProviderUnavailable
from authcore.errors import Throttled
from authcore.loop_bridge import run_bridged
from authcore.testing.on_loop import LoopThread
from authcore.testing.redis_server import RedisServer
from authcore.web.common import LoginBody
from authcore.web.core import WebCore
from authcore.web.fastapi import FastAPIAuth
from authcore.web.settings import WebSettings
from authcore.web.throttle import Throttle

LIMIT = 2


@pytest.fixture(params=["memory", "redis"])
def memory_or_redis(request: pytest.FixtureRequest, shared_redis: RedisServer) -> str:
    if request.param == "memory":
        return "memory://"
    return f"{shared_redis.url}?prefix=c{uuid.uuid4().hex[:12]}:"


def web_core(store_url: str, per_address: int = 1000) -> tuple[AuthManager, WebCore]:
    config = {
        "providers": [{"name": "instant", "class": INSTANT}, {"name": "waiting", "class": WAITING}],
        "sessions": {"store": store_url},
    }
    manager = AuthManager.from_config(config)
    throttle = Throttle(max_per_login=LIMIT, max_per_address=per_address, window=600)
    core = FastAPIAuth(manager, WebSettings(cookie_auth=False, throttle=throttle)).core
    assert core.settings.throttle is not None
    assert core.settings.throttle.private is (store_url == "memory://")  # else its counters are in Redis
    return manager, core


def attempt(loop: LoopThread, core: WebCore, plugin: str, password: str, login: str = "alice") -> str:
    """One login as an async adapter runs it (bridged on the loop); the answer's code."""
    body = LoginBody.model_validate({"plugin": plugin, "login": login, "password": password})
    try:
        loop.run(lambda: core.login(body, "192.0.2.7"))
    except (InvalidCredentials, ProviderUnavailable, Throttled) as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize("plugin", ["instant", "waiting"])
def test_both_orders_answer_alike_up_to_the_limit_and_beyond(
    memory_or_redis: str, loop_thread: LoopThread, plugin: str
) -> None:
    manager, core = web_core(memory_or_redis)
    with manager:
        assert manager.login_waits("instant") != "thread" and manager.login_waits("waiting") == "thread"

        def answers(passwords: str, login: str = "alice") -> list[str]:
            return [attempt(loop_thread, core, plugin, password, login) for password in passwords.split()]

        # Under the limit an outage counts nothing, and a success forgets the failures.
        assert answers("wrong down right") == ["invalid_credentials", "provider_unavailable", "ok"]
        assert answers("wrong wrong wrong right down") == ["invalid_credentials"] * 2 + ["too_many_requests"] * 3
        # The refused right password left no session behind; the one before it is live.
        assert len(manager.sessions_of("alice")) == 1
        # A right password awaiting its second factor counts nothing, and is not revealed at the limit.
        second = "second_factor_required"
        assert answers("right right wrong wrong right", "mfa-eve") == [second] * 2 + ["invalid_credentials"] * 2 + [
            "too_many_requests"
        ]
        assert attempt(loop_thread, core, plugin, "right", login="bob") == "ok"  # the address is not locked


@pytest.mark.parametrize("plugin", ["instant", "waiting"])
def test_an_address_at_its_limit_is_refused_a_right_password_for_another_login(
    memory_or_redis: str, loop_thread: LoopThread, plugin: str
) -> None:
    manager, core = web_core(memory_or_redis, per_address=2)
    with manager:
        answers = [attempt(loop_thread, core, plugin, "wrong", login) for login in ("x1", "x2", "x3")]
        assert answers == ["invalid_credentials"] * 2 + ["too_many_requests"]
        assert attempt(loop_thread, core, plugin, "right", login="yvonne") == "too_many_requests"
        assert manager.sessions_of("yvonne") == []


def test_a_provider_that_waits_is_not_asked_at_the_limit(memory_or_redis: str, loop_thread: LoopThread) -> None:
    """The reservation spares a waiting provider the attempts refused anyway; one that answers
    without waiting is asked, and its answer dropped."""
    manager, core = web_core(memory_or_redis)
    with manager:
        for provider_class, plugin in ((WaitingProvider, "waiting"), (InstantProvider, "instant")):
            login = f"carol-{plugin}"
            for _ in range(LIMIT):
                assert attempt(loop_thread, core, plugin, "wrong", login=login) == "invalid_credentials"
            provider_class.asked.clear()
            assert attempt(loop_thread, core, plugin, "right", login=login) == "too_many_requests"
            assert provider_class.asked == ([] if plugin == "waiting" else ["right"])


def test_parallel_attempts_on_the_loop_are_answered_no_more_than_the_limit(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    """Twelve attempts at once on the event loop, the provider answering each without waiting:
    every one is asked, and exactly LIMIT answers reach their clients (the others: 429)."""
    manager, core = web_core(f"{shared_redis.url}?prefix=p{uuid.uuid4().hex[:12]}:")
    with manager:
        assert manager.login_waits("instant") == "loop"
        body = LoginBody.model_validate({"plugin": "instant", "login": "dave", "password": "wrong"})

        def one() -> Callable[[], Any]:
            return lambda: core.login(body, "192.0.2.8")

        async def all_at_once() -> list[BaseException | Any]:
            return await asyncio.gather(*(run_bridged(one()) for _ in range(12)), return_exceptions=True)

        InstantProvider.asked.clear()
        outcomes = asyncio.run_coroutine_threadsafe(all_at_once(), loop_thread.loop).result(60)
        codes = sorted(exc.code for exc in outcomes if isinstance(exc, (InvalidCredentials, Throttled)))
        assert codes == ["invalid_credentials"] * LIMIT + ["too_many_requests"] * (12 - LIMIT), outcomes
        assert len(InstantProvider.asked) == 12
        # Right password now: refused as well, and no session left behind.
        right = LoginBody.model_validate({"plugin": "instant", "login": "dave", "password": "right"})
        with pytest.raises(Throttled):
            loop_thread.run(lambda: core.login(right, "192.0.2.8"))
        assert manager.sessions_of("dave") == []
