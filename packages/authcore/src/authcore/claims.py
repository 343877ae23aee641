"""The claims of an access token: written in one place, read back in one place.

:func:`access_claims` lays out what a login puts in a token; :func:`verified_token` turns
the claims of a verified token back into a :class:`~authcore.models.VerifiedToken`. The
claims both sides agree on, and that no plugin may set, are :data:`RESERVED_CLAIMS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import AuthError, InvalidToken
from .models import Identity, VerifiedToken

__all__ = ["RESERVED_CLAIMS", "SESSION_CLAIMS", "SIGNING_CLAIMS", "access_claims", "verified_token"]

#: Set by :meth:`TokenService.issue <authcore.tokens.TokenService.issue>` when it signs.
SIGNING_CLAIMS: Final = frozenset({"iss", "aud", "iat", "nbf", "jti"})
#: Set by :func:`access_claims` from the identity and its session.
SESSION_CLAIMS: Final = frozenset({"sub", "sid", "exp", "username", "groups", "permissions", "provider"})
#: Every claim authcore sets itself: the token service refuses a caller's, the login refuses a plugin's.
RESERVED_CLAIMS: Final = SIGNING_CLAIMS | SESSION_CLAIMS

_ONLY_STR: Final = frozenset({str})


def access_claims(
    identity: Identity, session_id: str, expires_at: float, extra: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The claims of an access token for *identity* in session *session_id*, before signing.

    *extra* are the plugins' contributions (``authcore_token_claims``), applied in order, a
    later one winning over an earlier one. A contribution naming a reserved claim is refused
    with :class:`~authcore.errors.AuthError`: a plugin never overrides who the token is for,
    its session, its lifetime or its permissions. The signing claims are added by the token service.
    """
    claims: dict[str, Any] = {}
    for contribution in extra:
        if contribution:
            clash = RESERVED_CLAIMS.intersection(contribution)
            if clash:
                raise AuthError(f"a plugin tried to set reserved token claims: {', '.join(sorted(clash))}")
            claims.update(contribution)
    claims.update(
        sub=identity.login,
        sid=session_id,
        exp=int(expires_at),
        username=identity.login,
        groups=list(identity.groups),
        permissions=list(identity.permissions),
        provider=identity.provider,
    )
    return claims


def verified_token(claims: dict[str, Any]) -> VerifiedToken:
    """The :class:`~authcore.models.VerifiedToken` of claims :meth:`TokenService.decode` returned.

    ``sub``, ``sid``, ``jti`` and the times are already checked by the decoder; this checks
    the shape of what :func:`access_claims` added (:class:`~authcore.errors.InvalidToken` if wrong).
    """
    # On every uncached verification: type() checks and map() instead of generator
    # expressions keep this to about a microsecond.
    permissions = claims.get("permissions", ())
    groups = claims.get("groups", ())
    provider = claims.get("provider", "")
    if (
        type(permissions) is not list
        or type(groups) is not list
        or type(provider) is not str
        or not _ONLY_STR.issuperset(map(type, permissions))
        or not _ONLY_STR.issuperset(map(type, groups))
    ):
        raise InvalidToken("token claims have the wrong shape")
    return VerifiedToken(
        claims["sub"],
        provider,
        frozenset(permissions),
        tuple(groups),
        claims["sid"],
        claims["jti"],
        float(claims["iat"]),
        float(claims["exp"]),
        claims,  # decode() built this dict for the caller alone
    )
