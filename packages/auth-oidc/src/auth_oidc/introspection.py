"""RFC 7662 token introspection: the client, the checks of its answer, and a short positive cache.

The answer must say ``active: true`` (an inactive token is "not ours": ``None``); its
``iss``, when present, must be our issuer; its ``token_type``, when present, must be an
access token's (``Bearer``), so a refresh token typed as such is refused; the client check
(``client_check``: ``aud``, ``azp``/``client_id``) is the one bearer JWTs pass; an ``exp``
must lie ahead (with ``leeway``).

Accepted answers are remembered per token for ``introspection_cache_ttl`` seconds (never
past the token's ``exp``), at most :data:`MAX_ENTRIES` tokens, the oldest dropped first. A
hit is one dict lookup and one clock read. Refusals are not remembered: a token revoked at
the issuer is refused as soon as its cached acceptance runs out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

from authcore import BearerIdentity, InvalidToken, TokenExpired

from .config import OIDCConfig
from .http import IssuerHTTP

__all__ = ["Introspection", "MAX_ENTRIES"]

#: Most tokens whose introspection answer is remembered.
MAX_ENTRIES: Final = 10_000
#: ``token_type`` values of an access token (RFC 7662 2.2 means RFC 6749's "Bearer"; some issuers say more).
_ACCESS_TYPES: Final = frozenset({"bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"})
_MAX_TIME: Final = 1e11


class Introspection:
    """Asks the issuer about tokens, and remembers the tokens it vouched for."""

    def __init__(
        self,
        http: IssuerHTTP,
        config: OIDCConfig,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._http = http
        self._ttl = config.introspection_cache_ttl
        self._leeway = config.leeway
        self._clock = clock
        self._max = max_entries
        #: token → (cache until, result)
        self._cache: dict[str, tuple[float, BearerIdentity]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> BearerIdentity | None:
        """The remembered result for *token*, while it may be reused."""
        entry = self._cache.get(token)
        if entry is not None and self._clock() < entry[0]:
            return entry[1]
        return None

    def remember(self, token: str, result: BearerIdentity) -> None:
        """Keep *result* until its ``cache_until`` (never past ``expires_at``)."""
        until = min(result.cache_until or result.expires_at, result.expires_at)
        if until <= self._clock():
            return
        with self._lock:
            cache = self._cache
            cache.pop(token, None)
            while len(cache) >= self._max:
                del cache[next(iter(cache))]  # the oldest entry (dicts keep insertion order)
            cache[token] = (until, result)

    def forget(self) -> None:
        """Drop every remembered answer."""
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __bool__(self) -> bool:
        return True  # present even when nothing is cached (see tests/test_code_shape.py)

    def ask(
        self, token: str, endpoint: str, *, issuer: str, check_client: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        """The issuer's checked answer about *token* (see the module documentation); ``None``
        when the issuer calls it inactive (unknown, revoked, expired: RFC 7662 does not say which,
        and another provider may know the token).

        Raises :class:`~authcore.InvalidToken` when the token is active but fails a check,
        :class:`~authcore.ProviderUnavailable` when the issuer cannot answer.
        """
        answer = self._http.post_form(
            endpoint, {"token": token, "token_type_hint": "access_token"}, refused=InvalidToken
        )
        if type(answer) is not dict:
            raise InvalidToken("the introspection answer is not an object")
        if answer.get("active") is not True:
            return None
        iss = answer.get("iss")
        if iss is not None and iss != issuer:
            raise InvalidToken("token of another issuer")
        token_type = answer.get("token_type")
        if token_type is not None and (type(token_type) is not str or token_type.lower() not in _ACCESS_TYPES):
            raise InvalidToken("not an access token (a refresh token, say)")
        exp = answer.get("exp")
        if exp is not None:
            if type(exp) not in (int, float) or not -_MAX_TIME < exp < _MAX_TIME:
                raise InvalidToken("token without a valid expiry")
            if self._clock() >= exp + self._leeway:
                raise TokenExpired()
        check_client(answer)
        return answer

    def deadlines(self, answer: dict[str, Any]) -> tuple[float, float]:
        """``(expires_at, cache_until)`` for an accepted *answer*."""
        now = self._clock()
        cache_until = now + self._ttl
        exp = answer.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) else cache_until
        return expires_at, min(cache_until, expires_at)
