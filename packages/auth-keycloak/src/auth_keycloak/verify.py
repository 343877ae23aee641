"""Offline checks of Keycloak's JWTs, written for speed with cryptography and the standard library.

python-keycloak's ``decode_token`` (jwcrypto underneath) costs several times a bare RS256
check and, without a key, fetches the certs on every call; it also checks only the
claims it is told to. This verifier does the same work as the benchmark's floor:
split, strict base64url, ``json.loads``, one signature check with a pre-loaded public
key, and the claim checks below. Parsed headers of verified tokens are remembered (a
realm signs with one or two keys, so there are one or two distinct header segments).

Checks, in order: the unverified ``iss`` must be the realm's (otherwise the token is
*not ours* and :meth:`TokenVerifier.claims` returns ``None``, so several providers can
coexist); the header names a known ``kid`` and exactly that key's algorithm (never
``none`` or ``HS*``); the signature; ``typ``; ``exp`` / ``nbf`` / ``iat`` with leeway;
``azp`` and/or ``aud`` naming our client as configured.

Token types are checked twice. The JOSE header's ``typ`` may be ``JWT`` (Keycloak's
default), ``at+jwt`` (RFC 9068; Keycloak's "Use 'at+jwt' as access token header type"
client setting), either with the ``application/`` prefix, compared case-insensitively as
RFC 7515 4.1.9 says media types are; or absent (it is optional in RFC 7515, and the claim
check below is what tells token kinds apart). Anything else (``logout+jwt``, ``dpop+jwt``,
...) is refused, and ``at+jwt`` only ever passes as an access token. Then the ``typ``
*claim* Keycloak puts in every token must be the kind asked for (``Bearer`` for access
tokens; ID, refresh, logout and DPoP-bound tokens say ``ID``, ``Refresh``, ``Logout``,
``DPoP``), and a token with an ``events`` claim (a back-channel logout token) is never
accepted, whatever its ``typ`` claim says.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Callable
from typing import Any, Final

from authcore import InvalidToken, TokenExpired
from authcore.providers import MAX_BEARER_TOKEN_LENGTH

from .jwks import InvalidSignature, KeyCache

__all__ = ["TokenVerifier", "b64url_decode"]

_PADDING: Final = ("", "", "==", "=")
_MAX_TIME: Final = 1e11
_HEADER_CACHE_SIZE: Final = 16
_ALLOWED_HEADER: Final = frozenset({"alg", "typ", "kid"})
#: Header ``typ`` values accepted, lower-cased and without ``application/``; a missing ``typ`` counts as ``jwt``.
_HEADER_TYPES: Final = frozenset({"jwt", "at+jwt"})
#: The header ``typ`` of RFC 9068 access tokens: never accepted for another kind of token.
_ACCESS_HEADER_TYPE: Final = "at+jwt"

_a2b = binascii.a2b_base64
_loads = json.loads


def b64url_decode(segment: str) -> bytes:
    """Strict base64url decoding without padding (raises ``binascii.Error``/``ValueError``)."""
    if "+" in segment or "/" in segment or "=" in segment:
        raise ValueError("not base64url")
    return _a2b(segment.replace("-", "+").replace("_", "/") + _PADDING[len(segment) & 3], strict_mode=True)


class TokenVerifier:
    """Checks tokens of one realm for one client.

    ``client_check`` is ``"azp"``, ``"aud"``, ``"either"`` or ``"both"``; ``clients`` are
    the ``azp`` values accepted, ``audiences`` the ``aud`` values.
    """

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeyCache,
        algorithms: tuple[str, ...],
        clients: frozenset[str],
        audiences: frozenset[str],
        client_check: str,
        leeway: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.keys = keys
        self._algorithms = frozenset(algorithms)
        self._clients = clients
        self._audiences = audiences
        self._check_azp = client_check in ("azp", "either", "both")
        self._check_aud = client_check in ("aud", "either", "both")
        self._need_both = client_check == "both"
        self._leeway = leeway
        self._clock = clock
        self._headers: dict[str, tuple[str, str, str]] = {}

    def peek(self, token: str) -> tuple[list[str], dict[str, Any]] | None:
        """The segments and *unverified* payload of a token whose ``iss`` is this realm; else ``None``."""
        if type(token) is not str or len(token) > MAX_BEARER_TOKEN_LENGTH:
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            payload = _loads(b64url_decode(parts[1]))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            return None
        if type(payload) is not dict or payload.get("iss") != self.issuer:
            return None
        return parts, payload

    def claims(self, token: str, *, typ: str = "Bearer", client: bool = True) -> dict[str, Any] | None:
        """The verified claims of *token*; ``None`` when it is not this realm's token.

        Raises :class:`~authcore.InvalidToken` (:class:`~authcore.TokenExpired`) when it is
        this realm's but fails a check, :class:`~authcore.ProviderUnavailable` when the
        realm's keys cannot be had at all.
        """
        peeked = self.peek(token)
        if peeked is None:
            return None
        parts, payload = peeked
        if self.check_signature(token, parts) == _ACCESS_HEADER_TYPE and typ != "Bearer":
            raise InvalidToken("unexpected token type")
        self.check_claims(payload, typ=typ, client=client)
        return payload

    def check_signature(self, token: str, parts: list[str]) -> str:
        """Check the header and signature of a split token; return its header ``typ``, normalised
        (``jwt`` or ``at+jwt``)."""
        header_segment = parts[0]
        known = self._headers.get(header_segment)
        if known is None:
            alg, kid, header_typ = self._parse_header(header_segment)
        else:
            alg, kid, header_typ = known
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        if alg != key.alg:
            raise InvalidToken("token algorithm does not match its key")
        try:
            signature = b64url_decode(parts[2])
            key.verify(signature, token[: len(header_segment) + 1 + len(parts[1])].encode())
        except (InvalidSignature, ValueError, binascii.Error):
            raise InvalidToken("bad token signature") from None
        if known is None and len(self._headers) < _HEADER_CACHE_SIZE:
            self._headers[header_segment] = (alg, kid, header_typ)
        return header_typ

    def _parse_header(self, segment: str) -> tuple[str, str, str]:
        try:
            header = _loads(b64url_decode(segment))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise InvalidToken("malformed token header") from None
        if type(header) is not dict or not _ALLOWED_HEADER.issuperset(header):
            raise InvalidToken("unexpected token header")
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ", "JWT")
        if type(alg) is not str or alg not in self._algorithms:
            raise InvalidToken("token algorithm not accepted")
        if type(kid) is not str or not kid:
            raise InvalidToken("token names no key")
        if type(typ) is not str:
            raise InvalidToken("unexpected token type")
        typ = typ.lower().removeprefix("application/")
        if typ not in _HEADER_TYPES:
            raise InvalidToken("unexpected token type")
        return alg, kid, typ

    def check_claims(self, claims: dict[str, Any], *, typ: str = "Bearer", client: bool = True) -> None:
        """The claim checks (the signature must have been checked)."""
        # A back-channel logout token carries ``events``; never take one for another kind of token.
        if claims.get("typ") != typ or "events" in claims:
            raise InvalidToken("unexpected token type")
        now = self._clock()
        leeway = self._leeway
        exp = claims.get("exp")
        if (type(exp) is not int and type(exp) is not float) or not -_MAX_TIME < exp < _MAX_TIME:
            raise InvalidToken("token without a valid expiry")
        # RFC 7519 4.1.4: valid only *before* exp, so exp == now (leeway 0) has expired.
        if now >= exp + leeway:
            raise TokenExpired()
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is None:
                continue
            if (type(value) is not int and type(value) is not float) or not -_MAX_TIME < value < _MAX_TIME:
                raise InvalidToken(f"token with an invalid {name}")
            if value > now + leeway:
                raise InvalidToken("token not valid yet")
        if client:
            self.check_client(claims)

    def check_client(self, claims: dict[str, Any]) -> None:
        """``azp`` and/or ``aud`` must name our client, as configured."""
        azp_ok = aud_ok = False
        if self._check_azp:
            azp_ok = claims.get("azp") in self._clients
            if azp_ok and not self._need_both:  # "either": the audience need not be looked at
                return
        if self._check_aud:
            aud = claims.get("aud")
            if type(aud) is str:
                aud_ok = aud in self._audiences
            elif type(aud) is list:
                aud_ok = not self._audiences.isdisjoint(a for a in aud if type(a) is str)
        ok = (azp_ok and aud_ok) if self._need_both else (azp_ok or aud_ok)
        if not ok:
            raise InvalidToken("token was issued for another client")
