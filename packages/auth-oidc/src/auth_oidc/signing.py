"""The issuer's keys and the two JWT verifiers (access tokens, ID tokens), built from its discovery document.

Algorithms: a token is accepted only with an algorithm that is configured (``algorithms``)
*and* that the issuer publishes in its discovery document, or that the very key it names
pins (``alg`` of the JWK). Algorithms outside the configured ones and those published or
pinned (by the keys held when the document was read) are refused before the signature is
looked at; one that only another key pins is refused after.

Access or ID token: a JWT whose header says ``typ: at+jwt`` (RFC 9068) is an access token.
An untyped one (``access_token_type: auto``) must look like one: it names a client or a
scope (``client_id``, ``azp``, ``cid``, ``appid``, ``scope`` or ``scp``: RFC 9068, Keycloak,
Okta, Entra and Auth0 access tokens each carry one, an ID token needs none) and carries
no ``nonce``, ``at_hash`` or ``c_hash`` and no ``typ`` claim other than ``Bearer``
(Keycloak's ``ID`` and ``Refresh``). Otherwise an ID token, whose ``aud`` is our client,
would pass the audience check as an access token. ``access_token_type: at+jwt`` accepts
only typed access tokens. The ID-token verifier refuses ``at+jwt`` tokens
(:meth:`authcore.jose.JWTVerifier.id_token_claims`).
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from authcore import InvalidToken, ProviderUnavailable
from authcore.jose import ACCESS_HEADER_TYPE, JWTVerifier, KeyCache, b64url_decode, parse_jwks

from .config import OIDCConfig
from .discovery import Metadata
from .http import IssuerHTTP
from .presets import ClaimRules

__all__ = ["IssuerKeys", "effective_algorithms"]

log = logging.getLogger("auth_oidc")

_ID_TOKEN_CLAIMS: Final = ("nonce", "at_hash", "c_hash")
#: Claims by which an untyped access token names the client or scope it was issued for.
_ACCESS_TOKEN_CLAIMS: Final = ("client_id", "azp", "cid", "appid", "scope", "scp")


def effective_algorithms(configured: tuple[str, ...], published: frozenset[str], jwks: Any) -> frozenset[str]:
    """Configured algorithms that the issuer publishes or that a key of *jwks* (a document, or ``None``) pins."""
    pinned: set[str] = set()
    entries = jwks.get("keys") if type(jwks) is dict else None
    if type(entries) is list:
        pinned.update(k["alg"] for k in entries if type(k) is dict and type(k.get("alg")) is str)
    return frozenset(configured) & (published | pinned)


def _header(segment: str) -> dict[str, Any]:
    """The JOSE header of a token whose signature was checked (so it parses)."""
    try:
        header = json.loads(b64url_decode(segment))
    except (ValueError, binascii.Error):
        return {}
    return header if type(header) is dict else {}


class IssuerKeys:
    """The keys and verifiers of one discovery document's issuer (rebuilt when the document changes)."""

    def __init__(
        self,
        metadata: Metadata,
        http: IssuerHTTP,
        config: OIDCConfig,
        rules: ClaimRules,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata = metadata
        self._require_at_jwt = config.access_token_type == "at+jwt"
        jwks_uri = metadata.jwks_uri
        # Read the keys once now, for the algorithms they pin; the cache starts with this document.
        try:
            first: Any = http.get_json(jwks_uri)
        except ProviderUnavailable:
            first = None
        self.algorithms = effective_algorithms(config.algorithms, metadata.published_algorithms, first)
        self._published = metadata.published_algorithms
        if not self.algorithms:
            published = ", ".join(sorted(metadata.published_algorithms)) or "none"
            raise ProviderUnavailable(
                f"provider {http.name!r}: no signature algorithm in common with the issuer "
                f"(configured {', '.join(config.algorithms)}; published {published})"
            )
        primed = [first] if first is not None else []

        def fetch() -> Any:
            return primed.pop() if primed else http.get_json(jwks_uri)

        self.keys = KeyCache(
            fetch,
            algorithms=self.algorithms,
            ttl=config.jwks_cache_ttl,
            cooldown=config.jwks_refetch_cooldown,
            max_stale=config.jwks_max_stale,
            clock=monotonic,
            label=f"the keys of {metadata.issuer}",
        )
        self.access = JWTVerifier(
            issuer=metadata.issuer,
            keys=self.keys,
            clients=frozenset({config.client_id, *config.trusted_clients}),
            audiences=frozenset(rules.audience),
            client_check=rules.client_check,
            leeway=config.leeway,
            clock=clock,
        )
        # ID tokens name our client in aud (and azp): id_token_claims checks that itself.
        self.id = JWTVerifier(
            issuer=metadata.issuer,
            keys=self.keys,
            clients=frozenset({config.client_id}),
            audiences=frozenset({config.client_id}),
            client_check="aud",
            leeway=config.leeway,
            clock=clock,
        )

    def access_claims(self, token: str, *, client: bool = True) -> dict[str, Any] | None:
        """The verified claims of the access token *token*; ``None`` when it is not a JWT of this issuer.

        Raises :class:`~authcore.InvalidToken` for one of ours that fails a check (an ID token
        included) and :class:`~authcore.ProviderUnavailable` when the keys cannot be had.
        """
        verifier = self.access
        checked = verifier.verified(token)
        if checked is None:
            return None
        claims, header_typ, alg = checked
        if alg not in self._published:
            self._check_pinned(token.split(".", 1)[0], alg)
        if header_typ != ACCESS_HEADER_TYPE:
            if self._require_at_jwt:
                raise InvalidToken("not an access token (the header must say typ at+jwt)")
            typ = claims.get("typ")
            if (
                (typ is not None and (type(typ) is not str or typ.lower() != "bearer"))
                or any(name in claims for name in _ID_TOKEN_CLAIMS)
                or not any(name in claims for name in _ACCESS_TOKEN_CLAIMS)
            ):
                raise InvalidToken("not an access token")
        if client:
            verifier.check_client(claims)
        return claims

    def id_claims(self, token: str, *, client_id: str, nonce: str | None, access_token: str | None) -> dict[str, Any]:
        """The verified claims of an ID token (nonce, ``at_hash``, audience); :class:`~authcore.InvalidToken` else."""
        claims = self.id.id_token_claims(token, client_id=client_id, nonce=nonce, access_token=access_token)
        header = _header(token.split(".", 1)[0])
        if header.get("alg") not in self._published:
            self._check_pinned(token.split(".", 1)[0], str(header.get("alg")))
        typ = claims.get("typ")
        if typ is not None and (type(typ) is not str or typ.lower() != "id"):
            raise InvalidToken("not an ID token")
        return claims

    def _check_pinned(self, header_segment: str, alg: str) -> None:
        """A token signed with an algorithm the issuer does not publish passes only with a key that pins it."""
        kid = _header(header_segment).get("kid")
        key = self.keys.get(kid) if type(kid) is str else None
        if key is None or key.jwk.get("alg") != alg:
            raise InvalidToken("token algorithm not accepted")

    def key_count(self) -> int:
        """How many keys are held."""
        return len(self.keys.kids)

    def check(self, http: IssuerHTTP) -> int:
        """Fetch the keys (health), without touching the cache: how many usable signature keys there are.

        Raises :class:`~authcore.ProviderUnavailable` when they cannot be fetched or none is usable.
        """
        try:
            keys = parse_jwks(http.get_json(self.metadata.jwks_uri), self.algorithms)
        except ValueError as exc:
            raise ProviderUnavailable(f"the keys of {self.metadata.issuer}: {exc}") from None
        if not keys:
            raise ProviderUnavailable(f"the keys of {self.metadata.issuer}: no usable signature key")
        return len(keys)
