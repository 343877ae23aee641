"""What a token answer says about the user: the ID token, the access token, the userinfo answer, merged.

* The ID token is verified as OpenID Connect Core 3.1.3.7 says (issuer, signature, ``aud``
  and ``azp`` naming us, ``nonce`` of the request, ``at_hash`` of the access token); the
  authorization-code flow requires one.
* The access token adds its claims (roles, groups) when it is a JWT of our issuer that
  passes the offline checks; any other access token (opaque, or for another audience) adds
  nothing. Its ``sub`` must be the ID token's.
* Userinfo is asked per ``userinfo`` (``auto``: when the claims so far lack the login or a
  groups claim). Its ``sub`` must equal the tokens' (OpenID Connect Core 5.3.2). When the
  issuer does not accept the access token there (an audience-restricted token), ``auto``
  goes on without it; ``always`` reports the provider unavailable.

Later sources win for the claims they carry: userinfo over the ID token over the access token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from authcore import InvalidToken, ProviderUnavailable

from .config import OIDCConfig
from .discovery import Metadata
from .grants import Grants, TokenSet
from .mapping import ClaimMapper
from .signing import IssuerKeys

__all__ = ["ClaimSources", "merge_userinfo"]

log = logging.getLogger("auth_oidc")


def merge_userinfo(claims: dict[str, Any], userinfo: dict[str, Any]) -> dict[str, Any]:
    """*claims* updated with *userinfo*; :class:`~authcore.InvalidToken` when they are about different subjects."""
    sub, info_sub = claims.get("sub"), userinfo.get("sub")
    if type(info_sub) is not str or (sub is not None and sub != info_sub):
        raise InvalidToken("the userinfo answer is about another subject")
    return {**claims, **userinfo}


class ClaimSources:
    """Collects and checks the claims of a token answer for one provider instance."""

    def __init__(
        self, config: OIDCConfig, grants: Grants, mapper: ClaimMapper, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self._grants = grants
        self._mapper = mapper
        self._clock = clock

    def of_tokens(
        self,
        tokens: TokenSet,
        keys: IssuerKeys,
        metadata: Metadata,
        *,
        nonce: str | None,
        id_token_required: bool,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(claims, session_state)`` of a token answer; :class:`~authcore.InvalidToken` when a check fails."""
        id_claims: dict[str, Any] = {}
        if tokens.id_token is not None:
            id_claims = keys.id_claims(
                tokens.id_token, client_id=self._config.client_id, nonce=nonce, access_token=tokens.access_token
            )
        elif id_token_required:
            raise InvalidToken("the issuer sent no ID token")
        try:
            access_claims = keys.access_claims(tokens.access_token, client=False) or {}
        except InvalidToken as exc:  # ours but not for us (another audience): its claims are not used
            log.debug("access token claims not used (%s)", exc)
            access_claims = {}
        if id_claims and access_claims and access_claims.get("sub") != id_claims.get("sub"):
            raise InvalidToken("the access token and the ID token are about different subjects")
        claims = {**access_claims, **id_claims}
        claims = self.with_userinfo(claims, tokens.access_token, metadata)
        exp = access_claims.get("exp")
        if type(exp) not in (int, float):
            exp = self._clock() + tokens.expires_in if tokens.expires_in is not None else None
        sid = id_claims.get("sid")
        state: dict[str, Any] = {
            "refresh_token": tokens.refresh_token,
            "id_token": tokens.id_token,
            "access_expires_at": exp,
            "sid": sid if type(sid) is str else None,
            "sub": claims.get("sub") if type(claims.get("sub")) is str else None,
        }
        return claims, state

    def with_userinfo(self, claims: dict[str, Any], access_token: str, metadata: Metadata) -> dict[str, Any]:
        """*claims* with the userinfo answer merged in, when the ``userinfo`` policy asks for it."""
        policy = self._config.userinfo
        endpoint = metadata.userinfo_endpoint
        if policy == "never" or endpoint is None or (policy == "auto" and not self._mapper.lacks_claims(claims)):
            return claims
        try:
            userinfo = self._grants.userinfo(endpoint, access_token)
        except InvalidToken:
            if policy == "always":
                raise ProviderUnavailable(
                    f"the userinfo endpoint of {metadata.issuer} does not accept the access token (userinfo: always)"
                ) from None
            log.debug("userinfo refused the access token; going on with the token claims")
            return claims
        return merge_userinfo(claims, userinfo)
