"""What an identity provider adds to our sessions and tokens, and what happens when it fails.

Providers with :class:`~authcore.capabilities.UpstreamSessions` keep a session of their own,
refreshed and ended with ours; providers with :class:`~authcore.capabilities.BearerTokens`
issue tokens that verify like ours. The manager decides *when* these run; this module holds
the policy of each call: which failure ends our session, which is only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .capabilities import BearerTokens, UpstreamSessions
from .errors import AuthError, InvalidToken, NotSupported
from .models import Identity, VerifiedToken
from .providers import Provider

__all__ = ["logout_upstream", "refresh_upstream", "verify_bearer"]

log = logging.getLogger("authcore")


def refresh_upstream(provider: Provider, identity: Identity) -> Identity:
    """*identity* as the identity provider sees it now; *identity* itself when nothing changed or it failed.

    Raises :class:`~authcore.errors.InvalidToken` when the identity provider ended its
    session: ours must end with it.
    """
    if not isinstance(provider, UpstreamSessions):
        return identity
    try:
        return provider.refresh_upstream(identity)
    except NotSupported:
        return identity
    except InvalidToken:
        raise
    except AuthError as exc:
        # The provider is down, say. The refresh token has already rotated, so failing
        # here would leave the client with a used token: keep the identity as it was and
        # try upstream again at the next refresh.
        log.warning("refresh at provider %r failed (%s); identity kept as it was", provider.name, exc.code)
        return identity


def logout_upstream(provider: Provider | None, identity: Identity) -> None:
    """End the identity provider's session of *identity*, if it keeps one; failures are logged only."""
    if not isinstance(provider, UpstreamSessions):
        return
    try:
        provider.logout_upstream(identity)
    except NotSupported:
        pass
    except AuthError as exc:  # our session is gone either way
        log.warning("logout at provider %r failed: %s", provider.name, exc.code)


def verify_bearer(
    providers: Iterable[BearerTokens], token: str, permissions_for: Callable[[Identity], tuple[str, ...]]
) -> tuple[VerifiedToken, float]:
    """Verify an identity provider's own token: the first provider that claims it decides.

    Returns the verified token and the time until which it may be cached. *permissions_for*
    works out the identity's permissions as for a login. Raises
    :class:`~authcore.errors.InvalidToken` when no provider claims the token.
    """
    for provider in providers:
        result = provider.verify_bearer(token)
        if result is None:
            continue
        identity = result.identity.model_copy(update={"provider": provider.name})
        verified = VerifiedToken(
            login=identity.login,
            provider=provider.name,
            permissions=frozenset(permissions_for(identity)),
            groups=identity.groups,
            session_id=result.session_id,
            token_id=result.token_id,
            issued_at=result.issued_at,
            expires_at=result.expires_at,
            claims=dict(result.claims),
        )
        until = result.expires_at if result.cache_until is None else min(result.cache_until, result.expires_at)
        return verified, until
    raise InvalidToken()
