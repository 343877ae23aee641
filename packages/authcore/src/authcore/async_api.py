"""The ``a*`` methods of :class:`~authcore.AuthManager` for asynchronous hosts (FastAPI, Jupyverse).

Each runs its synchronous twin in-line when nothing in it can block (a cached verify, a login
through a provider declaring ``blocking = False`` with an in-memory store), on the event loop
with its waits awaited there when only the Redis store waits (:mod:`authcore.loop_bridge`), and
in a worker thread otherwise, so an event loop never waits on a directory or a database.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from .capabilities import UpstreamSessions
from .sessions.base import RefreshTokenReused

if TYPE_CHECKING:
    import pluggy

    from .config import AuthcoreConfig
    from .models import LoginResult, VerifiedToken
    from .providers import Provider
    from .sessions import SessionRecord, Sessions
    from .token_cache import TokenCache

__all__ = ["AsyncMethods", "StoreCall", "Waits", "made_bridged", "made_in_place", "run_as"]

_T = TypeVar("_T")
#: Where a call that may wait runs on an async host: in-line, on the event loop through
#: :mod:`authcore.loop_bridge`, or in a worker thread.
Waits = Literal["none", "loop", "thread"]
#: A call that needs the session store, handed by a step of the manager to whoever runs the step
#: (made in place by the synchronous methods, where :data:`Waits` says by the asynchronous ones).
StoreCall = Callable[[], object]


class AsyncMethods:
    """Mixin of :class:`~authcore.AuthManager`: the asynchronous calls over its synchronous ones."""

    if TYPE_CHECKING:  # provided by AuthManager
        config: AuthcoreConfig
        plugins: pluggy.PluginManager
        _providers: Mapping[str, Provider]
        _sessions: Sessions
        _cache: TokenCache | None
        _bearer_blocks: bool

        login: Callable[..., LoginResult]
        verify: Callable[[str], VerifiedToken]
        refresh: Callable[[str], LoginResult]
        _refreshed: Callable[[SessionRecord, str], Generator[StoreCall, None, LoginResult]]
        _drop_cached: Callable[[str], None]
        logout: Callable[[str], None]

    async def alogin(self, provider: str, **credentials: str | None) -> LoginResult:
        """:meth:`login` for asynchronous hosts, where :meth:`login_waits` says. On the Redis store
        (``"loop"``) in-line, without the bridge: its one store call, the new session, is sent at
        once and checked before this returns (:func:`~authcore.loop_bridge.collecting`)."""
        waits = self.login_waits(provider)
        if waits != "loop":
            return await run_as(waits, lambda: self.login(provider, **credentials))
        from .loop_bridge import collecting  # greenlet: imported only where the store awaits on the loop

        async with collecting():
            return self.login(provider, **credentials)

    def login_waits(self, provider: str) -> Waits:
        """How a login through *provider* waits, so that an async host knows where to run it.

        ``"none"`` (nothing waits: run it in-line) when the provider declares ``blocking =
        False``, the session store does no I/O, no SQL permission store is configured and no
        registered plugin declares ``blocking = True`` (as
        :class:`~authcore.permission_store.SQLPermissionStore` does, also when a host registers
        it in code); ``"loop"`` when the same holds but for a store that awaits its calls on the
        event loop (Redis: run it in-line within :func:`authcore.loop_bridge.collecting`, or
        with :func:`authcore.loop_bridge.run_bridged`); else ``"thread"``. Other plugin hooks
        run on the caller's event loop in the first two cases: keep them free of I/O, or give
        them a ``blocking = True`` attribute.
        """
        instance = self._providers.get(provider)
        if instance is None or instance.blocking or self._plugins_block():
            return "thread"
        return self._store_waits()

    def refresh_waits(self) -> Waits:
        """How a refresh waits (as :meth:`login_waits`). The one provider call a refresh makes is
        the upstream refresh of a provider that keeps a session of its own
        (:class:`~authcore.capabilities.UpstreamSessions`: Keycloak, OpenID issuers), so every
        configured provider of that kind must declare ``blocking = False`` for a refresh not to go
        to a thread; one that only checks logins (LDAP, a user database) is never asked.
        (:meth:`arefresh` does better where :meth:`rotation_on_loop` holds: it learns the
        session's provider first.)"""
        if self._plugins_block() or any(self._upstream_waits(instance) for instance in self._providers.values()):
            return "thread"
        return self._store_waits()

    def rotation_on_loop(self) -> bool:
        """Whether :meth:`arefresh` awaits every rotation on the event loop, whatever the session's
        provider: on the Redis store, no plugin that blocks. A session whose provider refreshes
        upstream and waits (Keycloak beside a directory, say) then has only that step, and what
        follows it, sent to a worker thread; every other session's refresh stays on the loop."""
        return not self._plugins_block() and self._store_waits() == "loop" and self._sessions.awaits_rotation

    @staticmethod
    def _upstream_waits(instance: Provider | None) -> bool:
        return instance is not None and instance.blocking and isinstance(instance, UpstreamSessions)

    def login_blocks(self, provider: str) -> bool:
        """Whether a login through *provider* may wait on I/O: :meth:`login_waits` is not ``"none"``."""
        return self.login_waits(provider) != "none"

    def _plugins_block(self) -> bool:
        return self.config.permissions.store is not None or any(
            getattr(plugin, "blocking", False) is True for plugin in self.plugins.get_plugins()
        )

    def _store_waits(self) -> Waits:
        store = self._sessions.store
        if not store.blocking:
            return "none"
        return "loop" if getattr(store, "awaits_on_loop", False) else "thread"

    async def averify(self, token: str) -> VerifiedToken:
        """:meth:`verify` for asynchronous hosts: in-line when the answer needs no I/O."""
        if self._cache is not None:
            hit = self._cache.get(token, time.time())
            if hit is not None:
                return hit
        # A token that is not ours goes to the bearer providers, which may do network I/O.
        if self._sessions.store.blocking or self._bearer_blocks:
            return await _to_thread(self.verify, token)
        return self.verify(token)

    async def arefresh(self, refresh_token: str) -> LoginResult:
        """:meth:`refresh` for asynchronous hosts, where :meth:`refresh_waits` says.

        On the Redis store (``"loop"``) the rotation is awaited on the event loop itself
        (``Sessions.arefresh``), not through :mod:`authcore.loop_bridge`: a bridged wait
        cost a refresh 75-140 us of CPU under load, as much as Redis's own work. A store call
        after the rotation (rare: a session ended, an identity changed) runs bridged. Where the
        session's provider refreshes upstream and waits, that step and what follows go to a
        worker thread (:meth:`rotation_on_loop`)."""
        if not self.rotation_on_loop():
            return await run_as(self.refresh_waits(), lambda: self.refresh(refresh_token))
        try:
            record, new_refresh = await self._sessions.arefresh(refresh_token)
        except RefreshTokenReused as exc:
            self._drop_cached(exc.session_id)
            raise
        steps = self._refreshed(record, new_refresh)
        if self._upstream_waits(self._providers.get(record.provider)):
            return await _to_thread(made_in_place, steps)
        return await made_bridged(steps)

    async def alogout(self, token: str) -> None:
        """:meth:`logout` in a worker thread."""
        await _to_thread(self.logout, token)


def made_in_place(steps: Generator[StoreCall, None, _T]) -> _T:
    """Run *steps*, making each :data:`StoreCall` it yields where it stands; what it returns."""
    while True:
        try:
            call = next(steps)
        except StopIteration as done:
            return cast("_T", done.value)
        call()


async def made_bridged(steps: Generator[StoreCall, None, _T]) -> _T:
    """:func:`made_in_place` on an event loop: each :data:`StoreCall` run bridged (``run_as("loop")``)."""
    while True:
        try:
            call = next(steps)
        except StopIteration as done:
            return cast("_T", done.value)
        await run_as("loop", call)


async def run_as(waits: Waits, function: Callable[[], _T]) -> _T:
    """Run *function* as *waits* says: in-line, bridged on this event loop, or in a worker thread."""
    if waits == "none":
        return function()
    if waits == "loop":
        return await _run_bridged()(function)
    return await _to_thread(function)


@functools.cache
def _run_bridged() -> Callable[[Callable[[], _T]], Awaitable[_T]]:
    # Imported on first use (greenlet stays off the startup path), then kept: an import
    # statement in run_as cost a request some microseconds each time.
    from .loop_bridge import run_bridged

    return run_bridged


async def _to_thread(function: Callable[..., _T], *args: Any) -> _T:
    # Deferred: asyncio stays off the startup path of hosts that never use the a* methods.
    import asyncio

    return await asyncio.to_thread(function, *args)
