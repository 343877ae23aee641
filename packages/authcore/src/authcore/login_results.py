"""The end of every login: the session stored, then its access token signed.

:class:`LoginResults` is :class:`~authcore.manager.AuthManager`'s part that turns a checked
identity into a session and its tokens (:meth:`AuthManager.login_with`, a second factor's
:meth:`~authcore.second_factor.SecondFactorLogins.complete_login`), and signs the tokens of a
refresh (:meth:`~LoginResults._result`).

The order is the point. The token's claims are worked out first (a plugin's refusal leaves
nothing behind), the session is stored next, the signature comes last: on the Redis store
on an event loop the new session goes to Redis at once and Redis's work on it overlaps the
signing (``docs/design.md``, 2026-11-30). Should the signing fail, the session just stored
is ended again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from .claims import access_claims
from .errors import AuthError
from .logins import call_hook, snapshot
from .models import Identity, LoginResult

if TYPE_CHECKING:
    import pluggy

    from .config import AuthcoreConfig
    from .sessions import SessionRecord, Sessions
    from .tokens import TokenService

__all__ = ["LoginResults", "StartedLogin"]


class StartedLogin(NamedTuple):
    """A login whose session is stored (on the Redis store on an event loop: sent) and whose
    access token is not signed yet (:meth:`AuthManager.start_login`)."""

    #: Who logged in (the provider's answer, with the permissions worked out).
    identity: Identity
    #: Signs the access token: the login's result. Should that fail, the session is ended again.
    sign: Callable[[], LoginResult]
    #: Ends the session again, for a caller whose own step after :attr:`sign` failed (the web
    #: layer's answer made of the result): nothing holds its tokens. Logged, never raised.
    discard: Callable[[], None]


class LoginResults:
    """Sessions started and tokens signed for :class:`~authcore.manager.AuthManager`."""

    if TYPE_CHECKING:  # provided by AuthManager
        config: AuthcoreConfig
        plugins: pluggy.PluginManager
        _sessions: Sessions
        _tokens: TokenService

    def _started(
        self, provider: str, identity: Identity, granted: tuple[str, ...], lifetime: float | None, attempted: str | None
    ) -> StartedLogin:
        """A checked login's session stored, its access token to sign (the module's order)."""
        new = self._sessions.prepare(
            login=identity.login, provider=provider, identity=snapshot(identity, granted), lifetime=lifetime
        )
        # A token's session has no refresh token (see authcore.session_control).
        refresh_token = "" if lifetime is not None else new.refresh_token
        try:
            unsigned = self._unsigned(identity, new.record, refresh_token, whole_session=lifetime is not None)
        except Exception as exc:
            self._failed(provider, attempted, exc)
            raise
        self._sessions.keep(new)

        def sign() -> LoginResult:
            try:
                result = unsigned()
            except Exception as exc:
                self._sessions.discard(new)
                self._failed(provider, attempted, exc)
                raise
            call_hook(self.plugins, "authcore_login_succeeded", identity=identity, provider=provider)
            return result

        return StartedLogin(identity, sign, partial(self._sessions.discard, new))

    def _failed(self, provider: str, attempted: str | None, exc: Exception) -> None:
        error = exc if isinstance(exc, AuthError) else AuthError("the access token could not be issued")
        self.plugins.hook.authcore_login_failed(provider=provider, login=attempted, error=error)

    def _result(
        self, identity: Identity, record: SessionRecord, refresh_token: str, *, whole_session: bool = False
    ) -> LoginResult:
        """The login result of *record*'s session, its access token signed."""
        return self._unsigned(identity, record, refresh_token, whole_session=whole_session)()

    def _unsigned(
        self, identity: Identity, record: SessionRecord, refresh_token: str, *, whole_session: bool
    ) -> Callable[[], LoginResult]:
        """:meth:`_result` but for the signature: the claims worked out now (a plugin naming a
        reserved claim raises here), the token signed when the callable returned is called."""
        now = time.time()
        # A token's session (whole_session) hands out one access token that lives as long as it.
        expires_at = record.absolute_expires_at
        if not whole_session:
            expires_at = min(now + self.config.tokens.access_ttl, expires_at)
        # pluggy returns the last registered plugin's claims first: the first registered applies first.
        extra = reversed(call_hook(self.plugins, "authcore_token_claims", identity=identity))
        claims = access_claims(identity, record.session_id, expires_at, extra)

        def sign() -> LoginResult:
            return LoginResult(
                identity=identity,
                access_token=self._tokens.issue(claims, now=now),
                refresh_token=refresh_token,
                expires_at=int(expires_at),
                expires_in=max(0, int(expires_at - now)),
                session_id=record.session_id,
            )

        return sign
