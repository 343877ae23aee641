"""Calls to the issuer's token, userinfo and revocation endpoints, and the shape of their answers.

Each grant returns a :class:`TokenSet` after checking the answer's shape (RFC 6749 5.1):
an ``access_token`` string, a ``token_type`` of ``Bearer`` (case-insensitive; a DPoP-bound
token would need proofs we do not send), and, when present, string ``id_token`` and
``refresh_token`` and a numeric ``expires_in``. A malformed answer is the issuer's fault:
:class:`~authcore.ProviderUnavailable`. A refused grant (``invalid_grant``) raises the
caller's error: :class:`~authcore.InvalidCredentials` at login, :class:`~authcore.InvalidToken`
when refreshing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authcore import AuthError, InvalidToken, ProviderUnavailable

from .config import OIDCConfig
from .http import IssuerHTTP, host_of

__all__ = ["TokenSet", "Grants"]

log = logging.getLogger("auth_oidc")

ErrorClass = type[AuthError]


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A checked token-endpoint answer."""

    access_token: str
    id_token: str | None
    refresh_token: str | None
    expires_in: float | None

    def __repr__(self) -> str:  # tokens are secrets
        return f"TokenSet(id_token={self.id_token is not None}, refresh_token={self.refresh_token is not None})"


class Grants:
    """The OAuth grants and side calls of one provider instance."""

    def __init__(self, http: IssuerHTTP, config: OIDCConfig) -> None:
        self._http = http
        self._config = config

    def authorization_code(
        self, endpoint: str, *, code: str, redirect_uri: str, code_verifier: str, refused: ErrorClass
    ) -> TokenSet:
        """Redeem an authorization code (RFC 6749 4.1.3, with the PKCE verifier of RFC 7636)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        return self._tokens(endpoint, form, refused)

    def password(self, endpoint: str, *, login: str, password: str, refused: ErrorClass) -> TokenSet:
        """The resource-owner password grant (RFC 6749 4.3)."""
        form = {"grant_type": "password", "username": login, "password": password, "scope": self._config.scope}
        return self._tokens(endpoint, form, refused)

    def refresh(self, endpoint: str, refresh_token: str) -> TokenSet:
        """The refresh grant (RFC 6749 6); a refused refresh token raises :class:`~authcore.InvalidToken`."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._tokens(endpoint, form, InvalidToken)

    def userinfo(self, endpoint: str, access_token: str) -> dict[str, Any]:
        """The userinfo answer (a JSON object); :class:`~authcore.InvalidToken` when the token is not accepted there."""
        answer = self._http.get_json(endpoint, bearer=access_token, refused=InvalidToken)
        if type(answer) is not dict:
            raise ProviderUnavailable(f"provider {self._http.name!r}: {host_of(endpoint)}: userinfo is not an object")
        return answer

    def revoke(self, endpoint: str, token: str, hint: str) -> bool:
        """Revoke *token* (RFC 7009). Failures are logged, never raised: our own session ends anyway."""
        try:
            self._http.post_form(
                endpoint, {"token": token, "token_type_hint": hint}, refused=InvalidToken, expect_json=False
            )
        except AuthError as exc:
            log.warning("revoking a %s at provider %r failed (%s)", hint, self._http.name, exc.code)
            return False
        return True

    def _tokens(self, endpoint: str, form: dict[str, str], refused: ErrorClass) -> TokenSet:
        answer = self._http.post_form(endpoint, form, refused=refused)
        if type(answer) is not dict:
            raise self._malformed(endpoint, "not a JSON object")
        access_token = answer.get("access_token")
        if type(access_token) is not str or not access_token:
            raise self._malformed(endpoint, "no access_token")
        token_type = answer.get("token_type")
        if type(token_type) is not str or token_type.lower() != "bearer":
            raise self._malformed(endpoint, "token_type is not Bearer")
        id_token, refresh_token = answer.get("id_token"), answer.get("refresh_token")
        if (id_token is not None and type(id_token) is not str) or (
            refresh_token is not None and type(refresh_token) is not str
        ):
            raise self._malformed(endpoint, "id_token or refresh_token is not a string")
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():  # some issuers send a string
            expires_in = int(expires_in)
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and 0 < expires_in < 1e9 else None
        return TokenSet(access_token, id_token or None, refresh_token or None, lifetime)

    def _malformed(self, endpoint: str, reason: str) -> ProviderUnavailable:
        return ProviderUnavailable(f"provider {self._http.name!r}: {host_of(endpoint)}: token answer {reason}")
