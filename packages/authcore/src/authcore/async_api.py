"""The ``a*`` methods of :class:`~authcore.AuthManager` for asynchronous hosts (FastAPI, Jupyverse).

Each runs its synchronous twin in-line when nothing in it can block (a cached verify, a login
through a provider declaring ``blocking = False`` with an in-memory store), and in a worker
thread otherwise, so an event loop never waits on a directory or a database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pluggy

    from .config import AuthcoreConfig
    from .models import LoginResult, VerifiedToken
    from .providers import Provider
    from .sessions import Sessions
    from .token_cache import TokenCache

__all__ = ["AsyncMethods"]

_T = TypeVar("_T")


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
        logout: Callable[[str], None]

    async def alogin(self, provider: str, **credentials: str | None) -> LoginResult:
        """:meth:`login` for asynchronous hosts: in a worker thread unless nothing in it blocks."""
        if not self.login_blocks(provider):
            return self.login(provider, **credentials)
        return await _to_thread(lambda: self.login(provider, **credentials))

    def login_blocks(self, provider: str) -> bool:
        """Whether a login through *provider* may wait on I/O (so async hosts use a thread).

        False only when the provider declares ``blocking = False``, the session store does
        no I/O, no SQL permission store is configured and no registered plugin declares
        ``blocking = True`` (as :class:`~authcore.permission_store.SQLPermissionStore` does,
        also when a host registers it in code). Other plugin hooks then run on the caller's
        event loop too: keep them free of I/O, or give them a ``blocking = True`` attribute.
        """
        instance = self._providers.get(provider)
        return (
            instance is None
            or instance.blocking
            or self._sessions.store.blocking
            or self.config.permissions.store is not None
            or any(getattr(plugin, "blocking", False) is True for plugin in self.plugins.get_plugins())
        )

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
        """:meth:`refresh` in a worker thread."""
        return await _to_thread(self.refresh, refresh_token)

    async def alogout(self, token: str) -> None:
        """:meth:`logout` in a worker thread."""
        await _to_thread(self.logout, token)


async def _to_thread(function: Callable[..., _T], *args: Any) -> _T:
    # Deferred: asyncio stays off the startup path of hosts that never use the a* methods.
    import asyncio

    return await asyncio.to_thread(function, *args)
