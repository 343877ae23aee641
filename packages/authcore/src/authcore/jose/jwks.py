"""An identity provider's signing keys (its JWKS): fetched, cached and refetched with care.

:class:`KeyCache` holds the published keys by ``kid``. A key is turned into a verifier only
when a token first names it, and only for the algorithms of :data:`authcore.algorithms.ALGORITHMS`
it fits (its ``kty`` and ``crv``, and its ``alg`` when the JWK pins one), so a JWKS of a
thousand keys costs one parse of the document, not a thousand key loads. The hot path is two
dict lookups and one clock read.

Refetch rules, shared by every provider that checks an issuer's tokens offline:

* the keys are fresh for ``ttl`` seconds; after that the first caller refetches and the
  others go on with the keys they have;
* an unknown ``kid`` while keys are held (a rotation, or a forgery) triggers one refetch, then
  a ``cooldown`` during which unknown kids fail without a fetch: a stream of forged kids cannot
  make us hammer the issuer. Concurrent callers share one fetch (single flight);
* when a fetch fails (down, slow, garbage, or no usable key at all), the keys held keep working (stale-if-error) for at
  most ``max_stale`` seconds past their freshness; after that they are dropped and
  verification reports the provider unavailable until a fetch succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Final

from ..algorithms import ALGORITHMS
from ..errors import AuthError, ProviderUnavailable
from ..keys import jwk_verifier

__all__ = ["KeyCache", "PublishedKey", "parse_jwks", "MAX_JWKS_KEYS"]

log = logging.getLogger("authcore.jose")

#: Most keys a JWKS document may hold; a bigger one is treated as garbage (the fetch failed).
MAX_JWKS_KEYS: Final = 1024

#: ``check(signature, data)``: raises ``cryptography.exceptions.InvalidSignature`` for a bad signature.
Verify = Callable[[bytes, bytes], object]


class PublishedKey:
    """One signature key of the issuer's JWKS, with a verifier per algorithm it may be used with."""

    __slots__ = ("_algorithms", "jwk", "kid", "verifiers")

    def __init__(self, kid: str, jwk: dict[str, Any], algorithms: Collection[str]) -> None:
        self.kid = kid
        self.jwk = jwk
        #: ``alg`` → ``check(signature, data)`` (raises ``InvalidSignature``), filled on first use.
        self.verifiers: dict[str, Verify] = {}
        self._algorithms = algorithms

    def verifier(self, alg: str) -> Verify | None:
        """The verifier of this key for *alg*; ``None`` when the key may not be used with *alg*."""
        verify = self.verifiers.get(alg)
        if verify is not None:
            return verify
        pinned = self.jwk.get("alg")
        row = ALGORITHMS.get(alg)
        if row is None or row.symmetric or alg not in self._algorithms or (pinned is not None and pinned != alg):
            return None
        try:
            verify = jwk_verifier(self.jwk, row)
        except ValueError:
            return None
        self.verifiers[alg] = verify
        return verify


def parse_jwks(document: Any, algorithms: Collection[str]) -> dict[str, PublishedKey]:
    """The signature keys of a JWKS document, by ``kid``, to be used with *algorithms* only.

    Encryption keys (``use: enc``), symmetric keys (``kty: oct``: a published key is never an
    HMAC secret) and entries without a ``kid`` are skipped. Raises :class:`ValueError` for a
    document that is not a JWKS or holds more than :data:`MAX_JWKS_KEYS` keys.
    """
    entries = document.get("keys") if type(document) is dict else None
    if type(entries) is not list:
        raise ValueError("not a JWKS document")
    if len(entries) > MAX_JWKS_KEYS:
        raise ValueError(f"a JWKS document of {len(entries)} keys (at most {MAX_JWKS_KEYS})")
    keys: dict[str, PublishedKey] = {}
    for jwk in entries:
        if type(jwk) is not dict:
            continue
        kid, kty, use = jwk.get("kid"), jwk.get("kty"), jwk.get("use", "sig")
        if type(kid) is not str or not kid or len(kid) > 256 or use != "sig" or kty not in ("RSA", "EC", "OKP"):
            continue
        keys.setdefault(kid, PublishedKey(kid, jwk, algorithms))
    return keys


class KeyCache:
    """The issuer's keys by ``kid``, fetched lazily with single flight, cooldown and bounded stale-if-error.

    *fetch* returns the JWKS document, raising :class:`~authcore.ProviderUnavailable` (or any
    exception) when the issuer cannot answer. *algorithms* are the ``alg`` values tokens may use.
    """

    def __init__(
        self,
        fetch: Callable[[], Any],
        *,
        algorithms: Collection[str],
        ttl: float,
        cooldown: float,
        max_stale: float = 86400.0,
        clock: Callable[[], float] = time.monotonic,
        label: str = "the issuer's keys",
    ) -> None:
        self._fetch = fetch
        self.algorithms = frozenset(algorithms)
        self._ttl = ttl
        self._cooldown = cooldown
        self._max_stale = max_stale
        self.clock = clock
        self._label = label
        #: The keys held now, by ``kid`` (read by the verifier's hot path with :meth:`fresh`).
        self.held: dict[str, PublishedKey] = {}
        #: When the keys held stop being fresh (by *clock*); a refetch is due after it.
        self.fresh_until = float("-inf")
        self._last_refetch = float("-inf")
        self._last_failure = float("-inf")
        self._lock = threading.Lock()
        #: Fetches attempted (successful or not).
        self.fetches = 0

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids held now."""
        return tuple(self.held)

    def get(self, kid: str) -> PublishedKey | None:
        """The key called *kid*, or ``None`` when the issuer has no such key (as far as we may ask).

        Raises :class:`~authcore.ProviderUnavailable` when no usable key is held and the
        issuer cannot answer.
        """
        key = self.held.get(kid)
        if key is not None:
            if self.clock() < self.fresh_until:
                return key
            return self._stale(kid)
        with self._lock:  # single flight: later callers wait for this fetch and use its result
            key = self.held.get(kid)
            if key is not None:
                return key
            if self._failed_recently():
                if not self.held:
                    raise ProviderUnavailable(f"{self._label} cannot be fetched")
                return None
            if self.held:
                # An unknown kid while we hold keys: a rotation, or a forgery. One refetch, then a cooldown.
                now = self.clock()
                if now - self._last_refetch < self._cooldown:
                    return None
                self._last_refetch = now
            self._refetch(quiet=bool(self.held))
            return self.held.get(kid)

    def _stale(self, kid: str) -> PublishedKey | None:
        # Expired: one caller refreshes, the others go on with the keys they have while allowed.
        if self._lock.acquire(blocking=False):
            try:
                if self.clock() >= self.fresh_until and not self._failed_recently():
                    self._refetch(quiet=True)
            finally:
                self._lock.release()
        if self.clock() >= self.fresh_until + self._max_stale:
            with self._lock:
                if self.held and self.clock() >= self.fresh_until + self._max_stale:
                    log.warning("dropping %s: not refreshed for longer than max_stale", self._label)
                    self.held = {}
            raise ProviderUnavailable(f"{self._label} cannot be fetched")
        return self.held.get(kid)

    def _failed_recently(self) -> bool:
        return self.clock() - self._last_failure < self._cooldown

    def _refetch(self, *, quiet: bool) -> None:
        self.fetches += 1
        try:
            keys = parse_jwks(self._fetch(), self.algorithms)
            if not keys:  # an issuer always publishes a key: an empty set is a glitch, not a rotation
                raise ValueError("no signature key in the JWKS document")
        except Exception as exc:
            self._last_failure = self.clock()
            detail = exc.code if isinstance(exc, AuthError) else type(exc).__name__
            log.warning("fetching %s failed (%s); keeping %d cached key(s)", self._label, detail, len(self.held))
            if not quiet and not self.held:
                raise ProviderUnavailable(f"{self._label} cannot be fetched") from None
            return
        self.held = keys
        self.fresh_until = self.clock() + self._ttl

    def refresh(self) -> None:
        """Fetch the keys now (ignores the cooldown); raises when the issuer cannot answer and no key is held."""
        with self._lock:
            self._refetch(quiet=False)
