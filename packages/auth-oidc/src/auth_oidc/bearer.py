"""Bearer tokens of the issuer: JWTs checked offline, opaque tokens (and, with ``introspect: always``,
JWTs too) by RFC 7662 introspection with its short cache.

A JWT that does not name our issuer is "not ours" (``None``), and so is an opaque token the
issuer calls inactive. Userinfo is asked when the token's claims lack the login or a groups
claim (``userinfo: auto``, the same rule as at login), so a token that carries them costs no
HTTP call once the keys are held. Group rules apply as at login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from authcore import BearerIdentity, Identity, InvalidToken

from .claims import merge_userinfo
from .config import OIDCConfig
from .discovery import Discovery, Metadata
from .grants import Grants
from .introspection import Introspection
from .mapping import ClaimMapper
from .signing import IssuerKeys

__all__ = ["BearerChecks"]

log = logging.getLogger("auth_oidc")
_new_tuple = tuple.__new__


class BearerChecks:
    """``verify_bearer`` of one provider instance."""

    def __init__(
        self,
        config: OIDCConfig,
        mapper: ClaimMapper,
        grants: Grants,
        introspection: Introspection,
        issuer_keys: Callable[[], IssuerKeys],
        discovery: Discovery,
        monotonic: Callable[[], float],
    ) -> None:
        self.config = config
        self.mapper = mapper
        self.grants = grants
        self.introspection = introspection
        self._issuer_keys = issuer_keys
        # The keys of the current discovery document, held here while that document is fresh: the
        # hot path then reads two attributes and the clock instead of calling through the provider.
        self._discovery = discovery
        self._monotonic = monotonic
        self._keys: IssuerKeys | None = None
        # JWTs are checked offline unless every token is introspected: they skip the
        # introspection cache (whose lookup would hash the whole token).
        self._offline_jwts = config.introspect != "always"

    def verify(self, token: str) -> BearerIdentity | None:
        """See :meth:`auth_oidc.OIDCProvider.verify_bearer`."""
        jwt = token.count(".") == 2
        if jwt and self._offline_jwts:
            # The hot path, written out: a JWT checked offline whose identity is remembered.
            keys = self._keys
            discovery = self._discovery
            if keys is None or keys.metadata is not discovery.held or self._monotonic() >= discovery.fresh_until:
                keys = self._keys = self._issuer_keys()
            claims = keys.access_claims(token)
            if claims is None:
                return None
            identity = self.mapper.remembered(claims)
            if identity is None:
                return self._bearer_result(token, claims, keys.metadata, float(claims["exp"]), None, offline=True)
            return _result(identity, claims, float(claims["exp"]), None)
        cached = self.introspection.cached(token)  # one dict lookup and one clock read
        if cached is not None:
            return cached
        return self._verify_jwt(token) if jwt else self._verify_opaque(token)

    def _verify_jwt(self, token: str) -> BearerIdentity | None:
        keys = self._issuer_keys()
        claims = keys.access_claims(token)
        if claims is None:
            return None
        cache_until: float | None = None
        if self.config.introspect == "always":
            answer = self._introspect(token, keys)
            if answer is None:
                raise InvalidToken("token is no longer active")
            cache_until = self.introspection.deadlines(answer)[1]
        result = self._bearer_result(token, claims, keys.metadata, float(claims["exp"]), cache_until, offline=True)
        if cache_until is not None:
            self.introspection.remember(token, result)
        return result

    def _verify_opaque(self, token: str) -> BearerIdentity | None:
        if self.config.introspect == "never":
            return None
        keys = self._issuer_keys()
        answer = self._introspect(token, keys)
        if answer is None:
            return None
        expires_at, cache_until = self.introspection.deadlines(answer)
        result = self._bearer_result(token, answer, keys.metadata, expires_at, cache_until)
        self.introspection.remember(token, result)
        return result

    def _introspect(self, token: str, keys: IssuerKeys) -> dict[str, Any] | None:
        """The checked introspection answer; ``None`` without an endpoint or for an inactive token."""
        endpoint = self.config.token_info_uri or keys.metadata.introspection_endpoint
        if endpoint is None:
            return None
        return self.introspection.ask(
            token, endpoint, issuer=keys.metadata.issuer, check_client=keys.access.check_client
        )

    def _bearer_result(
        self,
        token: str,
        claims: dict[str, Any],
        metadata: Metadata,
        expires_at: float,
        cache_until: float | None,
        *,
        offline: bool = False,
    ) -> BearerIdentity:
        # A remembered identity had a login, so an offline JWT with the same claims needs no userinfo.
        identity = self.mapper.remembered(claims) if offline else None
        if identity is None:
            claims = self._with_userinfo(token, claims, metadata, offline=offline)
            identity = self.mapper.identity(claims)
        return _result(identity, claims, expires_at, cache_until)

    def _with_userinfo(
        self, token: str, claims: dict[str, Any], metadata: Metadata, *, offline: bool
    ) -> dict[str, Any]:
        """*claims*, completed by the userinfo endpoint when they lack what the mapping needs.

        A JWT checked offline asks (``auto``) only when it names no login: asking because its
        groups are absent would cost an HTTP call per request. Introspected tokens are cached,
        so they may ask for the groups too.
        """
        if self.config.userinfo == "never" or not metadata.userinfo_endpoint:
            return claims
        if not (self.mapper.login_of(claims) is None if offline else self.mapper.lacks_claims(claims)):
            return claims
        try:
            return merge_userinfo(claims, self.grants.userinfo(metadata.userinfo_endpoint, token))
        except InvalidToken:
            log.debug("userinfo refused a bearer token; going on with its own claims")
            return claims


def _result(identity: Identity, claims: dict[str, Any], expires_at: float, cache_until: float | None) -> BearerIdentity:
    sid, jti, iat = claims.get("sid"), claims.get("jti"), claims.get("iat")
    # The named tuple built by tuple.__new__ (as its own _make does): every field is given, in
    # order, so its generated __new__ (a Python call per token) has nothing to add.
    return _new_tuple(
        BearerIdentity,
        (
            identity,
            expires_at,
            sid if type(sid) is str else "",
            jti if type(jti) is str else "",
            float(iat) if type(iat) is int or type(iat) is float else 0.0,
            claims,
            cache_until,
        ),
    )
