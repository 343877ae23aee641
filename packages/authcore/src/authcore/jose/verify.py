"""Offline checks of an issuer's JWTs (access and ID tokens), written for speed.

The work is the benchmark floor's: split, strict base64url, ``json.loads``, one signature
check with a key loaded once (:class:`~authcore.jose.jwks.KeyCache`), and the claim checks
below. Parsed headers of verified tokens are remembered: an issuer signs with one or two
keys, so there are one or two distinct header segments.

Checks, in order: the unverified ``iss`` must be the issuer's, otherwise the token is *not
ours* and :meth:`JWTVerifier.claims` returns ``None`` (several providers can coexist, and a
token of another issuer is never checked against our keys); the header has only ``alg``,
``typ`` and ``kid`` (a ``jku``, ``x5u``, ``jwk`` or ``crit`` is refused: we never take a key
from the token), names a known ``kid`` and an algorithm the key fits among those accepted
(never ``none`` or ``HS*``); the signature; ``exp`` (exclusive), ``nbf`` and ``iat`` with
leeway; the client check.

Token kinds: the JOSE header ``typ`` may be ``JWT``, ``at+jwt`` (RFC 9068), either with the
``application/`` prefix, compared case-insensitively (RFC 7515 4.1.9), or absent; anything
else (``logout+jwt``, ``dpop+jwt``, ...) is refused. ``at+jwt`` passes only as an access
token, and a token with an ``events`` claim (a back-channel logout token) never passes.
ID tokens (``kind="id"``) are checked as OpenID Connect Core 3.1.3.7 says: ``aud`` names our
client, ``azp`` (when there are several audiences, or when present) is our client, and the
``nonce`` and ``at_hash`` match (:meth:`JWTVerifier.id_token_claims`).

The client check of access tokens (``client_check``): ``aud`` (an audience we accept),
``azp`` (the client that asked: the ``azp`` claim, or RFC 9068's ``client_id``), ``either``
or ``both``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from ..algorithms import ALGORITHMS
from ..errors import InvalidToken, TokenExpired
from ..keys import InvalidSignature
from ..providers import MAX_BEARER_TOKEN_LENGTH
from .jwks import KeyCache

__all__ = ["JWTVerifier", "b64url_decode", "ClientCheck", "token_hash", "ACCESS_HEADER_TYPE"]

ClientCheck = Literal["azp", "aud", "either", "both"]

_PADDING: Final = ("", "", "==", "=")
_MAX_TIME: Final = 1e11
_HEADER_CACHE_SIZE: Final = 16
_ALLOWED_HEADER: Final = frozenset({"alg", "typ", "kid"})
#: Header ``typ`` values accepted, lower-cased and without ``application/``; a missing ``typ`` counts as ``jwt``.
_HEADER_TYPES: Final = frozenset({"jwt", "at+jwt"})
#: The header ``typ`` of RFC 9068 access tokens: never accepted for another kind of token.
ACCESS_HEADER_TYPE: Final = "at+jwt"

_a2b = binascii.a2b_base64
_loads = json.loads


def b64url_decode(segment: str) -> bytes:
    """Strict base64url decoding without padding (raises ``binascii.Error``/``ValueError``)."""
    if "+" in segment or "/" in segment or "=" in segment:
        raise ValueError("not base64url")
    return _a2b(segment.replace("-", "+").replace("_", "/") + _PADDING[len(segment) & 3], strict_mode=True)


def token_hash(token: str, alg: str) -> str:
    """``at_hash``/``c_hash`` of *token* for a JWT signed with *alg* (OpenID Connect Core 3.1.3.6):
    the left half of its hash, base64url. EdDSA (Ed25519) uses SHA-512, as the OpenID errata say."""
    row = ALGORITHMS[alg]
    digest = hashlib.new(row.hash or "sha512", token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class JWTVerifier:
    """Checks the JWTs of one issuer for one client (see the module documentation)."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeyCache,
        clients: frozenset[str],
        audiences: frozenset[str],
        client_check: ClientCheck,
        leeway: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.keys = keys
        self._clients = clients
        self._audiences = audiences
        self._check_azp = client_check in ("azp", "either", "both")
        self._check_aud = client_check in ("aud", "either", "both")
        self._need_both = client_check == "both"
        self._leeway = leeway
        self._clock = clock
        self._headers: dict[str, tuple[str, str, str]] = {}

    def peek(self, token: str) -> tuple[list[str], dict[str, Any]] | None:
        """The segments and *unverified* payload of a token whose ``iss`` is this issuer; else ``None``."""
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

    def claims(self, token: str, *, client: bool = True) -> dict[str, Any] | None:
        """The verified claims of the access token *token*; ``None`` when it is not this issuer's.

        Raises :class:`~authcore.InvalidToken` (:class:`~authcore.TokenExpired`) when it is
        this issuer's but fails a check, :class:`~authcore.ProviderUnavailable` when the
        issuer's keys cannot be had at all.
        """
        checked = self.verified(token)
        if checked is None:
            return None
        payload = checked[0]
        if client:
            self.check_client(payload)
        return payload

    def verified(self, token: str) -> tuple[dict[str, Any], str, str] | None:
        """The claims, header ``typ`` (``jwt`` or ``at+jwt``) and ``alg`` of a token of this issuer
        whose signature and times check; ``None`` when it is not this issuer's. No client check.

        The hot path of every offline check: :meth:`peek` is written out here (one call less).
        """
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
        # A header seen before, whose key is held and fresh: the signature is checked right here
        # (check_signature is the general path: new headers, key refetches, errors).
        known = self._headers.get(parts[0])
        keys = self.keys
        key = keys.held.get(known[1]) if known is not None and keys.clock() < keys.fresh_until else None
        verify = key.verifiers.get(known[0]) if key is not None and known is not None else None
        if verify is None or known is None:
            header_typ, alg = self.check_signature(token, parts)
        else:
            alg, header_typ = known[0], known[2]
            try:
                verify(b64url_decode(parts[2]), token[: len(parts[0]) + 1 + len(parts[1])].encode())
            except (InvalidSignature, ValueError, binascii.Error):
                raise InvalidToken("bad token signature") from None
        self.check_claims(payload)
        return payload, header_typ, alg

    def id_token_claims(
        self, token: str, *, client_id: str, nonce: str | None, access_token: str | None = None
    ) -> dict[str, Any]:
        """The verified claims of an ID token issued to *client_id* (OpenID Connect Core 3.1.3.7).

        *nonce* must match when given; ``at_hash``, when the token has one, must match
        *access_token*. Raises :class:`~authcore.InvalidToken` for anything else, a token of
        another issuer included.
        """
        peeked = self.peek(token)
        if peeked is None:
            raise InvalidToken("the ID token names another issuer")
        parts, claims = peeked
        header_typ, alg = self.check_signature(token, parts)
        if header_typ == ACCESS_HEADER_TYPE:
            raise InvalidToken("unexpected token type")
        self.check_claims(claims)
        aud = claims.get("aud")
        audiences = [aud] if type(aud) is str else aud if type(aud) is list else []
        if client_id not in audiences:
            raise InvalidToken("the ID token was issued for another client")
        azp = claims.get("azp")
        if (azp is not None or len(audiences) > 1) and azp != client_id:
            raise InvalidToken("the ID token was issued for another client")
        if type(claims.get("iat")) not in (int, float):
            raise InvalidToken("the ID token has no issue time")
        if nonce is not None and not _same(claims.get("nonce"), nonce):
            raise InvalidToken("the ID token does not carry the nonce of the request")
        at_hash = claims.get("at_hash")
        if at_hash is not None and access_token is not None and not _same(at_hash, token_hash(access_token, alg)):
            raise InvalidToken("the ID token's at_hash does not match the access token")
        return claims

    def check_signature(self, token: str, parts: list[str]) -> tuple[str, str]:
        """Check the header and signature of a split token; return its header ``typ``, normalised
        (``jwt`` or ``at+jwt``), and its ``alg``."""
        header_segment = parts[0]
        known = self._headers.get(header_segment)
        if known is None:
            alg, kid, header_typ = self._parse_header(header_segment)
        else:
            alg, kid, header_typ = known
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        verify = key.verifiers.get(alg) or key.verifier(alg)
        if verify is None:
            raise InvalidToken("token algorithm does not match its key")
        try:
            verify(b64url_decode(parts[2]), token[: len(header_segment) + 1 + len(parts[1])].encode())
        except (InvalidSignature, ValueError, binascii.Error):
            raise InvalidToken("bad token signature") from None
        if known is None and len(self._headers) < _HEADER_CACHE_SIZE:
            self._headers[header_segment] = (alg, kid, header_typ)
        return header_typ, alg

    def header(self, segment: str) -> tuple[str, str, str]:
        """The ``alg``, ``kid`` and normalised ``typ`` of a token's header *segment*, checked as
        :meth:`check_signature` checks them (an algorithm this issuer's keys accept, a key named),
        without the signature: for a token whose channel vouches for it. Raises
        :class:`~authcore.InvalidToken`. Only headers whose signature checked are remembered."""
        known = self._headers.get(segment)
        return known if known is not None else self._parse_header(segment)

    def _parse_header(self, segment: str) -> tuple[str, str, str]:
        try:
            header = _loads(b64url_decode(segment))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise InvalidToken("malformed token header") from None
        if type(header) is not dict or not _ALLOWED_HEADER.issuperset(header):
            raise InvalidToken("unexpected token header")
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ", "JWT")
        if type(alg) is not str or alg not in self.keys.algorithms:
            raise InvalidToken("token algorithm not accepted")
        if type(kid) is not str or not kid:
            raise InvalidToken("token names no key")
        if type(typ) is not str:
            raise InvalidToken("unexpected token type")
        typ = typ.lower().removeprefix("application/")
        if typ not in _HEADER_TYPES:
            raise InvalidToken("unexpected token type")
        return alg, kid, typ

    def check_claims(self, claims: dict[str, Any]) -> None:
        """The time checks, and no logout token (the signature must have been checked)."""
        # A back-channel logout token carries ``events``; never take one for another kind of token.
        if "events" in claims:
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

    def check_client(self, claims: dict[str, Any]) -> None:
        """``azp`` (or ``client_id``) and/or ``aud`` must name us, as configured."""
        azp_ok = aud_ok = False
        if self._check_azp:
            azp = claims.get("azp")
            azp_ok = (azp if azp is not None else claims.get("client_id")) in self._clients
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


def _same(value: object, expected: str) -> bool:
    return type(value) is str and hmac.compare_digest(value.encode(), expected.encode())
