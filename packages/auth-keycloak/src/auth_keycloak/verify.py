"""Keycloak's token kinds on top of the shared offline JWT checks (:mod:`authcore.jose.verify`).

Keycloak puts a ``typ`` *claim* in every token it issues: ``Bearer`` for access tokens,
``ID``, ``Refresh``, ``Logout`` and ``DPoP`` for the others. :class:`KeycloakVerifier`
requires the kind asked for, after the header and signature checks and before the time and
client checks, so a refresh or ID token is never taken for an access token. The header
rules (``at+jwt`` only for access tokens, no ``events`` claim) are the shared verifier's.
"""

from __future__ import annotations

from typing import Any

from authcore import InvalidToken
from authcore.jose import ACCESS_HEADER_TYPE, JWTVerifier

__all__ = ["KeycloakVerifier"]


class KeycloakVerifier(JWTVerifier):
    """:class:`~authcore.jose.JWTVerifier` that also requires Keycloak's ``typ`` claim."""

    def claims(self, token: str, *, typ: str = "Bearer", client: bool = True) -> dict[str, Any] | None:
        """The verified claims of a token of kind *typ* (Keycloak's ``typ`` claim); ``None`` when it
        is not this realm's. Raises :class:`~authcore.InvalidToken` as the shared verifier does."""
        peeked = self.peek(token)
        if peeked is None:
            return None
        parts, payload = peeked
        header_typ, _alg = self.check_signature(token, parts)
        if payload.get("typ") != typ or (header_typ == ACCESS_HEADER_TYPE and typ != "Bearer"):
            raise InvalidToken("unexpected token type")
        self.check_claims(payload)
        if client:
            self.check_client(payload)
        return payload

    def answered_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of an access token Keycloak's token endpoint returned to our own request:
        every check of :meth:`claims` but the signature's; ``None`` when it is not this realm's.

        The signature adds nothing there. It would be checked with keys fetched from the same
        server over the same connection, fetched again for a key the token names that we do
        not hold, so whoever could alter this answer could alter those as well; OpenID Connect
        Core 3.1.3.7 (item 6) lets a client rely on TLS alike for an ID token received from the
        token endpoint. A token a client presents (:meth:`claims`) is checked in full.
        """
        peeked = self.peek(token)
        if peeked is None:
            return None
        parts, payload = peeked
        self.header(parts[0])  # a readable header, an accepted algorithm (never "none"), a key named
        if payload.get("typ") != "Bearer":
            raise InvalidToken("unexpected token type")
        self.check_claims(payload)
        self.check_client(payload)
        return payload
