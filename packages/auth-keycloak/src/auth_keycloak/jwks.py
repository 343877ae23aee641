"""The realm's signing keys: parsed once into ready-to-use public keys, cached, refetched with care.

:class:`KeyCache` holds the realm's JWKS as ``kid`` → :class:`VerifierKey`. The hot path is
one dict lookup and one clock read. An unknown ``kid`` triggers at most one fetch at a
time (single flight: concurrent callers wait for it and share its result) and then a
cooldown during which unknown kids fail without a fetch, so a stream of forged kids
cannot make us hammer Keycloak. When a fetch fails, the keys already held keep working
(stale-if-error); only with no keys at all does verification report the provider
unavailable.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authcore import AuthError, ProviderUnavailable

__all__ = ["KeyCache", "VerifierKey", "parse_jwks", "InvalidSignature"]

log = logging.getLogger("auth_keycloak.jwks")

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: dict[str, tuple[type[ec.EllipticCurve], str, int]] = {
    "P-256": (ec.SECP256R1, "ES256", 32),
    "P-384": (ec.SECP384R1, "ES384", 48),
    "P-521": (ec.SECP521R1, "ES512", 66),
}
#: Smallest RSA modulus accepted, in bits.
MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """One realm key: its id, the one algorithm it may be used with, and a ready verifier.

    ``verify(signature, signing_input)`` raises :class:`cryptography.exceptions.InvalidSignature`.
    """

    kid: str
    alg: str
    verify: Callable[[bytes, bytes], None]


def _b64_int(value: Any) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url integer")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return int.from_bytes(raw, "big")


def _rsa_key(jwk: Mapping[str, Any], alg: str) -> Callable[[bytes, bytes], None]:
    public = rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"])).public_key()
    if public.key_size < MIN_RSA_BITS:
        raise ValueError("RSA key too small")
    digest = _HASHES[alg[2:]]()
    pad: padding.AsymmetricPadding
    if alg.startswith("PS"):
        pad = padding.PSS(mgf=padding.MGF1(_HASHES[alg[2:]]()), salt_length=digest.digest_size)
    else:
        pad = padding.PKCS1v15()
    verify = public.verify

    def check(signature: bytes, data: bytes) -> None:
        verify(signature, data, pad, digest)

    return check


def _ec_key(jwk: Mapping[str, Any], alg: str) -> Callable[[bytes, bytes], None]:
    curve_class, curve_alg, size = _CURVES[jwk["crv"]]
    if curve_alg != alg:
        raise ValueError("algorithm does not fit the curve")
    public = ec.EllipticCurvePublicNumbers(_b64_int(jwk["x"]), _b64_int(jwk["y"]), curve_class()).public_key()
    scheme = ec.ECDSA(_HASHES[alg[2:]]())
    verify = public.verify

    def check(signature: bytes, data: bytes) -> None:
        if len(signature) != 2 * size:
            raise InvalidSignature()
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        verify(encode_dss_signature(r, s), data, scheme)

    return check


def parse_jwks(document: Any, algorithms: tuple[str, ...]) -> dict[str, VerifierKey]:
    """The signature keys of a JWKS document usable with *algorithms*, by ``kid``.

    Encryption keys (``use: enc``), symmetric keys, keys for other algorithms and
    malformed entries are skipped: a JWKS key is never used for HMAC.
    """
    keys: dict[str, VerifierKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    for jwk in entries:
        if not isinstance(jwk, dict):
            continue
        kid, kty, use = jwk.get("kid"), jwk.get("kty"), jwk.get("use", "sig")
        if not isinstance(kid, str) or not kid or use != "sig":
            continue
        alg = jwk.get("alg")
        if alg is None:
            alg = "RS256" if kty == "RSA" else _CURVES.get(str(jwk.get("crv")), (None, None, 0))[1]
        if not isinstance(alg, str) or alg not in algorithms:
            continue
        try:
            if kty == "RSA" and alg[:2] in ("RS", "PS"):
                verify = _rsa_key(jwk, alg)
            elif kty == "EC" and alg.startswith("ES"):
                verify = _ec_key(jwk, alg)
            else:
                continue
        except (KeyError, ValueError, TypeError, UnsupportedAlgorithm):
            log.warning("skipping a malformed key in the realm's JWKS (kid %r)", kid[:64])
            continue
        keys[kid] = VerifierKey(kid=kid, alg=alg, verify=verify)
    return keys


class KeyCache:
    """The realm's keys by ``kid``, fetched lazily with single flight, cooldown and stale-if-error.

    *fetch* returns the JWKS document (raising :class:`~authcore.ProviderUnavailable`
    or any exception when Keycloak cannot answer).
    """

    def __init__(
        self,
        fetch: Callable[[], Any],
        *,
        algorithms: tuple[str, ...],
        ttl: float,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._algorithms = algorithms
        self._ttl = ttl
        self._cooldown = cooldown
        self._clock = clock
        self._keys: dict[str, VerifierKey] = {}
        self._fresh_until = float("-inf")
        self._last_refetch = float("-inf")
        self._last_failure = float("-inf")
        self._lock = threading.Lock()
        #: Fetches attempted (successful or not).
        self.fetches = 0

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids held now."""
        return tuple(self._keys)

    def get(self, kid: str) -> VerifierKey | None:
        """The key called *kid*, or ``None`` when the realm has no such key (as far as we may ask).

        Raises :class:`~authcore.ProviderUnavailable` only when no key was ever fetched
        and Keycloak cannot answer.
        """
        key = self._keys.get(kid)
        if key is not None:
            if self._clock() < self._fresh_until:
                return key
            # Expired: one caller refreshes, the others go on with the key they have.
            if self._lock.acquire(blocking=False):
                try:
                    if self._clock() >= self._fresh_until and not self._failed_recently():
                        self._refetch(quiet=True)
                finally:
                    self._lock.release()
            return self._keys.get(kid)
        with self._lock:  # single flight: later callers wait for this fetch and use its result
            key = self._keys.get(kid)
            if key is not None:
                return key
            if self._failed_recently():
                if not self._keys:
                    raise ProviderUnavailable("the realm's keys cannot be fetched")
                return None
            if self._keys:
                # An unknown kid while we hold keys: a rotation, or a forgery. One refetch, then a cooldown.
                now = self._clock()
                if now - self._last_refetch < self._cooldown:
                    return None
                self._last_refetch = now
            self._refetch(quiet=bool(self._keys))
            return self._keys.get(kid)

    def _failed_recently(self) -> bool:
        return self._clock() - self._last_failure < self._cooldown

    def _refetch(self, *, quiet: bool) -> None:
        self.fetches += 1
        try:
            keys = parse_jwks(self._fetch(), self._algorithms)
        except Exception as exc:
            self._last_failure = self._clock()
            detail = exc.code if isinstance(exc, AuthError) else type(exc).__name__
            log.warning("fetching the realm's keys failed (%s); keeping %d cached key(s)", detail, len(self._keys))
            if not quiet and not self._keys:
                raise ProviderUnavailable("the realm's keys cannot be fetched") from None
            return
        self._keys = keys
        self._fresh_until = self._clock() + self._ttl

    def refresh(self) -> None:
        """Fetch the keys now (ignores the cooldown); raises when Keycloak cannot answer and no key is held."""
        with self._lock:
            self._refetch(quiet=False)
