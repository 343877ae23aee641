"""The Redis store's calls on an event loop (authcore.sessions.redis_loop) and the bridge that makes them.

The conformance suites run on this path in test_redis_store.py and test_shared_state.py, and
its faults (Redis down, restarted, paused) there too; here: the bridge itself (results,
errors both ways, context variables, misuse, greenlets reused without carrying anything over,
concurrent and cancelled callers, two threads), replies reaching the right caller when many
calls share the loop's one connection (and when one is cancelled), a script Redis forgot
(SCRIPT FLUSH), a server that turned replica (READONLY), a wrong password, a defect (a key of
the wrong type) raised as the blocking client raises it, where each configuration's logins
and refreshes run, and that ``strict`` really takes the blocking client away.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import hiredis
import pytest
import redis
from greenlet import getcurrent

from authcore import (
    AuthManager,
    Credentials,
    Identity,
    InvalidCredentials,
    PasswordCredentials,
    Provider,
    UpstreamSessions,
    loop_bridge,
)
from authcore.config import SessionConfig
from authcore.errors import InvalidToken, ProviderUnavailable
from authcore.loop_bridge import bridged, check_later, run_bridged, wait_for
from authcore.sessions import PURGE_EVERY, RefreshTokenReused, Sessions
from authcore.sessions.redis import RedisSessionStore
from authcore.sessions.redis_loop import _Connection
from authcore.testing.on_loop import LoopThread, bridged_calls, calls_on_loop, without_blocking_client
from authcore.testing.ports import free_port
from authcore.testing.redis_server import RedisServer, start_redis, start_sentinel
from authcore.web.common import LoginBody
from authcore.web.fastapi import FastAPIAuth

WINDOW = 60.0
T0 = 1_800_000_000.0
PASSWORD = "loop-Secret-pw-0123"


def new_store(url: str) -> RedisSessionStore:
    return RedisSessionStore(f"{url}?prefix=t{uuid.uuid4().hex[:12]}:")


@pytest.fixture
def store(shared_redis: RedisServer, loop_thread: LoopThread) -> Iterator[RedisSessionStore]:
    made = calls_on_loop(new_store(shared_redis.url), loop_thread, strict=True)
    yield made
    made.close()


def start(store: RedisSessionStore, login: str = "alice") -> str:
    return (
        Sessions(store, SessionConfig(idle_timeout=100, max_lifetime=250))
        .start(login=login, provider="p", identity={"login": login})[0]
        .session_id
    )


# ------------------------------------------------------------------------------ the bridge


def test_the_bridge_returns_results_and_carries_errors_both_ways() -> None:
    async def answer(value: int) -> int:
        await asyncio.sleep(0)
        return value * 2

    async def refuse() -> None:
        await asyncio.sleep(0)
        raise KeyError("from the loop")

    def code(value: int) -> tuple[bool, int, str]:
        try:
            wait_for(refuse())
        except KeyError as exc:
            caught = str(exc)
        return bridged(), wait_for(answer(value)), caught

    def failing() -> None:
        wait_for(answer(1))
        raise ValueError("from the code")

    async def main() -> None:
        assert await run_bridged(code, 21) == (True, 42, "'from the loop'")
        with pytest.raises(ValueError, match="from the code"):
            await run_bridged(failing)
        assert not bridged()

    asyncio.run(main())


def test_the_bridged_code_sees_the_callers_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    async def main() -> str:
        request_id.set("r-1")
        return await run_bridged(request_id.get)

    assert asyncio.run(main()) == "r-1"


def test_bridged_calls_reuse_their_greenlets_and_share_nothing_else() -> None:
    """One greenlet serves call after call (a new one costs a frame stack's mmap and munmap), but
    each call sees a fresh copy of its caller's context and keeps nothing of the call before."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")

    class Result:
        pass

    async def later(value: object) -> object:
        await asyncio.sleep(0)
        return value

    def code(seen: list[object]) -> Result:
        seen.append(request_id.get())
        request_id.set("set inside the call")  # must not reach the next call or the caller
        seen.append(wait_for(later(getcurrent())))
        return Result()

    async def main() -> None:
        first: list[object] = []
        request_id.set("r-1")
        result = await run_bridged(code, first)
        dropped = weakref.ref(result)
        del result
        await asyncio.sleep(0)  # the loop's handle that woke this task holds the finished future until it returns
        gc.collect()
        assert dropped() is None  # the idle greenlet holds no outcome (a login's holds tokens)
        second: list[object] = []
        request_id.set("r-2")
        await run_bridged(code, second)
        assert request_id.get() == "r-2"
        assert first[0] == "r-1" and second[0] == "r-2"
        assert first[1] is second[1]  # the same greenlet, from the pool

    asyncio.run(main())


def test_concurrent_bridged_calls_each_get_their_own_replies() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        pending: list[tuple[asyncio.Future[int], int]] = []

        def code(index: int) -> tuple[int, int]:
            first: asyncio.Future[int] = loop.create_future()
            pending.append((first, index * 10))
            second: asyncio.Future[int] = loop.create_future()
            pending.append((second, index * 10 + 1))
            return wait_for(first), wait_for(second)

        async def answer() -> None:  # in an order of its own: last asked, first answered
            while True:
                await asyncio.sleep(0)
                while pending:
                    future, value = pending.pop()
                    future.set_result(value)

        answering = asyncio.ensure_future(answer())
        results = await asyncio.gather(*(run_bridged(code, index) for index in range(50)))
        answering.cancel()
        assert results == [(index * 10, index * 10 + 1) for index in range(50)]

    asyncio.run(main())


def test_a_cancelled_caller_leaves_the_code_to_finish_and_its_greenlet_to_serve_again() -> None:
    finished: list[str] = []

    async def main() -> None:
        release = asyncio.Event()

        def code() -> str:
            wait_for(release.wait())
            finished.append("ran to its end")
            return "dropped"

        caller = asyncio.ensure_future(run_bridged(code))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert finished == []
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert finished == ["ran to its end"]
        assert await run_bridged(lambda: wait_for(asyncio.sleep(0, "again"))) == "again"

    asyncio.run(main())


def test_loops_in_two_threads_bridge_at_once(loop_thread: LoopThread) -> None:
    """Greenlets cannot cross threads: each thread has its own pool."""

    async def twice(tag: str) -> list[str]:
        def one(index: int) -> str:
            return wait_for(asyncio.sleep(0.001, f"{tag}{index}"))

        return [await run_bridged(one, index) for index in range(50)]

    other = asyncio.run_coroutine_threadsafe(twice("other-"), loop_thread.loop)
    mine = asyncio.run(twice("main-"))
    assert mine == [f"main-{index}" for index in range(50)]
    assert other.result(10) == [f"other-{index}" for index in range(50)]


async def _reply(value: int) -> int:
    await asyncio.sleep(0)
    return value


def test_a_reply_checked_later_is_checked_at_the_next_wait_or_before_the_call_ends() -> None:
    events: list[object] = []

    def recorded(tag: str) -> Callable[[asyncio.Future[int]], None]:
        return lambda done: events.append((tag, done.result()))

    def code() -> str:
        check_later(_reply(1), recorded("first"))
        events.append("sent")
        events.append(("waited", wait_for(_reply(2))))
        check_later(_reply(3), recorded("last"))  # nothing waits after it: checked before the end
        return "done"

    async def main() -> None:
        assert await run_bridged(code) == "done"
        assert events == ["sent", ("first", 1), ("waited", 2), ("last", 3)]

    asyncio.run(main())


def test_a_failed_check_is_raised_where_the_code_waits_next_or_by_the_call() -> None:
    def clash(_done: asyncio.Future[int]) -> None:
        raise ValueError("already exists")

    def waits_after() -> str:
        check_later(_reply(1), clash)
        wait_for(_reply(2))
        return "not reached"

    def ends_after() -> str:
        check_later(_reply(1), clash)
        return "not returned"

    async def main() -> None:
        for code in (waits_after, ends_after):
            with pytest.raises(ValueError, match="already exists"):
                await run_bridged(code)

    asyncio.run(main())


def test_checks_left_behind_by_an_error_are_dropped_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def refused() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("lost")

    def code() -> None:
        check_later(refused(), lambda done: done.result())
        raise KeyError("the code's own error")

    async def main() -> None:
        with pytest.raises(KeyError):
            await run_bridged(code)
        await asyncio.sleep(0.01)
        gc.collect()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(main())
    assert "never retrieved" not in caplog.text


def test_wait_for_outside_the_bridge_is_a_clear_error() -> None:
    async def nothing() -> None:
        return None

    awaitable = nothing()
    with pytest.raises(RuntimeError, match="run_bridged"):
        wait_for(awaitable)
    awaitable.close()
    assert not bridged()


def test_strict_takes_the_blocking_client_away(store: RedisSessionStore) -> None:
    session_id = start(store)
    assert store.get(session_id) is not None  # through the loop
    with pytest.raises(ProviderUnavailable):
        type(store).get(store, session_id)  # the class's own method, off the loop: the blocking client


# ------------------------------------------------------------------------------ one connection, many calls


def test_replies_reach_their_callers_when_many_calls_share_the_connection(
    store: RedisSessionStore, loop_thread: LoopThread
) -> None:
    """200 concurrent bridged calls, two kinds interleaved, each checking its own answer."""
    sessions = {f"user{i}": start(store, f"user{i}") for i in range(20)}
    get, hit = type(store).get, type(store).hit

    def one(i: int) -> None:
        login = f"user{i % 20}"
        if i % 2:
            record = get(store, sessions[login])
            assert record is not None and record.login == login
        else:
            assert hit(store, [f"k{i}"], None, window=WINDOW, now=T0)[0].hits == 0

    async def all_at_once() -> None:
        await asyncio.gather(*(run_bridged(one, i) for i in range(200)))

    asyncio.run_coroutine_threadsafe(all_at_once(), loop_thread.loop).result(60)


def test_a_cancelled_call_leaves_the_next_reply_to_the_next_caller(
    store: RedisSessionStore, loop_thread: LoopThread
) -> None:
    session_id = start(store)
    counts, get = type(store).counts, type(store).get

    async def cancel_then_read() -> object:
        task = asyncio.ensure_future(run_bridged(lambda: counts(store, ["c"], now=T0)))
        await asyncio.sleep(0)  # the command is written
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await run_bridged(get, store, session_id)

    record = asyncio.run_coroutine_threadsafe(cancel_then_read(), loop_thread.loop).result(60)
    assert record is not None and getattr(record, "session_id", None) == session_id


def test_each_event_loop_has_its_own_connection(shared_redis: RedisServer) -> None:
    store = new_store(shared_redis.url)
    loops = LoopThread(), LoopThread()
    try:
        session_id = loops[0].run(lambda: start(store))
        assert loops[1].run(lambda: store.get(session_id)) is not None
        assert len(store._loop_calls._clients) == 2  # type: ignore[union-attr]
    finally:
        store.close()
        for loop in loops:
            loop.stop()


class SilentServer:
    """A TCP server that accepts connections, counts them and never answers (a Redis that hangs)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except TimeoutError:
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for connection in self.accepted:
            connection.close()
        self.listener.close()


def test_callers_waiting_for_a_connection_share_one_attempt(loop_thread: LoopThread) -> None:
    """20 calls at once on a new store whose server never answers its AUTH: one connection attempt
    among them, all 20 refused (503) with it, none queued behind another's attempt."""
    server = SilentServer()
    url = f"redis://:pw-never-checked@127.0.0.1:{server.port}/0?socket_timeout=0.5&socket_connect_timeout=0.5"
    store = calls_on_loop(RedisSessionStore(url), loop_thread, strict=True)
    get = type(store).get

    async def all_at_once() -> list[object]:
        return await asyncio.gather(*(run_bridged(get, store, f"s{i}") for i in range(20)), return_exceptions=True)

    try:
        outcomes = asyncio.run_coroutine_threadsafe(all_at_once(), loop_thread.loop).result(60)
        assert all(isinstance(outcome, ProviderUnavailable) for outcome in outcomes), outcomes
        assert len(server.accepted) == 1
    finally:
        store.close()
        server.stop()


def test_a_call_on_a_connection_already_lost_fails_at_once(shared_redis: RedisServer, loop_thread: LoopThread) -> None:
    """A command given to a connection that was lost in between (its watchdog gone with it) fails
    at once instead of waiting for an answer that cannot come."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        _transport, connection = await loop.create_connection(
            lambda: _Connection(loop, 5.0), "127.0.0.1", shared_redis.port
        )
        assert await connection.send(b"*1\r\n$4\r\nPING\r\n") == b"PONG"
        connection.fail(ConnectionError("lost"))
        for _ in range(5):  # the transport's own connection_lost runs too, and the loop moves on
            await asyncio.sleep(0)
        with pytest.raises(ConnectionError):  # not a TimeoutError from the bound below: no hang
            await asyncio.wait_for(connection.send(b"*1\r\n$4\r\nPING\r\n"), 3)

    asyncio.run_coroutine_threadsafe(scenario(), loop_thread.loop).result(60)


def test_commands_of_one_loop_iteration_go_out_in_one_write(shared_redis: RedisServer, loop_thread: LoopThread) -> None:
    """Concurrent requests' commands are sent together (one system call, one wake-up of Redis,
    which halved Redis's CPU per login in bench_deploy); a lost connection sends nothing more."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        transport, connection = await loop.create_connection(
            lambda: _Connection(loop, 5.0), "127.0.0.1", shared_redis.port
        )
        writes: list[bytes] = []
        write = transport.write

        def counted(data: bytes | bytearray | memoryview) -> None:
            writes.append(bytes(data))
            write(data)

        transport.write = counted  # type: ignore[method-assign]  # observed, not replaced
        keys = [f"batch-{uuid.uuid4().hex}-{index}" for index in range(20)]
        sets = [connection.send(hiredis.pack_command(("SET", key, str(index)))) for index, key in enumerate(keys)]
        gets = [connection.send(hiredis.pack_command(("GET", key))) for key in keys]
        assert await asyncio.gather(*sets) == [b"OK"] * 20
        assert await asyncio.gather(*gets) == [str(index).encode() for index in range(20)]
        assert len(writes) == 1
        late = connection.send(hiredis.pack_command(("GET", keys[0])))
        connection.fail(ConnectionError("lost"))  # before the iteration's end
        with pytest.raises(ConnectionError):
            await late
        assert len(writes) == 1

    asyncio.run_coroutine_threadsafe(scenario(), loop_thread.loop).result(60)


def _on_uvloop(main: Callable[[], Any]) -> Any:
    import uvloop  # what `authcore serve` runs (uvicorn[standard])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def test_a_loop_writes_its_commands_before_it_runs_the_next_callback(shared_redis: RedisServer) -> None:
    """On uvloop (what ``authcore serve`` runs), the commands of one iteration are on their way
    before the loop runs a callback scheduled after them: Redis has them while that callback
    runs (``WebLogin.awaited`` signs a login's token there, overlapping Redis's work)."""
    store = new_store(shared_redis.url)
    key = f"t{uuid.uuid4().hex}"
    seen: list[bytes | None] = []
    blocking = redis.Redis.from_url(shared_redis.url)

    def look() -> None:  # blocks the loop: only bytes already written can reach Redis meanwhile
        deadline = time.monotonic() + 10
        while blocking.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(blocking.get(key))

    async def main() -> Any:
        client = store._loop_calls._client()  # type: ignore[union-attr]
        await client.send(("PING",))  # connected
        reply = client.send(("SET", key, "written"))
        asyncio.get_running_loop().call_soon(look)
        return await reply

    try:
        assert _on_uvloop(main) == b"OK" and seen == [b"written"]
    finally:
        blocking.delete(key)
        blocking.close()
        store.close()


# ------------------------------------------------------------------------------ what Redis may answer


def test_a_script_redis_forgot_is_sent_again(store: RedisSessionStore, shared_redis: RedisServer) -> None:
    assert store.hit(["k"], None, window=WINDOW, now=T0)[0].hits == 0
    raw = redis.Redis(host="127.0.0.1", port=shared_redis.port, socket_timeout=5)
    raw.script_flush()
    assert store.hit(["k"], None, window=WINDOW, now=T0)[0].hits == 1  # NOSCRIPT, then EVAL
    assert store.hit(["k"], None, window=WINDOW, now=T0)[0].hits == 2  # known again
    raw.close()


def test_a_session_created_after_redis_forgot_its_script_is_there(
    store: RedisSessionStore, shared_redis: RedisServer
) -> None:
    """The new session's reply is checked later (check_later); a NOSCRIPT there sends the script's
    text and waits again, from inside the check."""
    start(store)  # loads the scripts
    raw = redis.Redis(host="127.0.0.1", port=shared_redis.port, socket_timeout=5)
    raw.script_flush()
    session_id = start(store, "bob")
    record = store.get(session_id)
    assert record is not None and record.login == "bob"
    raw.close()


def test_a_server_turned_replica_is_unavailable_until_it_is_master_again(
    redis_server: RedisServer, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    store = calls_on_loop(new_store(redis_server.url), loop_thread, strict=True)
    session_id = start(store)
    raw = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
    raw.execute_command("REPLICAOF", "127.0.0.1", "1")  # nothing listens there: a replica, read-only
    try:
        with caplog.at_level(logging.WARNING, logger="authcore.sessions"), pytest.raises(ProviderUnavailable):
            start(store, "bob")
        assert "READONLY" in caplog.text
        assert store.get(session_id) is not None  # reads still answer
    finally:
        raw.execute_command("REPLICAOF", "NO", "ONE")
    assert store.get(start(store, "bob")) is not None
    raw.close()
    store.close()


def test_sentinels_that_cannot_answer_are_each_asked_once_and_the_call_is_unavailable(
    loop_thread: LoopThread, tmp_path: Path
) -> None:
    """On the loop a Sentinel store asks the Sentinels itself, in the URL's order: one that never
    answers, one that refuses the connection, one that does not know the service; each once, and
    the call is a 503."""
    silent = SilentServer()
    closed = free_port()
    master = start_redis(tmp_path / "master", appendonly=False)
    other = start_sentinel(tmp_path / "sentinel", master, service="another")
    hosts = f"127.0.0.1:{silent.port},127.0.0.1:{closed},127.0.0.1:{other.port}"
    url = f"redis+sentinel://{hosts}/mymaster/0?socket_timeout=0.5&socket_connect_timeout=0.5"
    store = calls_on_loop(RedisSessionStore(url), loop_thread, strict=True)
    try:
        for _attempt in range(2):
            with pytest.raises(ProviderUnavailable):
                store.get("anything")
        assert len(silent.accepted) == 2  # once per call
    finally:
        store.close()
        other.stop()
        master.stop()
        silent.stop()


def test_a_sentinel_store_follows_the_master_the_sentinel_names(loop_thread: LoopThread, tmp_path: Path) -> None:
    """A failover as the Sentinel makes it: the Sentinel names another master and the old one turns
    replica. The next write on the old connection is READONLY (a 503) and drops it; the call after
    asks the Sentinel again and writes to the new master."""
    first = start_redis(tmp_path / "first", appendonly=False)
    second = start_redis(tmp_path / "second", appendonly=False)
    sentinel = start_sentinel(tmp_path / "sentinel", first)
    store = calls_on_loop(new_store(sentinel.url), loop_thread, strict=True)
    raw_first = redis.Redis(host="127.0.0.1", port=first.port, socket_timeout=5)
    raw_second = redis.Redis(host="127.0.0.1", port=second.port, socket_timeout=5)
    raw_sentinel = redis.Redis(host="127.0.0.1", port=sentinel.port, socket_timeout=5)
    try:
        before = start(store)
        assert raw_first.exists(store._session_key(before)) == 1
        raw_sentinel.execute_command("SENTINEL", "REMOVE", "mymaster")
        raw_sentinel.execute_command("SENTINEL", "MONITOR", "mymaster", "127.0.0.1", second.port, 1)
        raw_first.execute_command("REPLICAOF", "127.0.0.1", second.port)
        with pytest.raises(ProviderUnavailable):
            start(store, "bob")  # the old master, now a replica: READONLY
        after = start(store, "carol")
        assert raw_second.exists(store._session_key(after)) == 1
    finally:
        for client in (raw_first, raw_second, raw_sentinel):
            client.close()
        store.close()
        for server in (sentinel, first, second):
            server.stop()


def test_a_sentinel_that_sees_too_few_others_names_no_master(loop_thread: LoopThread, tmp_path: Path) -> None:
    """``min_other_sentinels``: a Sentinel that sees fewer other Sentinels (one cut off from the
    rest) is not believed, on the loop's own discovery and on redis-py's alike (the revocation
    feed and calls off the loop use it): a 503 until a second real Sentinel of the same master
    has found the first; then both paths write to the master."""
    master = start_redis(tmp_path / "master", appendonly=False)
    first = start_sentinel(tmp_path / "first", master)
    url = f"{first.url}?min_other_sentinels=1&socket_timeout=2&prefix=t{uuid.uuid4().hex[:12]}:"
    on_loop = calls_on_loop(RedisSessionStore(url), loop_thread, strict=True)
    blocking = RedisSessionStore(url)
    raw_first = redis.Redis(host="127.0.0.1", port=first.port, socket_timeout=5)
    second = None
    try:
        for store in (on_loop, blocking):
            with pytest.raises(ProviderUnavailable):
                start(store)
        second = start_sentinel(tmp_path / "second", master)
        deadline = time.monotonic() + 30  # Sentinels announce themselves every 2 s on the master
        while raw_first.sentinel_master("mymaster")["num-other-sentinels"] < 1:
            assert time.monotonic() < deadline, "the two Sentinels never found each other"
            time.sleep(0.2)
        raw_master = redis.Redis(host="127.0.0.1", port=master.port, socket_timeout=5)
        for store in (on_loop, blocking):
            assert raw_master.exists(store._session_key(start(store))) == 1
        raw_master.close()
    finally:
        raw_first.close()
        on_loop.close()
        blocking.close()
        for server in (second, first, master):
            if server is not None:
                server.stop()


def test_a_wrong_password_is_unavailable_without_echoing_it(
    tmp_path: Path, loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis(tmp_path / "redis", password=PASSWORD)
    try:
        wrong = f"redis://:not-{PASSWORD}@127.0.0.1:{server.port}/0"
        store = calls_on_loop(RedisSessionStore(wrong), loop_thread, strict=True)
        with caplog.at_level(logging.DEBUG), pytest.raises(ProviderUnavailable) as caught:
            store.get("x")
        assert str(caught.value) == "session store unavailable"
        assert PASSWORD not in caplog.text + repr(caught.value) + repr(store)
        store.close()
        right = calls_on_loop(new_store(server.url), loop_thread, strict=True)
        assert right.get(start(right)) is not None
        right.close()
    finally:
        server.stop()


@pytest.mark.parametrize("on_loop", [False, True])
def test_a_defect_is_raised_as_the_blocking_client_raises_it(
    shared_redis: RedisServer, loop_thread: LoopThread, on_loop: bool
) -> None:
    store = new_store(shared_redis.url)
    if on_loop:
        store = calls_on_loop(store, loop_thread, strict=True)
    raw = redis.Redis(host="127.0.0.1", port=shared_redis.port, socket_timeout=5)
    raw.set(store._session_key("sid"), "a string, not a hash")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        store.get("sid")
    raw.close()
    store.close()


# ------------------------------------------------------------------------------ where logins run


@pytest.mark.parametrize(
    ("store_url", "provider", "login", "refresh"),
    [
        ("memory://", "dummy", "none", "none"),
        ("redis://127.0.0.1:1/0", "dummy", "loop", "loop"),
        ("rediss://127.0.0.1:1/0", "dummy", "loop", "loop"),
        ("redis+sentinel://127.0.0.1:1/mymaster", "dummy", "loop", "loop"),
        ("redis://127.0.0.1:1/0", "nope", "thread", "loop"),
    ],
)
def test_where_logins_and_refreshes_run(store_url: str, provider: str, login: str, refresh: str) -> None:
    config = {"providers": [{"name": "dummy", "type": "dummy"}], "sessions": {"store": store_url}}
    with AuthManager.from_config(config) as manager:
        assert manager.login_waits(provider) == login
        assert manager.refresh_waits() == refresh
        assert manager.login_blocks(provider) is (login != "none")


class Directory(Provider):
    """A provider that waits on a server to check a login (LDAP, a user database) and keeps no
    session of its own: a refresh never asks it."""

    type = "directory"
    blocking = True

    def authenticate(self, credentials: Credentials) -> Identity:
        assert isinstance(credentials, PasswordCredentials)
        if credentials.password.get_secret_value() != "right":
            raise InvalidCredentials()
        return Identity(login=credentials.login)


class RemoteSessions(Directory, UpstreamSessions):
    """A provider that waits and keeps a session of its own (Keycloak): a refresh asks it."""

    type = "remote-sessions"
    refreshed: ClassVar[list[str]] = []

    def refresh_upstream(self, identity: Identity) -> Identity:
        type(self).refreshed.append(identity.login)
        return identity


@pytest.mark.parametrize(
    ("store_url", "providers", "refresh", "rotation_on_loop"),
    [
        ("memory://", ["Directory"], "none", False),
        ("redis://127.0.0.1:1/0", ["Directory"], "loop", True),
        ("memory://", ["RemoteSessions"], "thread", False),
        ("redis://127.0.0.1:1/0", ["Directory", "RemoteSessions"], "thread", True),
        ("sqlite:///:memory:", ["Directory", "RemoteSessions"], "thread", False),
    ],
)
def test_a_refresh_waits_only_for_providers_it_asks(
    store_url: str, providers: list[str], refresh: str, rotation_on_loop: bool
) -> None:
    """A provider that waits sends its logins to a thread; a refresh asks a provider only to
    refresh its own session upstream, so one without (a directory) leaves refreshes in-line, or
    on the loop with Redis, where arefresh awaits every rotation and learns whose session it is."""
    config = {
        "providers": [{"name": name.lower(), "class": f"{__name__}:{name}"} for name in providers],
        "sessions": {"store": store_url},
    }
    with AuthManager.from_config(config) as manager:
        assert manager.login_waits("directory") == "thread"
        assert manager.refresh_waits() == refresh
        assert manager.rotation_on_loop() is rotation_on_loop


def test_a_directory_sessions_refresh_is_awaited_on_the_loop(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    """A login through a provider that waits runs in a thread with the blocking client; the
    session's refreshes are awaited on the loop (the blocking client broken, no bridged call),
    and a reused refresh token still ends the session."""
    config = {
        "providers": [{"name": "directory", "class": f"{__name__}:Directory"}],
        "sessions": {"store": f"{shared_redis.url}?prefix=t{uuid.uuid4().hex[:12]}:"},
        "tokens": {"secret": "loop-refresh-test-secret-" + "s" * 40},
    }
    with AuthManager.from_config(config) as manager:
        first = loop_thread.wait(manager.alogin("directory", login="dora", password="right"))
        without_blocking_client(manager._sessions.store)  # from here a call off the loop's path fails
        with bridged_calls() as bridged:
            second = loop_thread.wait(manager.arefresh(first.refresh_token))
        assert bridged == []
        assert second.identity.login == "dora" and second.refresh_token != first.refresh_token
        with pytest.raises(RefreshTokenReused):
            loop_thread.wait(manager.arefresh(first.refresh_token))
        with pytest.raises(InvalidToken):
            loop_thread.run(lambda: manager.verify(second.access_token))


def mixed_config(redis_url: str) -> dict[str, Any]:
    """A directory beside a provider that keeps sessions upstream and waits (LDAP and Keycloak)."""
    return {
        "providers": [
            {"name": "directory", "class": f"{__name__}:Directory"},
            {"name": "remote", "class": f"{__name__}:RemoteSessions"},
        ],
        "sessions": {"store": f"{redis_url}?prefix=t{uuid.uuid4().hex[:12]}:"},
        "tokens": {"secret": "loop-refresh-test-secret-" + "s" * 40},
    }


@contextlib.contextmanager
def upstream_threads() -> Iterator[list[str]]:
    """The names of the threads RemoteSessions.refresh_upstream runs in, within the block."""
    threads: list[str] = []
    refreshed = RemoteSessions.refreshed

    class Watched(list[str]):
        def append(self, login: str) -> None:
            threads.append(threading.current_thread().name)
            super().append(login)

    RemoteSessions.refreshed = Watched()
    try:
        yield threads
    finally:
        RemoteSessions.refreshed = refreshed


def test_a_remote_sessions_refresh_asks_it_in_a_thread(shared_redis: RedisServer, loop_thread: LoopThread) -> None:
    """Beside a directory, a provider keeping sessions upstream that waits: its sessions'
    refreshes are asked upstream in a worker thread (never on the event loop)."""
    with upstream_threads() as threads, AuthManager.from_config(mixed_config(shared_redis.url)) as manager:
        first = loop_thread.wait(manager.alogin("remote", login="rémi", password="right"))
        second = loop_thread.wait(manager.arefresh(first.refresh_token))
        assert second.identity.login == "rémi"
        assert list(RemoteSessions.refreshed) == ["rémi"]
        assert threads and threads[0] != "authcore-test-loop"
        third = loop_thread.wait(manager.arefresh(second.refresh_token))
        assert threads[1] != "authcore-test-loop" and third.identity.login == "rémi"
        with pytest.raises(RefreshTokenReused):  # the rotation, on the loop, still catches a reuse
            loop_thread.wait(manager.arefresh(first.refresh_token))
        with pytest.raises(InvalidToken):
            loop_thread.run(lambda: manager.verify(third.access_token))


def test_beside_a_remote_provider_a_directory_sessions_refresh_stays_on_the_loop(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    """The same configuration: a directory's session is refreshed on the loop, no bridged call,
    no worker thread, the blocking client never used; the remote provider is not asked."""
    with upstream_threads() as threads, AuthManager.from_config(mixed_config(shared_redis.url)) as manager:
        assert manager.refresh_waits() == "thread" and manager.rotation_on_loop()
        first = loop_thread.wait(manager.alogin("directory", login="dora", password="right"))
        without_blocking_client(manager._sessions.store)  # from here a call off the loop's path fails
        with bridged_calls() as bridged:
            second = loop_thread.wait(manager.arefresh(first.refresh_token))
        assert bridged == [] and threads == []
        assert second.identity.login == "dora" and second.refresh_token != first.refresh_token


class EndedUpstream(RemoteSessions):
    """A provider whose upstream session has ended: its refresh is refused."""

    type = "ended-upstream"

    def refresh_upstream(self, identity: Identity) -> Identity:
        raise InvalidToken("upstream session ended")


def test_a_refusal_upstream_in_the_thread_ends_the_session(shared_redis: RedisServer, loop_thread: LoopThread) -> None:
    """The upstream step in its worker thread is refused: the session ends (the store called
    from that thread), and its tokens are refused on the loop after."""
    config = mixed_config(shared_redis.url)
    config["providers"][1] = {"name": "remote", "class": f"{__name__}:EndedUpstream"}
    with AuthManager.from_config(config) as manager:
        first = loop_thread.wait(manager.alogin("remote", login="rémi", password="right"))
        with pytest.raises(InvalidToken):
            loop_thread.wait(manager.arefresh(first.refresh_token))
        with pytest.raises(InvalidToken):
            loop_thread.run(lambda: manager.verify(first.access_token))


def test_a_login_on_the_loop_takes_one_round_trip(
    shared_redis: RedisServer, loop_thread: LoopThread, redis_writes: list[int]
) -> None:
    """A provider that answers without waiting is counted after its answer: the new session and
    the throttle's one step go out in one write (the session's reply checked with the step's),
    one round trip where a reservation first took two (and three before check_later)."""
    writes = redis_writes
    config = {
        "providers": [{"name": "dummy", "type": "dummy"}],
        "sessions": {"store": f"{shared_redis.url}?prefix=t{uuid.uuid4().hex[:12]}:"},
        "web": {"cookie_session": False, "throttle": {"enabled": True}},
    }
    with AuthManager.from_config(config) as manager:
        core = FastAPIAuth(manager).core
        assert core.settings.throttle is not None
        body = LoginBody.model_validate({"plugin": "dummy", "login": "alice", "password": "read"})
        loop_thread.run(lambda: core.login(body, "127.0.0.1"))  # connects, loads the scripts
        writes.clear()
        result = loop_thread.run(lambda: core.login(body, "127.0.0.1"))
        assert writes == [2]
        assert manager.verify(result.access_token).login == "alice"  # the session is there


# ------------------------------------------------------------------------------ refreshes awaited on the loop


def _redis_manager(url: str, provider: str = "dummy") -> AuthManager:
    config = {
        "providers": [{"name": provider, "type": "dummy"}],
        "sessions": {"store": url},
        "tokens": {"secret": "loop-refresh-test-secret-" + "s" * 40},
    }
    manager = AuthManager.from_config(config)
    without_blocking_client(manager._sessions.store)  # a call off the loop's path fails
    return manager


def test_a_refresh_on_the_loop_awaits_its_rotation_without_the_bridge(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    """AuthManager.arefresh awaits the rotation on the loop: no bridged call; a reused refresh
    token ends the session there too, the cached access token with it."""
    url = f"{shared_redis.url}?prefix=t{uuid.uuid4().hex[:12]}:"
    with _redis_manager(url) as manager:
        first = loop_thread.run(lambda: manager.login("dummy", login="alice", password="read"))
        with bridged_calls() as bridged:
            second = loop_thread.wait(manager.arefresh(first.refresh_token))
        assert bridged == []
        assert second.identity.login == "alice" and second.refresh_token != first.refresh_token
        assert loop_thread.run(lambda: manager.verify(second.access_token)).login == "alice"  # now cached
        with pytest.raises(RefreshTokenReused):
            loop_thread.wait(manager.arefresh(first.refresh_token))
        with pytest.raises(InvalidToken):
            loop_thread.run(lambda: manager.verify(second.access_token))
        with pytest.raises(InvalidToken):
            loop_thread.wait(manager.arefresh("rt_" + "x" * 43))  # unknown: nothing to end


def test_a_store_call_after_an_awaited_rotation_runs_bridged(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    """A session whose provider is no longer configured ends at its refresh: the revocation after
    the awaited rotation is a store call, made bridged (the blocking client would fail)."""
    url = f"{shared_redis.url}?prefix=t{uuid.uuid4().hex[:12]}:"
    with _redis_manager(url) as before, _redis_manager(url, provider="other") as after:
        result = loop_thread.run(lambda: before.login("dummy", login="bob", password="read"))
        with pytest.raises(InvalidToken, match="session ended"):
            loop_thread.wait(after.arefresh(result.refresh_token))
        session_id = before._tokens.decode(result.access_token)["sid"]
        record = loop_thread.run(lambda: after._sessions.get(session_id))
        assert record is not None and record.revoked


def test_a_store_without_loop_calls_awaits_its_rotation_in_a_thread(
    shared_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the blocking client stays (Sentinel; here loop calls made unavailable), ``arotate``
    runs ``rotate`` in a worker thread: same answers, the loop never blocked."""
    monkeypatch.setattr("authcore.sessions.redis.loop_calls_for", lambda location: None)
    store = new_store(shared_redis.url)
    assert not store.awaits_on_loop
    sessions = Sessions(store, SessionConfig(idle_timeout=100, max_lifetime=250))
    assert not sessions.awaits_rotation
    record, token = sessions.start(login="dave", provider="p", identity={"login": "dave"})
    rotated, new_token = asyncio.run(sessions.arefresh(token))
    assert rotated.session_id == record.session_id and new_token != token
    with pytest.raises(RefreshTokenReused):
        asyncio.run(sessions.arefresh(token))
    store.close()


def test_refreshes_through_the_loop_answer_as_the_bridged_ones(shared_redis: RedisServer) -> None:
    """Over the FastAPI adapter on Redis: a good refresh, a reused one, a malformed body, an
    empty one (a cookie refresh, here without cookie sessions), each the same answer as ever."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    url = f"{shared_redis.url}?prefix=t{uuid.uuid4().hex[:12]}:"
    with _redis_manager(url) as manager:
        app = FastAPI()
        FastAPIAuth(manager).install(app)
        with TestClient(app) as client:
            login = client.post("/auth/login", json={"plugin": "dummy", "login": "carol", "password": "read"})
            token = login.json()["refresh_token"]
            good = client.post("/auth/refresh", json={"refresh_token": token})
            assert good.status_code == 200 and good.json()["login"] == "carol"
            reused = client.post("/auth/refresh", json={"refresh_token": token})
            assert reused.status_code == 401
            for body in (b'{"refresh_token": 5}', b"{", '{"refresh_token": "rt_\u00e9"}'.encode()):
                bad = client.post("/auth/refresh", content=body, headers={"content-type": "application/json"})
                assert bad.status_code in (400, 401, 422) and "detail" in bad.json()
            empty = client.post("/auth/refresh", content=b"")
            assert empty.status_code == 401 and empty.json()["detail"] == "refresh token required"


def test_a_blocking_provider_or_permission_store_sends_both_to_a_thread(tmp_path: Path) -> None:
    config = {
        "providers": [{"name": "dummy", "type": "dummy"}],
        "sessions": {"store": "redis://127.0.0.1:1/0"},
        "permissions": {"store": f"sqlite:///{tmp_path}/permissions.db"},
    }
    with AuthManager.from_config(config) as manager:
        assert (manager.login_waits("dummy"), manager.refresh_waits()) == ("thread", "thread")


# ------------------------------------------------------------------------------ calls collected by a coroutine


def test_calls_collected_by_a_coroutine_are_checked_when_its_block_ends(loop_thread: LoopThread) -> None:
    """``async with collecting()``: each check awaited in order when the block ends, also when it
    raises; a failed check raises there and drops the ones after it, their errors retrieved."""
    checked: list[str] = []

    async def check(future: asyncio.Future[str]) -> None:
        value = await future
        if value == "bad":
            raise ValueError("the write failed")
        checked.append(value)

    async def block(values: list[str], then_raise: bool = False) -> None:
        loop = asyncio.get_running_loop()
        async with loop_bridge.collecting():
            assert loop_bridge.on_loop() and not bridged()
            for value in values:
                future = loop.create_future()
                loop.call_soon(future.set_result, value)
                collector = loop_bridge.collected()
                assert collector is not None
                collector.add(future, check)
            if then_raise:
                raise LookupError("the block's own error")
        assert loop_bridge.collected() is None and not loop_bridge.on_loop()

    loop_thread.wait(block(["a", "b"]))
    assert checked == ["a", "b"]
    with pytest.raises(LookupError):
        loop_thread.wait(block(["c"], then_raise=True))
    assert checked == ["a", "b", "c"]
    with pytest.raises(ValueError, match="the write failed"):
        loop_thread.wait(block(["d", "bad", "e"]))
    assert checked == ["a", "b", "c", "d"]
    with pytest.raises(RuntimeError, match="collecting"):
        loop_thread.wait(
            _in_collecting(lambda: wait_for(asyncio.get_running_loop().create_future()))
        )  # a call that waits: a defect


def test_check_later_in_a_collecting_block_checks_when_it_ends(loop_thread: LoopThread) -> None:
    """A store that follows the bridge's contract (``check_later`` with a plain check) works in a
    coroutine's collecting block as well: its checks run when the block ends, errors raised there."""
    checked: list[object] = []

    def check(future: asyncio.Future[object]) -> None:
        checked.append(future.result())  # raises the reply's own error

    async def block(error: BaseException | None) -> None:
        loop = asyncio.get_running_loop()
        async with loop_bridge.collecting():
            future = loop.create_future()
            loop.call_soon(future.set_exception, error) if error else loop.call_soon(future.set_result, "ok")
            check_later(future, check)
            assert checked == []

    loop_thread.wait(block(None))
    assert checked == ["ok"]
    with pytest.raises(ConnectionError, match="lost"):
        loop_thread.wait(block(ConnectionError("lost")))
    assert checked == ["ok"]

    async def outside() -> None:
        check_later(asyncio.get_running_loop().create_future(), check)

    with pytest.raises(RuntimeError, match="collecting"):
        loop_thread.wait(outside())


def test_alogin_on_redis_runs_in_line_with_its_session_checked_before_it_returns(
    shared_redis: RedisServer, loop_thread: LoopThread
) -> None:
    url = f"{shared_redis.url}?prefix=t{uuid.uuid4().hex[:12]}:"
    with _redis_manager(url) as manager:
        assert manager.login_waits("dummy") == "loop"
        loop_thread.wait(manager.alogin("dummy", login="kim", password="read"))  # connects, loads the scripts
        with bridged_calls() as bridged:
            result = loop_thread.wait(manager.alogin("dummy", login="kim", password="read"))
        assert bridged == [] and loop_thread.run(lambda: manager.verify(result.access_token)).login == "kim"


async def _in_collecting(function: Callable[[], object]) -> object:
    async with loop_bridge.collecting():
        return function()


def test_a_purge_due_on_the_loop_is_sent_without_waiting(shared_redis: RedisServer, loop_thread: LoopThread) -> None:
    """Every PURGE_EVERY creations a store purges; a creation collected by a coroutine cannot wait
    for it, so it sends as many sessions' worth of batches, checked with the creation."""
    store = without_blocking_client(new_store(shared_redis.url))
    sessions = Sessions(store, SessionConfig(idle_timeout=100, max_lifetime=250))
    old = loop_thread.run(lambda: sessions.start(login="old", provider="p", identity={}, now=time.time() - 1000)[0])
    store._creates = PURGE_EVERY - 1
    new = loop_thread.wait(_in_collecting(lambda: sessions.start(login="new", provider="p", identity={})[0]))
    assert loop_thread.run(lambda: store.peek(old.session_id)) is None  # past its deadlines: purged
    assert loop_thread.run(lambda: store.peek(new.session_id)) is not None
    store.close()


def _master(**fields: Any) -> list[Any]:
    reply: list[Any] = []
    for key, value in {"name": b"authcore", "ip": b"127.0.0.1", "port": b"6390", "flags": b"master", **fields}.items():
        reply += [key.encode(), value]
    return reply


@pytest.mark.parametrize(
    ("reply", "address"),
    [
        (_master(), ("127.0.0.1", 6390)),
        (_master(ip=b"::1"), ("::1", 6390)),
        (_master(ip="hôte.example".encode()), ("hôte.example", 6390)),  # unicode: passed on as it is
        (_master(flags=b"master,disconnected"), ("127.0.0.1", 6390)),
        (_master(flags=b"master,s_down"), None),
        (_master(flags=b"master,o_down"), None),
        (_master(flags=b"slave"), None),
        (_master(port=b"port"), None),
        (_master(port=b"0"), None),
        (_master(port=b"65536"), None),
        (_master(port=b"-1"), None),
        (_master(ip=b""), None),
        (_master(port=6390), ("127.0.0.1", 6390)),  # an integer where a bulk string belongs
        (_master(ip=b"\xff\xfe"), ("\ufffd\ufffd", 6390)),  # not UTF-8: some text, then a refused connect
        (_master()[:-1], None),  # a field without its value
        ([], None),  # no fields
        (hiredis.ReplyError("ERR No such master with that name"), None),
        (None, None),
        (b"master", None),
        ([b"ip", b"127.0.0.1"], None),  # no port, no flags
        (_master() + [b"x" * 65536, b"y" * 65536] * 64, ("127.0.0.1", 6390)),  # huge
    ],
)
def test_a_sentinels_master_reply_is_read_defensively(reply: Any, address: tuple[str, int] | None) -> None:
    """``SENTINEL MASTER``'s reply comes from the network: a master that is up gives its
    address, anything else (down, a replica, an error, a malformed or odd-sized list, wrong
    types, bytes that are not UTF-8) gives none or some text, and nothing raises."""
    from authcore.sessions.redis_loop import _master_address

    assert _master_address(reply) == address


@pytest.mark.parametrize(
    ("others", "wanted", "named"),
    [
        (b"2", 2, True),
        (b"3", 2, True),
        (b"1", 2, False),
        (b"0", 1, False),
        (None, 1, False),  # the field missing
        (None, 0, True),  # not asked for: not looked at
        (b"", 1, False),
        (b"-1", 1, False),
        (b"two", 1, False),
        ("\u0662".encode(), 1, False),  # ARABIC-INDIC DIGIT TWO: a digit to str.isdigit, not a count
        (b"9" * 5000, 1, False),  # huge
        (7, 1, True),  # an integer where a bulk string belongs
    ],
)
def test_a_sentinel_must_see_enough_others(others: Any, wanted: int, named: bool) -> None:
    """The count of other Sentinels in ``SENTINEL MASTER``'s reply is read as strictly as the
    rest: anything but a plain number below the minimum names no master."""
    from authcore.sessions.redis_loop import _master_address

    fields = {} if others is None else {"num-other-sentinels": others}
    assert (_master_address(_master(**fields), wanted) is not None) is named
