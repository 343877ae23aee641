"""Single sign-on over the web: start (redirect to the identity provider) and callback, once for every adapter.

The state, nonce and PKCE verifier travel in a short-lived, signed, ``HttpOnly`` cookie
(:class:`~authcore.web.common.StateSigner`) scoped to the SSO paths, keyed by
``web.sso_state_secret``; without one, by the secret every instance agrees on through a shared
session store (Redis: :meth:`~authcore.sessions.shared.SharedState.agreed_secret`), else by a
random per-process key. A state is redeemed once (:class:`SingleUse`), on every instance that
shares the store. When that Redis is down, starting or finishing an SSO login answers 503.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from ..capabilities import SingleSignOn
from ..errors import AuthError, InvalidCredentials, InvalidToken, NotSupported
from ..models import Identity, LoginResult, VerifiedToken
from ..sessions.shared import SharedState
from .common import SingleUse, StateSigner, login_payload, safe_next
from .http import SetCookie, WebRequest, WebResponse
from .session import CookieSessions

__all__ = ["SSO_STATE_SECRET", "SingleSignOnFlow"]

#: The name of the agreed secret (:meth:`SharedState.agreed_secret`) signing SSO state cookies.
SSO_STATE_SECRET = "sso-state"


class SingleSignOnFlow:
    """The two SSO endpoints and the sign-out URL of an SSO user."""

    def __init__(self, sessions: CookieSessions, path: Callable[..., str], shared: SharedState | None = None) -> None:
        """*shared*: the state every instance shares (the Redis session store), or ``None`` for one process."""
        self.sessions = sessions
        self.path = path  # WebCore.path: the route table's paths, web.paths applied
        self.manager = sessions.manager
        self.settings = sessions.settings
        key = self.settings.state_key
        if key is None and shared is not None:
            # No configured secret: the one every instance agrees on, so any instance takes the callback.
            agreed = shared
            self.signer = StateSigner(key_source=lambda: agreed.agreed_secret(SSO_STATE_SECRET))
        else:
            self.signer = StateSigner(key)
        # SSO states already redeemed, so a state cookie works once: the signature alone keeps
        # it valid for sso_state_ttl. Claimed in the shared state (on every instance), else per
        # process and bounded.
        self.used_states = SingleUse(self.settings.sso_state_ttl, state=shared)

    def providers(self) -> list[str]:
        """Names of enabled providers with the single sign-on capability."""
        return [name for name, p in self.manager.providers.items() if isinstance(p, SingleSignOn)]

    def _provider(self, name: str) -> SingleSignOn:
        provider = self.manager.provider(name)
        if not isinstance(provider, SingleSignOn):
            raise NotSupported(name, "single sign-on")
        return provider

    def callback_url(self, request: WebRequest, provider: str) -> str:
        """The redirect URI registered at the identity provider for *provider*."""
        base = self.settings.public_url or request.base_url
        return base.rstrip("/") + self.path("sso_callback", provider=provider)

    def _cookie(self, request: WebRequest, provider: str, value: str | None) -> SetCookie:
        ttl = int(self.settings.sso_state_ttl)
        return SetCookie(
            self.settings.cookies.sso,
            value,
            ttl if value is not None else None,
            httponly=True,
            secure=self.settings.cookie_secure(request.hostname),
            samesite="lax",  # must come back on the identity provider's top-level redirect
            # The state cookie goes back only to the callback (web.paths may move it anywhere).
            path=self.path("sso_callback", provider=provider),
        )

    def start(self, request: WebRequest, name: str) -> WebResponse:
        """Send the browser to the identity provider (PKCE S256, state, nonce)."""
        pending = self._provider(name).authorization_request(self.callback_url(request, name))
        state = {
            "p": name,
            "s": pending.state,
            "n": pending.nonce,
            "v": pending.code_verifier,
            "r": pending.redirect_uri,
            "x": safe_next(request.query.get("next")),
        }
        response = WebResponse.redirect(pending.url, 302)
        response.cookies.append(self._cookie(request, name, self.signer.dumps(state, self.settings.sso_state_ttl)))
        return response

    def callback(self, request: WebRequest, name: str) -> WebResponse:
        """Take the authorization code back: check state, log in, start the session; errors clear the state cookie."""
        try:
            response = self._callback(request, name)
        except AuthError as exc:
            response = WebResponse.error(exc)
        response.cookies.append(self._cookie(request, name, None))
        return response

    def _callback(self, request: WebRequest, name: str) -> WebResponse:
        self._provider(name)
        query = request.query
        if query.get("error"):
            raise InvalidCredentials("single sign-on refused")
        code, state = query.get("code"), query.get("state")
        if not code or not state:
            raise InvalidCredentials("single sign-on: code and state required")
        pending = self.signer.loads(request.cookies.get(self.settings.cookies.sso))
        if pending.get("p") != name or not hmac.compare_digest(str(pending.get("s", "")).encode(), state.encode()):
            raise InvalidToken("single sign-on: state mismatch")
        self.used_states.redeem(state)
        result: LoginResult = self.manager.login(
            name,
            code=code,
            redirect_uri=pending["r"],
            code_verifier=pending["v"],
            nonce=pending["n"],
            issuer=query.get("iss") or None,  # RFC 9207: the provider checks it is its issuer
        )
        if not self.settings.cookie_auth:
            return WebResponse(json=login_payload(result))
        response = WebResponse.redirect(safe_next(pending.get("x")), 303)
        self.sessions.start(request, response, result)
        return response

    def logout_url(self, user: VerifiedToken, post_logout_redirect_uri: str | None) -> str | None:
        """Where to send the browser to end the identity provider's session, if *user* came by SSO."""
        provider = self.manager.providers.get(user.provider)
        if not isinstance(provider, SingleSignOn):
            return None
        identity = Identity(login=user.login, provider=user.provider, groups=user.groups)
        try:
            return provider.logout_url(identity, post_logout_redirect_uri)
        except NotSupported:
            return None
