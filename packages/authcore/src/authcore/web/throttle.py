"""Login throttling and the one canonical form of a login the web layer keys things on.

:func:`canonical_login` is the only place the web layer turns a login into a key: the
throttle counters use it, and so does anything else that must treat ``alice``,
``ＡＬＩＣＥ`` (fullwidth) and ``alİce`` (dotted capital I) as the account they all reach.
:class:`Throttle` counts failures per canonical login and per client address; after a
successful login the adapters also ask it about the login the *provider returned*
(:meth:`Throttle.refusal_after_login`), since a directory may map a spelling we do not know
about onto a locked account.
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable

from ..errors import ConfigError, Throttled

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
    """Failed-login counters per login and per client address, in a bounded store.

    After ``max_per_login`` failures for one login (or ``max_per_address`` from one address)
    within ``window`` seconds, further attempts are refused with :class:`Throttled` (429)
    until the window ends. Logins are counted by :func:`canonical_login`. A successful login
    clears its login's counter. The store holds at most ``max_entries`` keys; the least
    recently touched go first, so a flood of distinct logins costs bounded memory (and at
    worst forgets old counters).
    """

    def __init__(
        self,
        *,
        max_per_login: int = 10,
        max_per_address: int = 100,
        window: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or window <= 0 or max_per_login < 1 or max_per_address < 1:
            raise ConfigError("throttle limits must be positive")
        self.max_per_login = max_per_login
        self.max_per_address = max_per_address
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _keys(login: str | None, address: str | None) -> list[tuple[str, str]]:
        keys = []
        if login:
            # Hashed: the store never holds what was typed (it may be a password typed into
            # the login field).
            canonical = canonical_login(login).encode("utf-8", "replace")
            keys.append(("login", "l:" + hashlib.sha256(canonical).hexdigest()[:32]))
        if address:
            keys.append(("address", "a:" + address[:64]))
        return keys

    def check(self, login: str | None, address: str | None) -> None:
        """Raise :class:`Throttled` if *login* or *address* has too many recent failures."""
        now = self._clock()
        with self._lock:
            self._check(login, address, now)

    def reserve(self, login: str | None, address: str | None) -> None:
        """:meth:`check`, then count the attempt as a failure, under one lock.

        Counting up front closes the race of checking before a slow provider answers and
        counting after: parallel attempts cannot all pass the check. The caller keeps the
        count for a wrong password and calls :meth:`release` for anything else.
        """
        now = self._clock()
        with self._lock:
            self._check(login, address, now)
            self._count(login, address, now)

    def release(self, login: str | None, address: str | None) -> None:
        """Give back an attempt counted by :meth:`reserve` (the login succeeded or failed otherwise)."""
        with self._lock:
            for _kind, key in self._keys(login, address):
                entry = self._entries.get(key)
                if entry is not None and entry[1] > 0:
                    self._entries[key] = (entry[0], entry[1] - 1)

    def failure(self, login: str | None, address: str | None) -> None:
        """Count a failed login."""
        now = self._clock()
        with self._lock:
            self._count(login, address, now)

    def _check(self, login: str | None, address: str | None, now: float) -> None:
        for kind, key in self._keys(login, address):
            entry = self._entries.get(key)
            if entry is None:
                continue
            start, count = entry
            if now - start >= self.window:
                del self._entries[key]
                continue
            limit = self.max_per_login if kind == "login" else self.max_per_address
            if count >= limit:
                raise Throttled(start + self.window - now)

    def _count(self, login: str | None, address: str | None, now: float) -> None:
        for _kind, key in self._keys(login, address):
            entry = self._entries.pop(key, None)
            if entry is None or now - entry[0] >= self.window:
                entry = (now, 0)
            self._entries[key] = (entry[0], entry[1] + 1)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def success(self, login: str | None) -> None:
        """Forget the failures of *login* (its address keeps its count)."""
        with self._lock:
            for _kind, key in self._keys(login, None):
                self._entries.pop(key, None)

    def refusal_after_login(self, typed: str | None, returned: str) -> Throttled | None:
        """After a successful login: the refusal to give if the *returned* login is locked, else ``None``.

        The provider may have matched what was typed to an account under another spelling
        (an alias, a normalisation we do not know): the lock of the account it *returned*
        holds all the same. The caller ends the new session and raises the refusal; on
        ``None`` the failures of both spellings are forgotten.
        """
        try:
            self.check(returned, None)
        except Throttled as refused:
            return refused
        self.success(typed)
        self.success(returned)
        return None
