"""The RS256 floor that bench_keycloak and bench_oidc measure a provider's bearer check against.

A minimal inline verifier of a JWT access token: split, strict base64url, ``json.loads``,
cryptography's RSA PKCS#1 v1.5 verify with a pre-loaded key, and the claim checks the providers
make (iss, no logout ``events``, an optional ``typ``, exp/nbf/iat with leeway, the client or the
audience). Nothing in it can be taken away without dropping a check the providers must make, so
a provider's ratio to it is what its own overhead costs.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["make_floor"]

_PADDING = ("", "", "==", "=")
_MAX_TIME = 1e11


def make_floor(
    public_key: rsa.RSAPublicKey,
    *,
    issuer: str,
    client_claim: str,
    client_id: str,
    audience: str,
    typ: str | None,
    leeway: float,
) -> Callable[[str], dict[str, Any]]:
    """A verifier that returns a token's claims, or raises ``ValueError`` (cryptography's
    ``InvalidSignature`` for a bad signature).

    The token is accepted for the client when its *client_claim* (Keycloak's ``azp``, RFC 9068's
    ``client_id``) is *client_id*, or its ``aud`` is or holds *audience*. *typ*, when given, must be
    the token's ``typ`` claim (Keycloak's ``Bearer``).
    """
    a2b = binascii.a2b_base64
    loads = json.loads
    clock = time.time
    pad, digest = padding.PKCS1v15(), hashes.SHA256()
    verify = public_key.verify

    def b64(segment: str) -> bytes:
        if "+" in segment or "/" in segment or "=" in segment:
            raise ValueError("bad alphabet")
        return a2b(segment.replace("-", "+").replace("_", "/") + _PADDING[len(segment) & 3], strict_mode=True)

    def floor(token: str) -> dict[str, Any]:
        header, payload, signature = token.split(".")
        claims = loads(b64(payload))
        if type(claims) is not dict or claims.get("iss") != issuer:
            raise ValueError("iss")
        verify(b64(signature), token[: len(header) + 1 + len(payload)].encode(), pad, digest)
        if "events" in claims or (typ is not None and claims.get("typ") != typ):
            raise ValueError("typ")
        now = clock()
        exp = claims.get("exp")
        if (type(exp) is not int and type(exp) is not float) or not -_MAX_TIME < exp < _MAX_TIME:
            raise ValueError("exp")
        # RFC 7519 4.1.4, as the providers read it: valid only before exp.
        if now >= exp + leeway:
            raise ValueError("expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and ((type(value) is not int and type(value) is not float) or value > now + leeway):
                raise ValueError(name)
        aud = claims.get("aud")
        if claims.get(client_claim) != client_id and aud != audience and not (type(aud) is list and audience in aud):
            raise ValueError("client")
        return claims

    return floor
