"""State that every instance of a service shares: throttle counters, single-use values, agreed secrets.

The web layer needs three things that one process cannot keep by itself once a site runs
several instances behind a load balancer: failed-login counters (:class:`~authcore.web.throttle.Throttle`),
"this SSO state was redeemed already" (:class:`~authcore.web.common.SingleUse`), and the key
signing SSO state cookies when ``web.sso_state_secret`` is not set (a random key per process
would void a callback landing on another instance). :class:`SharedState` is exactly that
contract; a session store shared by every instance implements it
(:class:`~authcore.sessions.redis.RedisSessionStore`), and :class:`MemorySharedState` keeps it
in the process for the memory and SQLite stores, as the web layer always did.
:func:`shared_state_of` picks one for a store.

Counters use a **fixed window per key**, anchored at the key's first event: the window lasts
*window* seconds from then, every event in it adds one, and the first event after it starts a
new window at one. Times are the caller's (``now``), wall-clock seconds, so instances on
several hosts agree to within their clock difference; Redis' TTLs only free the memory.

Keys are opaque strings to the callers. In Redis they are hashed (SHA-256, under the store's
prefix): a key listing never shows a login, an address or an SSO state.

Failure: an implementation that cannot reach its backend raises
:class:`~authcore.errors.ProviderUnavailable` from every method; nothing falls back to a
per-process answer, which would let brute force through one instance at a time or lock
people out at random. A login whose throttle check fails that way is answered 503, as a
login is anyway when the sessions live in the same unreachable Redis.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["MemorySharedState", "SharedState", "Tally", "shared_state_of"]


class Tally(NamedTuple):
    """One counter as seen at some moment: how many events its current window holds and when that window ends.

    A key without events in a current window is ``Tally(0, now)``.
    """

    hits: int
    ends_at: float


@runtime_checkable
class SharedState(Protocol):
    """Counters, single-use claims and agreed secrets, the same for every instance that shares them.

    Every method is one atomic step (one lock, one Redis round trip or script) and raises
    :class:`~authcore.errors.ProviderUnavailable` when its backend cannot be reached.
    """

    def hit(self, keys: Sequence[str], limits: Sequence[int] | None, *, window: float, now: float) -> list[Tally]:
        """Count one event under every key of *keys*, unless one key already holds its limit.

        *limits* pairs with *keys* (``None``: no limits, always count). Returns each key's
        tally as it was **before** this event; the event was counted if and only if every
        ``tally.hits < limit``. A key's window starts at its first event (see the module).
        """
        ...

    def counts(self, keys: Sequence[str], *, now: float) -> list[Tally]:
        """The current tally of every key of *keys*, counting nothing."""
        ...

    def give_back(self, keys: Sequence[str]) -> None:
        """Take one event back from every key of *keys* that has any (never below zero)."""
        ...

    def forget(self, keys: Sequence[str]) -> None:
        """Drop the counters of *keys*."""
        ...

    def settle(
        self,
        give_back: Sequence[str],
        check: Sequence[str],
        limits: Sequence[int],
        forget: Sequence[str],
        *,
        now: float,
    ) -> list[Tally]:
        """After a success, in one step: :meth:`give_back` *give_back*, read the tallies of *check*
        (paired with *limits*), and, unless one holds its limit, :meth:`forget` *forget*. Returns
        the tallies of *check* (what a successful login costs: one round trip, not three)."""
        ...

    def claim(self, key: str, *, ttl: float) -> bool:
        """``True`` the first time *key* is claimed within *ttl* seconds, ``False`` after."""
        ...

    def agreed_secret(self, name: str, length: int = 32) -> bytes:
        """A random secret of *length* bytes created by the first caller and read by every other."""
        ...


class MemorySharedState:
    """:class:`SharedState` for one process, in bounded memory.

    At most *max_entries* counters and as many claims are kept; the least recently touched
    counter and the oldest claim go first, so a flood of distinct keys costs bounded memory
    (and at worst forgets an old counter or lets an old claim be made twice).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._counters: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._claims: OrderedDict[str, float] = OrderedDict()
        self._secrets: dict[tuple[str, int], bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many counters are held."""
        return len(self._counters)

    def __bool__(self) -> bool:
        """Always true: an empty state is still a state (``if state:`` must not mean "if it holds counters")."""
        return True

    def __repr__(self) -> str:
        return f"MemorySharedState(max_entries={self.max_entries})"

    def _tally(self, key: str, now: float) -> Tally:
        entry = self._counters.get(key)
        if entry is None or now >= entry[0]:
            return Tally(0, now)
        return Tally(entry[1], entry[0])

    def hit(self, keys: Sequence[str], limits: Sequence[int] | None, *, window: float, now: float) -> list[Tally]:
        """Count one event under every key unless one holds its limit (see :meth:`SharedState.hit`)."""
        counters = self._counters
        tally = self._tally
        with self._lock:
            before = [tally(key, now) for key in keys]
            if limits is not None:
                if len(limits) != len(keys):
                    raise ValueError("one limit per key")
                # A plain loop: this runs on every throttled login.
                for index, limit in enumerate(limits):
                    if before[index][0] >= limit:
                        return before
            for key, (hits, ends_at) in zip(keys, before, strict=True):
                counters.pop(key, None)
                counters[key] = (ends_at, hits + 1) if hits else (now + window, 1)
            while len(counters) > self.max_entries:
                counters.popitem(last=False)
        return before

    def counts(self, keys: Sequence[str], *, now: float) -> list[Tally]:
        """The current tallies (see :meth:`SharedState.counts`)."""
        with self._lock:
            return [self._tally(key, now) for key in keys]

    def give_back(self, keys: Sequence[str]) -> None:
        """Take one event back from each key (see :meth:`SharedState.give_back`)."""
        with self._lock:
            for key in keys:
                entry = self._counters.get(key)
                if entry is not None and entry[1] > 0:
                    self._counters[key] = (entry[0], entry[1] - 1)

    def forget(self, keys: Sequence[str]) -> None:
        """Drop the counters of *keys*."""
        with self._lock:
            for key in keys:
                self._counters.pop(key, None)

    def settle(
        self,
        give_back: Sequence[str],
        check: Sequence[str],
        limits: Sequence[int],
        forget: Sequence[str],
        *,
        now: float,
    ) -> list[Tally]:
        """Give back, check, forget, in one step (see :meth:`SharedState.settle`)."""
        if len(limits) != len(check):
            raise ValueError("one limit per checked key")
        with self._lock:
            for key in give_back:
                entry = self._counters.get(key)
                if entry is not None and entry[1] > 0:
                    self._counters[key] = (entry[0], entry[1] - 1)
            tallies = [self._tally(key, now) for key in check]
            if all(tally.hits < limit for tally, limit in zip(tallies, limits, strict=True)):
                for key in forget:
                    self._counters.pop(key, None)
        return tallies

    def claim(self, key: str, *, ttl: float) -> bool:
        """``True`` the first time *key* is claimed within *ttl* seconds (see :meth:`SharedState.claim`)."""
        now = time.monotonic()
        claims = self._claims
        with self._lock:
            # Claims are kept in insertion order; with one ttl per caller that is expiry order too.
            while claims and next(iter(claims.values())) <= now:
                claims.popitem(last=False)
            expires = claims.get(key)
            if expires is not None and expires > now:
                return False
            claims[key] = now + ttl
            while len(claims) > self.max_entries:
                claims.popitem(last=False)
        return True

    def agreed_secret(self, name: str, length: int = 32) -> bytes:
        """A random secret made on the first call for *name* and *length*, the same one afterwards."""
        with self._lock:
            return self._secrets.setdefault((name, length), secrets.token_bytes(length))


def shared_state_of(store: object) -> SharedState:
    """The :class:`SharedState` to use beside a session store: the store itself if it implements
    the contract (it is shared by every instance), else a new :class:`MemorySharedState`."""
    if isinstance(store, SharedState):
        return store
    return MemorySharedState()
