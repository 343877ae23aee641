"""JOSE and OpenID Connect pieces shared by the providers that check an issuer's tokens offline.

auth-keycloak and auth-oidc both verify JWTs against an issuer's published keys and run the
authorization-code flow; the one copy of that code lives here, in the core, because it needs
only the core's algorithm table and ``cryptography`` (already a core dependency), never an
HTTP client: the providers fetch, this package caches and checks.

* :mod:`authcore.jose.jwks`: :class:`KeyCache`, the issuer's keys with refetch rules;
* :mod:`authcore.jose.verify`: :class:`JWTVerifier`, access and ID tokens checked offline;
* :mod:`authcore.jose.flow`: PKCE S256, state, nonce, the authorization and logout URLs.

Importing :mod:`authcore` does not import this package.
"""

from __future__ import annotations

from . import flow
from .jwks import MAX_JWKS_KEYS, KeyCache, PublishedKey, parse_jwks
from .verify import ACCESS_HEADER_TYPE, ClientCheck, JWTVerifier, b64url_decode, token_hash

__all__ = [
    "KeyCache",
    "PublishedKey",
    "parse_jwks",
    "MAX_JWKS_KEYS",
    "JWTVerifier",
    "ClientCheck",
    "b64url_decode",
    "token_hash",
    "ACCESS_HEADER_TYPE",
    "flow",
]
