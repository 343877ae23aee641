"""The verified-token cache: a verified access token is checked once, then found by its string.

Bounded (oldest out first), safe between threads, and emptied per session on logout so a
token never outlives its session in the cache. :class:`~authcore.manager.AuthManager` decides
how long an entry may live (``min(exp, the session's limits)``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .models import VerifiedToken
from .sessions.base import RevocationFeed

__all__ = ["TokenCache"]


class TokenCache:
    """Bounded map: token string -> (VerifiedToken, expires_at monotonic-free wall time, session_id).

    Reads take no lock (a dict lookup is atomic under the GIL); writes and evictions hold
    one :class:`threading.Lock`. When full, the oldest entry goes. ``max_entries == 0``
    switches the cache off.
    """

    __slots__ = ("_by_session", "_cap", "_entries", "_generation", "_lock", "_max")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        # OrderedDict: popitem(last=False) is O(1); evicting the first key of a plain dict
        # degrades to a scan over the deleted slots at its front.
        self._entries: OrderedDict[str, tuple[VerifiedToken, float, str]] = OrderedDict()
        self._by_session: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        # Bumped by every drop_session()/clear(). A verifier reads it *before* it checks the
        # session and passes it to put(): if a logout ran in between, the put is skipped, so
        # an entry checked against a live session can never land after that session's drop.
        self._generation = 0
        # No entry lives past this (distrust()): the revocation feed is down, or never came up.
        self._cap = math.inf

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        # An empty cache is still a cache: ``if cache`` must not read as "no cache" (it once did).
        return True

    def __repr__(self) -> str:
        return f"TokenCache(entries={len(self._entries)}, max_entries={self._max})"

    def get(self, token: str, now: float) -> VerifiedToken | None:
        """The cached verification of *token*, or ``None`` if absent or past its deadline (then dropped)."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        if now < entry[1]:
            return entry[0]
        with self._lock:
            current = self._entries.get(token)
            if current is not None and now >= current[1]:
                self._remove(token, current[2])
        return None

    @property
    def generation(self) -> int:
        """Read before checking a session; pass to :meth:`put` (see there)."""
        return self._generation

    def put(self, token: str, value: VerifiedToken, deadline: float, generation: int | None = None) -> None:
        """Remember *value* for *token* until *deadline* (``min(exp, other limits)``); evict the oldest when full.

        With *generation* (:attr:`generation` read before the session was checked), nothing
        is stored if a session was dropped since: that drop may have been this token's logout.
        """
        if self._max == 0:
            return
        session_id = value.session_id
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            deadline = min(deadline, self._cap)
            previous = self._entries.get(token)
            if previous is not None:
                self._remove(token, previous[2])
            while len(self._entries) >= self._max:
                old_token, old_entry = self._entries.popitem(last=False)
                self._unindex(old_token, old_entry[2])
            self._entries[token] = (value, deadline, session_id)
            self._by_session.setdefault(session_id, set()).add(token)

    def drop_session(self, session_id: str) -> None:
        """Forget every cached token of *session_id* (logout, revocation)."""
        with self._lock:
            self._generation += 1
            for token in self._by_session.pop(session_id, ()):
                self._entries.pop(token, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_session.clear()

    def distrust(self, until: float) -> None:
        """Let no entry, present or future, live past *until* (revocations may be missed meanwhile)."""
        with self._lock:
            self._generation += 1
            self._cap = min(self._cap, until)  # repeated losses do not stretch the grace
            until = self._cap
            for token, (value, deadline, session_id) in self._entries.items():
                if deadline > until:
                    self._entries[token] = (value, until, session_id)

    def trust(self) -> None:
        """Start afresh with nothing missed: forget everything and lift :meth:`distrust`'s cap."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_session.clear()
            self._cap = math.inf

    def follow(self, store: object, grace: float) -> Callable[[], None] | None:
        """Follow *store*'s revocation feed if it has one (:class:`~authcore.sessions.RevocationFeed`):
        drop each revoked session at once; while the feed is lost, keep entries at most *grace*
        seconds. Returns the call that stops following, or ``None`` for a store without a feed.

        Until the feed first answers, nothing is trusted: a revocation cannot slip by at start.
        """
        if not isinstance(store, RevocationFeed):
            return None
        self.distrust(-math.inf)
        return store.watch_revocations(
            on_revoked=self.drop_session,
            on_lost=lambda: self.distrust(time.time() + grace),
            on_resync=self.trust,
        )

    def _remove(self, token: str, session_id: str) -> None:
        del self._entries[token]
        self._unindex(token, session_id)

    def _unindex(self, token: str, session_id: str) -> None:
        tokens = self._by_session.get(session_id)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_session[session_id]
