"""Access tokens: issuing and strictly verifying JWTs, and the JWKS that publishes our keys.

Access tokens are compact JWS tokens with one pinned algorithm (``tokens.algorithm``).
Verification is written here, not delegated to a general JWT library, because the rules
are narrower than any library's defaults and because it sits on every request:

* the token is a short ASCII string of exactly three non-empty base64url segments,
  without padding, decoded strictly (``binascii.a2b_base64(..., strict_mode=True)``);
* the header is ``{"alg": <pinned>, "typ": "at+jwt"}`` plus, for asymmetric keys, an
  optional ``kid`` naming one of *our* keys; every other header member is refused, so
  ``alg: none``, algorithm confusion, ``crit``, JWE and key-choosing headers
  (``jku``, ``x5u``, ``jwk``, ``x5c``, ...) all fail;
* the signature is checked before the payload is parsed;
* the payload is a JSON object without duplicate keys, with ``iss``, ``aud``, ``sub``,
  ``sid``, ``jti``, ``iat``, ``nbf`` and ``exp`` all present and well typed (``tokens.profile:
  pyispyb`` issues and accepts our tokens without ``aud``, which py-ispyb's PyJWT check refuses).

Every failure is an :class:`~authcore.errors.InvalidToken` (or its subclass
:class:`~authcore.errors.TokenExpired`); messages never contain the token or a key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from .algorithms import ALGORITHMS, hmac_prototype
from .claims import SIGNING_CLAIMS
from .config.schema import TokenConfig
from .errors import AuthError, ConfigError, InvalidToken, TokenExpired

__all__ = ["MAX_ACCESS_TOKEN_LENGTH", "TOKEN_TYPE", "TokenService"]

log = logging.getLogger(__name__)

#: Longest access token authcore issues, and longest :meth:`TokenService.decode` looks at
#: (longer input is refused unread). Bearer tokens of identity providers have their own bound.
MAX_ACCESS_TOKEN_LENGTH: Final = 8192
#: The ``typ`` header of every access token (RFC 9068).
TOKEN_TYPE: Final = "at+jwt"

#: The only header members a token may carry. Everything else (crit, jku, x5u, jwk, x5c,
#: x5t, enc, zip, cty, ...) is refused: we never let a token choose or describe its key.
_ALLOWED_HEADER: Final = frozenset({"alg", "typ", "kid"})
#: Named in error messages so an operator sees why a third-party token was refused.
_FORBIDDEN_HEADER: Final = frozenset({"crit", "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "enc", "zip"})
#: Timestamps beyond this are nonsense (year ~5138); the chained comparison also refuses NaN.
_MAX_TIMESTAMP: Final = 1e11
#: Distinct header segments whose parse result is remembered. Our own header is one string;
#: a few more appear while keys rotate. Only headers of verified tokens are added.
_HEADER_CACHE_SIZE: Final = 32

#: Padding to append per ``len(segment) % 4``; a remainder of 1 is never valid base64.
_PADDING: Final = ("", "", "==", "=")
#: Allowed last characters of a segment by ``len % 4``: the unused low bits must be zero,
#: otherwise several strings decode to the same signature (a malleable token string).
_CANONICAL_LAST: Final[tuple[str | None, ...]] = (None, None, "AQgw", "AEIMQUYcgkosw048")


def _fail(message: str = "malformed token") -> NoReturn:
    raise InvalidToken(message)


def _b64url_decode(segment: str) -> bytes:
    """Strictly decode one unpadded base64url segment (the caller has refused ``+ / =``)."""
    remainder = len(segment) & 3
    if remainder == 1:
        _fail()
    # base64url -> standard alphabet, then strict_mode refuses any character outside it
    # (base64.urlsafe_b64decode would silently skip them). Two replace() calls are ~20x
    # faster than str.translate on random text.
    std = segment.replace("-", "+").replace("_", "/")
    return binascii.a2b_base64(std + _PADDING[remainder], strict_mode=True)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are how parser-differential attacks smuggle a second "sub" or "alg".
    obj = dict(pairs)
    if len(obj) != len(pairs):
        _fail("malformed token: duplicate JSON member")
    return obj


def _no_constants(_name: str) -> NoReturn:
    # NaN and Infinity are not JSON; an "exp": NaN would compare false and never expire.
    _fail("malformed token: non-finite number")


#: One decoder, built once: ``json.loads`` with hooks would build a new decoder per call.
_JSON: Final = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_no_constants)


def _mac(prototype: hmac.HMAC, data: bytes) -> bytes:
    mac = prototype.copy()
    mac.update(data)
    return mac.digest()


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True, slots=True)
class _Key:
    """A verification key: its id, its public JWK, and a ``verify(signature, data) -> bool``."""

    kid: str
    jwk: dict[str, str]
    verify: Callable[[bytes, bytes], bool]

    def __repr__(self) -> str:  # never show key material
        return f"_Key(kid={self.kid!r})"


# --------------------------------------------------------------------------- service


class TokenService:
    """Issues access tokens and verifies them strictly, with one pinned algorithm.

    The algorithm is a row of :data:`authcore.algorithms.ALGORITHMS`. HMAC rows (HS*) sign
    with ``config.secret`` (else *fallback_secret*, else a random per-process secret and a
    warning). Asymmetric rows (RS*, PS*, ES*, EdDSA) sign with ``config.private_key_file``
    and accept its public key plus ``config.public_key_files`` (earlier keys, during a
    rotation); each key is named by its RFC 7638 thumbprint (``kid``) and published by :meth:`jwks`.
    """

    #: The pinned signing algorithm; tokens with any other ``alg`` are refused.
    algorithm: str

    def __init__(self, config: TokenConfig, *, fallback_secret: bytes | None = None) -> None:
        self.algorithm = config.algorithm
        self._issuer = config.issuer
        self._audience = config.audience
        # tokens.profile pyispyb: py-ispyb decodes our tokens with PyJWT and no audience, and
        # PyJWT refuses any token that has one; so we issue none and accept our own without one.
        self._audienceless = config.profile == "pyispyb"
        self._leeway = float(config.leeway)
        self._keys: dict[str, _Key] = {}
        self._hmac_prototype: hmac.HMAC | None = None
        self._sign: Callable[[bytes], bytes]
        algorithm = ALGORITHMS[config.algorithm]
        header: dict[str, str] = {"alg": algorithm.name, "typ": TOKEN_TYPE}
        if algorithm.symmetric:
            # Copies of a keyed HMAC state reuse its inner/outer pads: no key schedule per call.
            prototype = hmac_prototype(algorithm, self._symmetric_secret(config, fallback_secret))
            self._hmac_prototype = prototype
            self._sign = lambda data: _mac(prototype, data)
            candidates: tuple[_Key, ...] = (
                _Key(kid="", jwk={}, verify=lambda sig, data: hmac.compare_digest(sig, _mac(prototype, data))),
            )
        else:
            # Deferred: cryptography's asymmetric code stays off the startup path of HS* deployments.
            from . import keys

            assert config.private_key_file is not None  # guaranteed by TokenConfig
            self._sign, verification_keys = keys.load(algorithm, config.private_key_file, config.public_key_files)
            for key_id, jwk, verify in verification_keys:
                self._keys[key_id] = _Key(kid=key_id, jwk=jwk, verify=verify)
            header["kid"] = next(iter(self._keys))  # the signing key comes first
            candidates = (self._keys[header["kid"]],)
        self._header_segment = _b64url_encode(json.dumps(header, separators=(",", ":")).encode("ascii"))
        # Parsed-and-validated headers by their exact segment string. Ours is trusted from the start.
        self._own_candidates = candidates
        self._headers: dict[str, tuple[_Key, ...]] = {self._header_segment: candidates}

    @staticmethod
    def _symmetric_secret(config: TokenConfig, fallback_secret: bytes | None) -> bytes:
        if config.secret is not None:
            secret = config.secret.get_secret_value().encode("utf-8")
            if not secret:
                raise ConfigError("tokens.secret is empty")
            return secret
        if fallback_secret is not None:
            if not fallback_secret:
                raise ConfigError("the fallback token secret is empty")
            return bytes(fallback_secret)
        log.warning("no tokens.secret configured: using a random per-process secret; tokens die with this process")
        return os.urandom(32)

    def __repr__(self) -> str:
        return (
            f"TokenService(algorithm={self.algorithm!r}, issuer={self._issuer!r}, "
            f"audience={self._audience!r}, kids={list(self._keys)!r})"
        )

    # ----------------------------------------------------------------- issue

    def issue(self, claims: Mapping[str, Any], *, now: float | None = None) -> str:
        """Sign *claims* into an access token.

        *claims* carries ``sub``, ``sid``, ``exp`` and the application claims; this adds
        ``iss``, ``aud``, ``iat``, ``nbf`` (= ``iat``) and a random ``jti``. A caller claim
        named like one of those raises :class:`ValueError`, as do a missing or mistyped
        ``sub``/``sid``/``exp`` and a token longer than :data:`MAX_ACCESS_TOKEN_LENGTH` (it could
        never be verified).
        """
        clash = SIGNING_CLAIMS.intersection(claims)
        if clash:
            raise ValueError(f"claims set by the token service cannot be given: {sorted(clash)}")
        missing = {"sub", "sid", "exp"}.difference(claims)
        if missing:
            raise ValueError(f"claims required to issue a token are missing: {sorted(missing)}")
        sub, sid, exp = claims["sub"], claims["sid"], claims["exp"]
        # Refuse what decode() would refuse, rather than hand out a token that never verifies.
        if type(sub) is not str or not sub or type(sid) is not str:
            raise TypeError("claims 'sub' and 'sid' must be strings ('sub' non-empty)")
        if type(exp) not in (int, float) or not -_MAX_TIMESTAMP < exp < _MAX_TIMESTAMP:
            raise TypeError("claim 'exp' must be a finite number (not a bool)")
        issued_at = math.floor(time.time() if now is None else now)
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            **claims,
            "iat": issued_at,
            "nbf": issued_at,
            "jti": secrets.token_urlsafe(16),
        }
        if self._audienceless:
            del payload["aud"]
            # py-ispyb's set_token_data reads login and personId: login is always the subject (no
            # plugin makes py-ispyb see another user); personId comes from a plugin (compat.ispyb_db).
            payload["login"] = sub
            payload.setdefault("personId", None)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        signing_input = f"{self._header_segment}.{_b64url_encode(body.encode('ascii'))}"
        token = f"{signing_input}.{_b64url_encode(self._sign(signing_input.encode('ascii')))}"
        if len(token) > MAX_ACCESS_TOKEN_LENGTH:
            raise ValueError(f"the token would be longer than {MAX_ACCESS_TOKEN_LENGTH} characters; issue fewer claims")
        return token

    # ----------------------------------------------------------------- verify

    def decode(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """Verify *token* completely and return its claims.

        Raises :class:`~authcore.errors.TokenExpired` for a token past ``exp`` (+ leeway)
        and :class:`~authcore.errors.InvalidToken` for anything else that is wrong. Nothing
        is cached here except the parse of already-verified headers; see :class:`~authcore.token_cache.TokenCache`.
        """
        try:
            return self._decode(token, time.time() if now is None else now)
        except AuthError:
            raise
        except Exception:  # any surprise from hostile input is an invalid token (rare path)
            error = InvalidToken("malformed token")
        # Raised outside the except block: no __context__ that could carry token bytes.
        raise error

    def _decode(self, token: str, now: float) -> dict[str, Any]:
        # -- shape: cheap str checks first, so junk is refused before any decoding.
        if type(token) is not str or len(token) > MAX_ACCESS_TOKEN_LENGTH or not token.isascii():
            _fail()
        parts = token.split(".")
        if len(parts) != 3:
            _fail()
        header_seg, payload_seg, signature_seg = parts
        if not header_seg or not payload_seg or not signature_seg:
            _fail()
        # a2b_base64 would accept the standard alphabet and padding; base64url has neither.
        if "+" in token or "/" in token or "=" in token:
            _fail()
        last = _CANONICAL_LAST[len(signature_seg) & 3]
        if last is not None and signature_seg[-1] not in last:
            _fail()

        # -- header: our own is one exact string, parsed once.
        candidates = self._headers.get(header_seg)
        cached = candidates is not None
        if candidates is None:
            candidates = self._parse_header(header_seg)

        # -- signature, before the payload is even decoded.
        signature = _b64url_decode(signature_seg)
        signing_input = token[: len(header_seg) + 1 + len(payload_seg)].encode("ascii")
        prototype = self._hmac_prototype
        if prototype is not None:
            # HMAC inlined: the hot path of the default configuration, one call less per request.
            mac = prototype.copy()
            mac.update(signing_input)
            if not hmac.compare_digest(signature, mac.digest()):
                _fail("token signature invalid")
        else:
            for key in candidates:
                if key.verify(signature, signing_input):
                    break
            else:
                _fail("token signature invalid")
        if not cached and len(self._headers) < _HEADER_CACHE_SIZE:
            # Only headers that came with a valid signature are remembered: a forger cannot fill this.
            self._headers[header_seg] = candidates
        return self._claims(payload_seg, now)

    def _claims(self, payload_seg: str, now: float) -> dict[str, Any]:
        """The payload of a token whose signature is verified, if its claims pass every check."""
        claims = _JSON.decode(_b64url_decode(payload_seg).decode("utf-8"))
        if type(claims) is not dict:
            _fail("malformed token: payload is not a JSON object")
        if claims.get("iss") != self._issuer:
            _fail("token issuer not accepted")
        aud = claims.get("aud")
        if (
            aud != self._audience
            and not (type(aud) is list and self._audience in aud)
            and not (self._audienceless and "aud" not in claims)  # tokens.profile pyispyb
        ):
            _fail("token audience not accepted")
        sub = claims.get("sub")
        if type(sub) is not str or not sub:
            _fail("token subject missing")
        if type(claims.get("sid")) is not str or type(claims.get("jti")) is not str:
            _fail("token sid or jti missing")
        exp: Any = claims.get("exp")
        nbf: Any = claims.get("nbf")
        iat: Any = claims.get("iat")
        # type() rather than isinstance(): bool is an int subclass and "exp": true is not a time.
        for value in (exp, nbf, iat):
            if (type(value) is not int and type(value) is not float) or not -_MAX_TIMESTAMP < value < _MAX_TIMESTAMP:
                _fail("token times missing or not numbers")
        leeway = self._leeway
        # RFC 7519 4.1.4: valid only *before* exp, so exp == now (leeway 0) has expired.
        if now >= exp + leeway:
            raise TokenExpired()
        if nbf > now + leeway:
            _fail("token not valid yet")
        if iat > now + leeway:
            _fail("token issued in the future")
        return claims

    def owns(self, token: object) -> bool:
        """Whether *token* is provably ours: our exact header, or a valid signature by one of our keys.

        For a token :meth:`decode` refused: the refusal of one of ours is final, and
        :meth:`AuthManager.verify <authcore.AuthManager.verify>` must not hand it to an
        identity provider's ``verify_bearer``, which might accept what our rules refused
        (not valid yet, wrong audience, bad claims). Only called on that rare failure path.
        """
        try:
            if type(token) is not str or len(token) > MAX_ACCESS_TOKEN_LENGTH or not token.isascii():
                return False
            parts = token.split(".")
            if len(parts) != 3:
                return False
            header_seg, payload_seg, signature_seg = parts
            if header_seg == self._header_segment:
                return True
            candidates = self._headers.get(header_seg)
            if candidates is None:
                candidates = self._parse_header(header_seg)
            signature = _b64url_decode(signature_seg)
            signing_input = f"{header_seg}.{payload_seg}".encode("ascii")
            return any(key.verify(signature, signing_input) for key in candidates)
        except Exception:  # unparsable: not provably ours
            return False

    def _parse_header(self, segment: str) -> tuple[_Key, ...]:
        """Decode and validate a header we have not seen; return the keys it may be verified with."""
        try:
            header = _JSON.decode(_b64url_decode(segment).decode("utf-8"))
        except (ValueError, RecursionError):  # binascii.Error and JSON/Unicode errors are ValueErrors
            header = None
        if type(header) is not dict:
            _fail("malformed token header")
        forbidden = _FORBIDDEN_HEADER.intersection(header)
        if forbidden:
            _fail(f"token header member not accepted: {min(forbidden)}")
        if not _ALLOWED_HEADER.issuperset(header):
            _fail("token header has unknown members")
        if header.get("alg") != self.algorithm:
            _fail("token algorithm not accepted")
        if header.get("typ") != TOKEN_TYPE:
            _fail("token type not accepted")
        if "kid" not in header:
            # HMAC: the one secret. Asymmetric without kid: any of our keys (a rotation-era issuer).
            return tuple(self._keys.values()) if self._keys else self._own_candidates
        kid = header["kid"]
        # A kid only ever selects among keys we hold; it is never used to fetch anything.
        key = self._keys.get(kid) if type(kid) is str else None
        if key is None:
            _fail("token key id not accepted")
        return (key,)

    # ----------------------------------------------------------------- JWKS

    def jwks(self) -> dict[str, Any]:
        """The public verification keys as a JWK Set; ``{"keys": []}`` for HMAC algorithms."""
        return {"keys": [dict(key.jwk) for key in self._keys.values()]}
