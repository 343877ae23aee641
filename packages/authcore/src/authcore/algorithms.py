"""The token signing algorithms, as one table: each algorithm is one row.

A row says everything that differs between algorithms: the family (how the key is
loaded or derived, and which code signs and verifies), the hash, the RSA padding, the
curve, and what the JWKS publishes (``kty``, ``crv``, ``alg``). Padding and hash come from
the *algorithm*, never from the type of the key: one RSA key signs RS256 or PS256,
whichever the configuration pins, and a token of the other is refused.

This module imports nothing beyond the standard library, so the configuration schema can
take its list of names from here. The HMAC family is implemented here (stdlib only); the
asymmetric families are in :mod:`authcore.keys`, imported only when an asymmetric
algorithm is configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmName", "Family", "hmac_prototype"]

#: How a family signs: ``hmac`` (a shared secret), ``rsa-pkcs1`` (RSASSA-PKCS1-v1_5),
#: ``rsa-pss`` (RSASSA-PSS, MGF1 with the same hash, salt as long as the hash),
#: ``ecdsa`` (raw ``r || s``, RFC 7518 3.4), ``eddsa`` (RFC 8037).
Family = Literal["hmac", "rsa-pkcs1", "rsa-pss", "ecdsa", "eddsa"]


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One row of the table: a JOSE ``alg`` and everything needed to sign, verify and publish it."""

    name: str
    """The JOSE ``alg`` name, as configured and as written in every token header."""
    family: Family
    """Which code derives the key, signs and verifies (see :data:`Family`)."""
    hash: Literal["sha256", "sha384", "sha512"] | None
    """The digest; ``None`` for EdDSA, which hashes internally."""
    kty: Literal["oct", "RSA", "EC", "OKP"]
    """The JWK key type the algorithm needs (``oct``: a secret, never published)."""
    crv: str | None = None
    """The JWK curve for EC and OKP keys; the key must be on it."""

    @property
    def symmetric(self) -> bool:
        """Whether the key is a shared secret (``tokens.secret``) rather than a key pair (key files)."""
        return self.family == "hmac"


#: Every algorithm authcore signs and verifies with, by ``alg`` name. Adding one is adding a row.
ALGORITHMS: Final[Mapping[str, Algorithm]] = MappingProxyType(
    {
        row.name: row
        for row in (
            Algorithm("HS256", "hmac", "sha256", "oct"),
            Algorithm("HS384", "hmac", "sha384", "oct"),
            Algorithm("HS512", "hmac", "sha512", "oct"),
            Algorithm("RS256", "rsa-pkcs1", "sha256", "RSA"),
            Algorithm("RS384", "rsa-pkcs1", "sha384", "RSA"),
            Algorithm("RS512", "rsa-pkcs1", "sha512", "RSA"),
            Algorithm("PS256", "rsa-pss", "sha256", "RSA"),
            Algorithm("PS384", "rsa-pss", "sha384", "RSA"),
            Algorithm("PS512", "rsa-pss", "sha512", "RSA"),
            Algorithm("ES256", "ecdsa", "sha256", "EC", "P-256"),
            Algorithm("ES384", "ecdsa", "sha384", "EC", "P-384"),
            Algorithm("ES512", "ecdsa", "sha512", "EC", "P-521"),
            Algorithm("EdDSA", "eddsa", None, "OKP", "Ed25519"),
        )
    }
)

if TYPE_CHECKING:
    AlgorithmName = str
else:
    # Derived from the table, so the schema (and the generated configuration reference)
    # lists exactly the rows above; pydantic validates it like a written-out Literal.
    AlgorithmName = Literal[tuple(ALGORITHMS)]


def hmac_prototype(algorithm: Algorithm, secret: bytes) -> hmac.HMAC:
    """A keyed HMAC state for *algorithm*; ``.copy()`` it per token (no key schedule per call)."""
    if algorithm.family != "hmac" or algorithm.hash is None:
        raise ValueError(f"{algorithm.name} is not an HMAC algorithm")
    return hmac.new(secret, digestmod=algorithm.hash)
