"""Login throttling and the one canonical form of a login the web layer keys things on.

:func:`canonical_login` is the only place the web layer turns a login into a key: the
throttle counters use it, and so does anything else that must treat ``alice``,
``ＡＬＩＣＥ`` (fullwidth) and ``alİce`` (dotted capital I) as the account they all reach.
:class:`Throttle` counts failures per canonical login and per client address; after a
successful login the adapters also ask it about the login the *provider returned*
(:meth:`Throttle.refusal_after_login`), since a directory may map a spelling we do not know
about onto a locked account.

The counters live in a :class:`~authcore.sessions.shared.SharedState`: this process's memory by
default, the Redis session store's when the service runs on one, so that every instance counts
the same failures. When that Redis cannot be reached, the throttle cannot answer: the login is
refused with :class:`~authcore.errors.ProviderUnavailable` (503, "session store unavailable"),
as it would be anyway since its session lives in the same Redis. It neither locks the user
out nor lets the attempt through uncounted.
"""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import Callable, Sized

from ..errors import ConfigError, Throttled
from ..sessions.shared import MemorySharedState, SharedState, Tally

__all__ = ["Throttle", "Throttled", "canonical_login"]

# Default-ignorable characters that some directories drop when they compare names
# (soft hyphen, zero-width space/joiners, word joiner, BOM, variation selectors).
_IGNORABLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10)],
    None,
)


def canonical_login(typed: str) -> str:
    """The canonical form of a login: NFKC, case-folded, Turkish I folded, ignorables and blanks dropped.

    Approximates Unicode's ``NFKC_Casefold`` plus what LDAP servers' ``caseIgnoreMatch``
    and Keycloak do to usernames: fullwidth and other compatibility forms become their plain
    letters, case is folded (``ß`` → ``ss``), the dotless ``ı`` and the dotted capital ``İ``
    (whose case fold is ``i`` + combining dot) both become ``i``, and surrounding blanks go.
    Collapsing too much only makes two spellings share a throttle counter; collapsing too
    little lets a spelling the directory accepts escape the lock, so this errs on the side of
    collapsing.
    """
    text = unicodedata.normalize("NFKC", typed).casefold()
    text = text.replace("i\u0307", "i").replace("\u0131", "i").translate(_IGNORABLE)
    # casefold() can produce denormalised sequences (and new compatibility forms): normalise again.
    return unicodedata.normalize("NFKC", text).strip()


class Throttle:
    """Failed-login counters per login and per client address, kept in a :class:`SharedState`.

    After ``max_per_login`` failures for one login (or ``max_per_address`` from one address)
    within ``window`` seconds, further attempts are refused with :class:`Throttled` (429)
    until the window ends. Logins are counted by :func:`canonical_login`. A successful login
    clears its login's counter.

    The counters live in *state*: by default a :class:`MemorySharedState` of this throttle's
    own, holding at most ``max_entries`` keys (the least recently touched go first, so a flood
    of distinct logins costs bounded memory and at worst forgets old counters). With the
    Redis session store's state every instance counts the same failures
    (:meth:`sharing`; :class:`~authcore.web.core.WebCore` does it for a throttle built from
    the ``web:`` section). A state that cannot be reached raises
    :class:`~authcore.errors.ProviderUnavailable` (503): neither a lock-out nor a pass.
    *clock* is wall-clock time by default, so that instances on several hosts agree on windows.
    """

    def __init__(
        self,
        *,
        max_per_login: int = 10,
        max_per_address: int = 100,
        window: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
        state: SharedState | None = None,
    ) -> None:
        if max_entries < 1 or window <= 0 or max_per_login < 1 or max_per_address < 1:
            raise ConfigError("throttle limits must be positive")
        self.max_per_login = max_per_login
        self.max_per_address = max_per_address
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        #: Whether the counters are this throttle's own (in this process), so WebCore may share them.
        self.private = state is None
        self.state: SharedState = MemorySharedState(max_entries) if state is None else state

    def __len__(self) -> int:
        """Counters held in this process (0 when they live in a shared store)."""
        return len(self.state) if isinstance(self.state, Sized) else 0

    def __bool__(self) -> bool:
        """Always true: a throttle without counters yet still throttles."""
        return True

    def __repr__(self) -> str:
        return (
            f"Throttle(max_per_login={self.max_per_login}, max_per_address={self.max_per_address}, "
            f"window={self.window}, state={type(self.state).__name__})"
        )

    def sharing(self, state: SharedState) -> Throttle:
        """A throttle with these limits and clock whose counters live in *state*."""
        return Throttle(
            max_per_login=self.max_per_login,
            max_per_address=self.max_per_address,
            window=self.window,
            max_entries=self.max_entries,
            clock=self._clock,
            state=state,
        )

    def _keys(self, login: str | None, address: str | None) -> tuple[list[str], list[int]]:
        """The counter keys of a login and an address, with their limits."""
        keys: list[str] = []
        limits: list[int] = []
        if login:
            # Hashed: the store never holds what was typed (it may be a password typed into
            # the login field).
            canonical = canonical_login(login).encode("utf-8", "replace")
            keys.append("l:" + hashlib.sha256(canonical).hexdigest()[:32])
            limits.append(self.max_per_login)
        if address:
            keys.append("a:" + address[:64])
            limits.append(self.max_per_address)
        return keys, limits

    @staticmethod
    def _refusal(tallies: list[Tally], limits: list[int], now: float) -> Throttled | None:
        for tally, limit in zip(tallies, limits, strict=True):
            if tally.hits >= limit:
                return Throttled(tally.ends_at - now)
        return None

    def _refuse(self, tallies: list[Tally], limits: list[int], now: float) -> None:
        refused = self._refusal(tallies, limits, now)
        if refused is not None:
            raise refused

    def check(self, login: str | None, address: str | None) -> None:
        """Raise :class:`Throttled` if *login* or *address* has too many recent failures."""
        keys, limits = self._keys(login, address)
        if keys:
            now = self._clock()
            self._refuse(self.state.counts(keys, now=now), limits, now)

    def reserve(self, login: str | None, address: str | None) -> None:
        """:meth:`check`, then count the attempt as a failure, in one atomic step of the state.

        Counting up front closes the race of checking before a slow provider answers and
        counting after: parallel attempts (on any instance sharing the state) cannot all pass
        the check. The caller keeps the count for a wrong password and calls :meth:`release`
        for anything else. (For a provider that answers without waiting, WebCore calls it
        after a wrong password instead: the same step, see ``WebLogin._counted_after``.)
        """
        keys, limits = self._keys(login, address)
        if keys:
            now = self._clock()
            self._refuse(self.state.hit(keys, limits, window=self.window, now=now), limits, now)

    def release(self, login: str | None, address: str | None) -> None:
        """Give back an attempt counted by :meth:`reserve` (the login succeeded or failed otherwise)."""
        keys, _limits = self._keys(login, address)
        if keys:
            self.state.give_back(keys)

    def failure(self, login: str | None, address: str | None) -> None:
        """Count a failed login."""
        keys, _limits = self._keys(login, address)
        if keys:
            self.state.hit(keys, None, window=self.window, now=self._clock())

    def success(self, login: str | None) -> None:
        """Forget the failures of *login* (its address keeps its count)."""
        keys, _limits = self._keys(login, None)
        if keys:
            self.state.forget(keys)

    def settle_success(
        self, typed: str | None, address: str | None, returned: str, *, reserved: bool = True
    ) -> Throttled | None:
        """After a successful login, in one step of the state: give back what :meth:`reserve`
        counted, then answer as :meth:`refusal_after_login` (the refusal if the *returned* login
        is locked; else the failures of both spellings are forgotten).

        ``reserved=False``: nothing was reserved (the provider answered first, see
        :class:`~authcore.web.login.WebLogin`); the typed login and the address are checked
        against their limits in the same step instead, as :meth:`reserve` would have.
        """
        step = self._settlement(typed, address, returned, reserved)
        if step is None:
            return None
        give_back, check, limits, forget, now = step
        return self._refusal(self.state.settle(give_back, check, limits, forget, now=now), limits, now)

    async def asettle_success(
        self, typed: str | None, address: str | None, returned: str, *, reserved: bool = True
    ) -> Throttled | None:
        """:meth:`settle_success` for a coroutine on the event loop: awaited there on a state that
        has ``asettle`` (the Redis store's), made in-line on one that does no I/O (this process's)."""
        step = self._settlement(typed, address, returned, reserved)
        if step is None:
            return None
        give_back, check, limits, forget, now = step
        asettle = getattr(self.state, "asettle", None)
        if asettle is None:
            tallies = self.state.settle(give_back, check, limits, forget, now=now)
        else:
            tallies = await asettle(give_back, check, limits, forget, now=now)
        return self._refusal(tallies, limits, now)

    def _settlement(
        self, typed: str | None, address: str | None, returned: str, reserved: bool
    ) -> tuple[list[str], list[str], list[int], list[str], float] | None:
        """What :meth:`settle_success` asks of the state: the keys to give back, to check (with
        their limits) and to forget, and the time; ``None`` when there is nothing to ask."""
        typed_keys, typed_limits = self._keys(typed, address)
        check, limits = self._keys(returned, None)
        forget = check + [key for key in self._keys(typed, None)[0] if key not in check] if typed else check
        give_back: list[str] = typed_keys
        if not reserved:
            give_back = []
            for key, limit in zip(typed_keys, typed_limits, strict=True):
                if key not in check:
                    check.append(key)
                    limits.append(limit)
        if not (give_back or check):
            return None
        return give_back, check, limits, forget, self._clock()

    def refusal_after_login(self, typed: str | None, returned: str) -> Throttled | None:
        """After a successful login: the refusal to give if the *returned* login is locked, else ``None``.

        The provider may have matched what was typed to an account under another spelling
        (an alias, a normalisation we do not know): the lock of the account it *returned*
        holds all the same. The caller ends the new session and raises the refusal; on
        ``None`` the failures of both spellings are forgotten (one call to the state).
        """
        keys, limits = self._keys(returned, None)
        if keys:
            now = self._clock()
            refused = self._refusal(self.state.counts(keys, now=now), limits, now)
            if refused is not None:
                return refused
        if typed and typed != returned:
            keys += [key for key in self._keys(typed, None)[0] if key not in keys]
        if keys:
            self.state.forget(keys)
        return None
