"""Run a store's calls as an async adapter runs them: bridged onto an event loop (:mod:`authcore.loop_bridge`).

A store whose ``awaits_on_loop`` is true (the Redis store on ``redis://``) answers calls made
by code that :func:`~authcore.loop_bridge.run_bridged` runs on an event loop through a path of
its own (:mod:`authcore.sessions.redis_loop`). The conformance suites call stores from plain
test code; :func:`calls_on_loop` makes each public call of a store go through that path, so the
same suites check it::

    loop = LoopThread()
    store = calls_on_loop(RedisSessionStore(url), loop, strict=True)
    ...
    loop.stop()

``strict`` also points the store's blocking client at a port where nothing listens, so a call
that would not take the loop path fails instead of passing unnoticed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from .. import loop_bridge
from ..loop_bridge import bridged, collecting, run_bridged
from .ports import free_port

__all__ = ["STORE_CALLS", "LoopThread", "bridged_calls", "calls_on_loop", "without_blocking_client"]

T = TypeVar("T")

#: The public calls of a session store and of its shared state.
STORE_CALLS: Final = (
    "create",
    "get",
    "peek",
    "rotate",
    "touch",
    "revoke",
    "session_of",
    "sessions_of",
    "update_identity",
    "purge",
    "hit",
    "counts",
    "give_back",
    "forget",
    "settle",
    "claim",
    "agreed_secret",
)


class LoopThread:
    """An asyncio event loop running in a thread of its own; :meth:`run` runs code bridged onto it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="authcore-test-loop", daemon=True)
        self._thread.start()

    def run(self, function: Callable[[], T], *, timeout: float = 60.0) -> T:
        """``function()`` run by :func:`~authcore.loop_bridge.run_bridged` on the loop; its result or error."""
        return asyncio.run_coroutine_threadsafe(run_bridged(function), self.loop).result(timeout)

    def wait(self, awaitable: Coroutine[Any, Any, T], *, timeout: float = 60.0) -> T:
        """Await *awaitable* on the loop (no bridge); its result or error."""
        return asyncio.run_coroutine_threadsafe(awaitable, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def calls_on_loop(store: T, loop: LoopThread, *, strict: bool = False, awaited: bool = False) -> T:
    """*store*, its :data:`STORE_CALLS` made on *loop* through the bridge (calls among them stay in it).

    *awaited*: the calls a coroutine makes without the bridge are made so, on *loop*: ``rotate``
    awaits the store's ``arotate`` (as ``AuthManager.arefresh`` does), ``settle`` its ``asettle``,
    and ``create`` runs in-line within :func:`~authcore.loop_bridge.collecting` (as
    ``WebLogin.awaited`` does), so the suites check those paths too.
    """
    create = getattr(store, "create", None)
    for name in STORE_CALLS:
        method = getattr(store, name, None)
        if method is not None:
            setattr(store, name, _on_loop(method, loop))
    if awaited:
        for name, awaitable in (("rotate", store.arotate), ("settle", store.asettle)):  # type: ignore[attr-defined]
            setattr(store, name, _awaited(awaitable, loop))
        if create is not None:
            setattr(store, "create", lambda *args, **kwargs: loop.wait(_collected(create, *args, **kwargs)))  # noqa: B010
    if strict:
        _break_blocking_client(store)
    return store


def _on_loop(method: Callable[..., Any], loop: LoopThread) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if bridged():  # a call made by another call (create's purge): already on the loop
            return method(*args, **kwargs)
        return loop.run(lambda: method(*args, **kwargs))

    return call


def _awaited(method: Callable[..., Coroutine[Any, Any, Any]], loop: LoopThread) -> Callable[..., Any]:
    return lambda *args, **kwargs: loop.wait(method(*args, **kwargs))


async def _collected(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``method(*args, **kwargs)`` in-line in a coroutine, its store calls collected and checked."""
    async with collecting():
        return method(*args, **kwargs)


@contextmanager
def bridged_calls() -> Iterator[list[None]]:
    """Within the block, every call :func:`~authcore.loop_bridge.run_bridged` starts is recorded
    (one ``None`` each) in the list it gives: a test that a path skips the bridge expects it empty."""
    calls: list[None] = []
    acquire = loop_bridge._acquire

    def counted() -> Any:
        calls.append(None)
        return acquire()

    loop_bridge._acquire = counted  # observed, not replaced
    try:
        yield calls
    finally:
        loop_bridge._acquire = acquire


def without_blocking_client(store: T) -> T:
    """*store* with its redis-py client pointed where nothing listens: a call that does not take
    the event loop's path fails instead of passing unnoticed."""
    _break_blocking_client(store)
    return store


def _break_blocking_client(store: Any) -> None:
    """Point the store's redis-py client at a loopback port where nothing listens, its
    connections made so far closed and forgotten (each would reconnect where it was made)."""
    dead = free_port()
    pool = store._client.connection_pool
    pool.disconnect()
    pool.reset()
    pool.connection_kwargs["port"] = dead  # the point of strict
    if hasattr(pool, "get_master_address"):  # redis-py's Sentinel pool asks the Sentinels instead
        pool.get_master_address = lambda: ("127.0.0.1", dead)
