"""The throttle counts a login before its provider is asked, or after when the provider answers
without waiting (:class:`authcore.web.login.WebLogin`): the client sees the same answers
either way, on the memory store and on Redis with the login on the event loop, bridged or
awaited there (``instant-awaited``: :meth:`WebLogin.awaited`, as the FastAPI adapter runs it)."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from authcore_webtest_support import INSTANT, WAITING, InstantProvider, WaitingProvider

from authcore import AuthManager, InvalidCredentials, InvalidToken, ProviderUnavailable
from authcore.capabilities import SecondFactorRequired
from authcore.errors import Throttled
from authcore.loop_bridge import run_bridged
from authcore.models import LoginResult
from authcore.second_factor import CHALLENGE_PREFIX
from authcore.testing.on_loop import LoopThread, bridged_calls, without_blocking_client
from authcore.testing.redis_server import RedisServer, start_redis
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


def awaited_login(core: WebCore, body: LoginBody, address: str) -> Awaitable[LoginResult]:
    """:meth:`WebLogin.awaited` answering with the login's result itself."""
    return core.login.awaited(body, address, answer=lambda result: result)


def attempt(loop: LoopThread, core: WebCore, plugin: str, password: str, login: str = "alice") -> str:
    """One login as an async adapter runs it (bridged on the loop, or awaited there for a
    *plugin* named ``<provider>-awaited``); the answer's code."""
    provider, _, awaited = plugin.partition("-")
    body = LoginBody.model_validate({"plugin": provider, "login": login, "password": password})
    try:
        if awaited:
            loop.wait(awaited_login(core, body, "192.0.2.7"))
        else:
            loop.run(lambda: core.login(body, "192.0.2.7"))
    except (InvalidCredentials, ProviderUnavailable, Throttled) as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize("plugin", ["instant", "waiting", "instant-awaited"])
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


@pytest.mark.parametrize("plugin", ["instant", "waiting", "instant-awaited"])
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


@pytest.mark.parametrize("awaited", [False, True], ids=["bridged", "awaited"])
def test_parallel_attempts_on_the_loop_are_answered_no_more_than_the_limit(
    shared_redis: RedisServer, loop_thread: LoopThread, awaited: bool
) -> None:
    """Twelve attempts at once on the event loop, the provider answering each without waiting:
    every one is asked, and exactly LIMIT answers reach their clients (the others: 429)."""
    manager, core = web_core(f"{shared_redis.url}?prefix=p{uuid.uuid4().hex[:12]}:")
    with manager:
        assert manager.login_waits("instant") == "loop"
        body = LoginBody.model_validate({"plugin": "instant", "login": "dave", "password": "wrong"})

        def one() -> Awaitable[Any]:
            if awaited:
                return awaited_login(core, body, "192.0.2.8")
            return run_bridged(lambda: core.login(body, "192.0.2.8"))

        async def all_at_once() -> list[BaseException | Any]:
            return await asyncio.gather(*(one() for _ in range(12)), return_exceptions=True)

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


# ------------------------------------------------------------------------------ logins awaited on the loop


def redis_core(redis: RedisServer, **settings: Any) -> tuple[AuthManager, WebCore]:
    """A manager on Redis (its blocking client pointed where nothing listens, so a call off the
    loop's path fails) and the FastAPI adapter's core, throttled unless ``throttle=None``."""
    manager, core = web_core(f"{redis.url}?prefix=a{uuid.uuid4().hex[:12]}:")
    without_blocking_client(manager._sessions.store)
    if settings:
        core = FastAPIAuth(manager, WebSettings(cookie_auth=False, **settings)).core
    return manager, core


def body_of(login: str, password: str = "right") -> LoginBody:
    return LoginBody.model_validate({"plugin": "instant", "login": login, "password": password})


@pytest.mark.parametrize("throttled", [True, False])
def test_an_awaited_login_makes_its_store_calls_without_the_bridge_in_one_write(
    shared_redis: RedisServer, loop_thread: LoopThread, redis_writes: list[int], throttled: bool
) -> None:
    """WebLogin.awaited: the new session sent in-line, the throttle's settle awaited, both in one
    write to Redis; no bridged call, no blocking one; the session is there when it answers."""
    manager, core = redis_core(shared_redis, **({} if throttled else {"throttle": None}))
    with manager:
        loop_thread.wait(awaited_login(core, body_of("erin"), "192.0.2.9"))  # connects, loads the scripts
        redis_writes.clear()
        with bridged_calls() as bridged:
            result = loop_thread.wait(awaited_login(core, body_of("erin"), "192.0.2.9"))
        assert bridged == [] and redis_writes == ([2] if throttled else [1])
        assert loop_thread.run(lambda: manager.verify(result.access_token)).login == "erin"


def test_an_awaited_login_signs_its_token_and_makes_its_answer_while_redis_works(
    shared_redis: RedisServer, loop_thread: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session and the throttle's step are written (one write) before the access token is
    signed and the answer made of it, and their replies read after both: the signing and the
    answer overlap Redis's work on them."""
    from authcore.sessions.redis_loop import _Connection

    events: list[str] = []
    flush, received = _Connection._flush, _Connection.data_received

    def observed_flush(connection: _Connection) -> None:
        events.append(f"write {len(connection._unsent)}")
        flush(connection)

    def observed_reply(connection: _Connection, data: bytes) -> None:
        events.append("reply")
        received(connection, data)

    monkeypatch.setattr(_Connection, "_flush", observed_flush)
    monkeypatch.setattr(_Connection, "data_received", observed_reply)
    manager, core = redis_core(shared_redis)
    with manager:
        loop_thread.wait(awaited_login(core, body_of("erin"), "192.0.2.9"))  # connects, loads the scripts
        issue = manager._tokens.issue

        def observed_issue(*args: Any, **kwargs: Any) -> str:
            events.append("sign")
            return issue(*args, **kwargs)

        monkeypatch.setattr(manager._tokens, "issue", observed_issue)
        events.clear()

        def answer(result: LoginResult) -> LoginResult:
            events.append("answer")
            return result

        result = loop_thread.wait(core.login.awaited(body_of("erin"), "192.0.2.9", answer=answer))
        assert events[:4] == ["write 2", "sign", "answer", "reply"]
        assert loop_thread.run(lambda: manager.verify(result.access_token)).login == "erin"


def test_a_login_whose_answer_fails_leaves_no_live_session(memory_or_redis: str, loop_thread: LoopThread) -> None:
    """The adapter's answer is made of the signed result while Redis works on the session
    (:meth:`WebLogin.awaited`); an answer that fails ends the new session again, and its
    error is the login's."""
    manager, core = web_core(memory_or_redis)
    with manager:
        body = body_of("hana")
        loop_thread.wait(awaited_login(core, body, "192.0.2.9"))  # connects, loads the scripts
        before = {record.session_id for record in manager.sessions_of("hana")}
        made: list[LoginResult] = []

        def broken(result: LoginResult) -> LoginResult:
            made.append(result)
            raise ValueError("the response could not be encoded")

        with pytest.raises(ValueError, match="could not be encoded"):
            loop_thread.wait(core.login.awaited(body, "192.0.2.9", answer=broken))
        assert made and made[0].session_id not in before
        assert {record.session_id for record in manager.sessions_of("hana")} == before
        with pytest.raises(InvalidToken):
            loop_thread.run(lambda: manager.verify(made[0].access_token))
        loop_thread.wait(awaited_login(core, body, "192.0.2.9"))  # the throttle holds no failure for it


@pytest.mark.parametrize("how", ["in-line", "bridged", "awaited", "alogin"])
def test_a_login_whose_token_fails_after_its_session_was_stored_leaves_no_live_session(
    memory_or_redis: str, loop_thread: LoopThread, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The session is stored before its token is signed (so that Redis works while it is); a
    signing that fails ends it again, on every path a login takes, and the error is the login's."""
    manager, core = web_core(memory_or_redis)
    with manager:
        body = body_of("gina")
        loop_thread.run(lambda: core.login(body, "192.0.2.9"))  # connects, loads the scripts
        before = {record.session_id for record in manager.sessions_of("gina")}

        def broken(*_args: Any, **_kwargs: Any) -> str:
            raise RuntimeError("the signing key is gone")

        monkeypatch.setattr(manager._tokens, "issue", broken)
        with pytest.raises(RuntimeError, match="signing key"):
            if how == "in-line":
                core.login(body, "192.0.2.9")
            elif how == "bridged":
                loop_thread.run(lambda: core.login(body, "192.0.2.9"))
            elif how == "awaited":
                loop_thread.wait(awaited_login(core, body, "192.0.2.9"))
            else:
                loop_thread.wait(manager.alogin("instant", login="gina", password="right"))
        monkeypatch.undo()
        assert {record.session_id for record in manager.sessions_of("gina")} == before


def test_an_awaited_second_factor_login_answers_once_its_challenge_is_stored(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    manager, core = redis_core(shared_redis)
    with manager:
        with pytest.raises(SecondFactorRequired) as asked:
            loop_thread.wait(awaited_login(core, body_of("mfa-frank"), "192.0.2.9"))
        found = loop_thread.run(
            lambda: manager._sessions.session_of_personal_token(asked.value.challenge, CHALLENGE_PREFIX)
        )
        assert found is not None


def test_an_awaited_login_after_redis_forgot_its_scripts_sends_them_again(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    manager, core = redis_core(shared_redis)
    with manager:
        loop_thread.wait(awaited_login(core, body_of("gina"), "192.0.2.9"))
        redis_py.Redis(host="127.0.0.1", port=shared_redis.port).script_flush()
        result = loop_thread.wait(awaited_login(core, body_of("gina"), "192.0.2.9"))
        assert loop_thread.run(lambda: manager.verify(result.access_token)).login == "gina"


@pytest.mark.parametrize("throttled", [True, False])
def test_an_awaited_login_with_redis_gone_is_unavailable_and_leaks_no_error(
    loop_thread: LoopThread, tmp_path: Path, caplog: pytest.LogCaptureFixture, throttled: bool
) -> None:
    """Redis stopped after the first login: the next is the store's 503 (raised by the settle, or
    by the session's own check without a throttle), and no reply's error is left unretrieved."""
    server = start_redis(tmp_path)
    try:
        manager, core = redis_core(server, **({} if throttled else {"throttle": None}))
        with manager:
            loop_thread.wait(awaited_login(core, body_of("hank"), "192.0.2.9"))
            server.stop()
            with pytest.raises(ProviderUnavailable, match="session store unavailable"):
                loop_thread.wait(awaited_login(core, body_of("hank"), "192.0.2.9"))
    finally:
        server.stop()
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_logins_over_the_fastapi_adapter_are_awaited_and_answer_as_ever(shared_redis: RedisServer) -> None:
    """Over the FastAPI adapter on Redis: a good login awaited without the bridge (only a failure's
    count is bridged), a wrong password, a second factor, malformed bodies: the same answers."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    manager, _core = redis_core(shared_redis)
    with manager:
        app = FastAPI()
        FastAPIAuth(manager, WebSettings(cookie_auth=False, throttle=Throttle(max_per_login=LIMIT))).install(app)
        with TestClient(app) as client:

            def post(login: str, password: str) -> Any:
                return client.post("/auth/login", json={"plugin": "instant", "login": login, "password": password})

            post("ivy", "right")  # connects, loads the scripts
            with bridged_calls() as bridged:
                good = post("ivy", "right")
                assert good.status_code == 200 and good.json()["login"] == "ivy" and bridged == []
                answers = [post("ivy", "wrong").status_code for _ in range(LIMIT + 1)]
                assert answers == [401] * LIMIT + [429] and len(bridged) == LIMIT + 1
            second = post("mfa-jo", "right")
            assert second.status_code == 401 and second.json()["challenge"].startswith(CHALLENGE_PREFIX)
            for raw in (b"{", b'{"plugin": "instant", "login": "\\u0000", "password": "x"}', b"", b"[]"):
                bad = client.post("/auth/login", content=raw, headers={"content-type": "application/json"})
                assert bad.status_code in (400, 401, 422) and "detail" in bad.json()
