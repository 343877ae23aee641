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
