"""The cookie session, written once: start, resume (sliding), CSRF, end. Storage is pluggable.

One model for every adapter. A session is a :class:`SessionState`: the access and refresh
tokens of one login, the CSRF token bound to it, and (where the storage can keep it tamper
proof) when it was last used. The logic lives in :class:`CookieSessions`; where the state is
kept is a :class:`SessionStorage`:

* :class:`CookieStorage` (the default; FastAPI and the standalone service): ``HttpOnly``
  access and refresh cookies, and a CSRF cookie scripts read. The CSRF value is
  :func:`~authcore.web.common.csrf_for_session` of the session token, so it needs no server
  key and a planted cookie matches no session. The idle limit is the cookies' ``Max-Age`` and
  the core's ``sessions.idle_timeout`` on the refresh token.
* Flask's signed session (:mod:`authcore.web.flask`, MXCuBE's model): the same state inside
  Flask's signed cookie, whose timestamp also enforces the idle limit server-side.

The absolute lifetime is always the core's ``sessions.max_lifetime``: resuming an expired
access token refreshes through the core, which refuses once the session is too old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Protocol

from ..errors import AuthError, Forbidden, InvalidToken, NotAuthenticated, TokenExpired
from ..manager import AuthManager
from ..models import LoginResult, VerifiedToken
from .common import CSRF_HEADER, csrf_for_session, csrf_matches, expected_csrf
from .http import SetCookie, WebRequest, WebResponse
from .settings import WebSettings

#: Seconds between two server-side slides of one session (the granularity of the idle clock).
_SLIDE_GRANULARITY = 1.0
#: Sessions remembered as slid; past this the memory starts over (one extra write per session).
_SLID_BOUND = 10_000

__all__ = ["CookieSessions", "CookieStorage", "SessionState", "SessionStorage"]


@dataclass(frozen=True)
class SessionState:
    """One cookie session: its tokens, its CSRF token and when it was last used (``None``: unknown)."""

    access: str
    refresh: str
    csrf: str
    seen: float | None = None

    def __repr__(self) -> str:  # never a token in a repr
        return f"SessionState(seen={self.seen!r})"


class SessionStorage(Protocol):
    """Where an adapter keeps the :class:`SessionState` of a request."""

    #: Whether a resumed session may be written back while authenticating any request (sliding).
    slides: bool

    def load(self, request: WebRequest) -> SessionState | None:
        """The request's session, ``None`` when it has none."""

    def save(self, request: WebRequest, response: WebResponse | None, state: SessionState) -> None:
        """Keep *state* for the next requests (in *response*'s cookies, where there is one)."""

    def clear(self, request: WebRequest, response: WebResponse | None) -> None:
        """Forget the request's session."""


class CookieStorage:
    """The session in three cookies: access and refresh (``HttpOnly``), CSRF (readable by scripts)."""

    slides = False  # a dependency cannot set cookies on the host's response

    def __init__(self, settings: WebSettings, lifetime: float) -> None:
        self.settings = settings
        self.lifetime = int(lifetime)

    def load(self, request: WebRequest) -> SessionState | None:
        """The tokens of the cookies; the CSRF value is derived from them, never read from a cookie."""
        names = self.settings.cookies
        access, refresh = request.cookies.get(names.access, ""), request.cookies.get(names.refresh, "")
        if not (access or refresh):
            return None
        return SessionState(access, refresh, expected_csrf(request.cookies, names) or "")

    def cookies(self, request: WebRequest, state: SessionState | None) -> list[SetCookie]:
        """The ``Set-Cookie`` list that keeps (or, for ``None``, clears) *state*."""
        names = self.settings.cookies
        secure = self.settings.cookie_secure(request.hostname)
        values = (
            (state.access, state.refresh, csrf_for_session(state.access)) if state is not None else (None, None, None)
        )
        age = self.lifetime if state is not None else None
        return [
            SetCookie(name, value, age, name != names.csrf, secure, names.samesite, names.path, names.domain)
            for name, value in zip((names.access, names.refresh, names.csrf), values, strict=True)
        ]

    def save(self, request: WebRequest, response: WebResponse | None, state: SessionState) -> None:
        """Set the three cookies on *response*."""
        if response is not None:
            response.cookies.extend(self.cookies(request, state))

    def clear(self, request: WebRequest, response: WebResponse | None) -> None:
        """Delete the three cookies."""
        if response is not None:
            response.cookies.extend(self.cookies(request, None))


class CookieSessions:
    """Start, resume, check and end cookie sessions, over a :class:`SessionStorage`."""

    def __init__(self, manager: AuthManager, settings: WebSettings, storage: SessionStorage | None = None) -> None:
        self.manager = manager
        self.settings = settings
        self.idle_timeout = float(
            settings.idle_timeout if settings.idle_timeout is not None else manager.config.sessions.idle_timeout
        )
        self.storage: SessionStorage = storage if storage is not None else CookieStorage(settings, self.idle_timeout)
        # When each session was last slid server-side by this process: one store write per
        # session and second at most, however often a front end polls.
        self._slid: dict[str, float] = {}

    def start(self, request: WebRequest, response: WebResponse | None, result: LoginResult) -> str:
        """Keep a login's tokens as the session; return its CSRF token (bound to the session)."""
        state = SessionState(result.access_token, result.refresh_token, csrf_for_session(result.access_token))
        self.storage.save(request, response, replace(state, seen=time.time()))
        return state.csrf

    def load(self, request: WebRequest) -> SessionState:
        """The request's live session: :class:`NotAuthenticated` without one, expired when idle too long."""
        state = self.storage.load(request)
        if state is None:
            raise NotAuthenticated()
        if state.seen is not None and time.time() - state.seen > self.idle_timeout:
            self.storage.clear(request, None)
            raise TokenExpired("session expired")
        return state

    @staticmethod
    def check_csrf(request: WebRequest, state: SessionState) -> None:
        """:class:`Forbidden` unless the request echoes the session's CSRF token in ``X-CSRF-Token``."""
        if not csrf_matches(state.csrf, request.header(CSRF_HEADER)):
            raise Forbidden("CSRF token missing or wrong")

    def user(
        self,
        request: WebRequest,
        response: WebResponse | None,
        *,
        check_csrf: bool,
        slide: bool,
        refresh_early: bool = False,
    ) -> VerifiedToken:
        """The verified user of the request's session.

        With *slide*, an expired access token (or, with *refresh_early*, one past half its life)
        is refreshed through the core and the session written back, its idle clock reset. The
        session's CSRF token after this (it may have changed) is left in ``request.memo["csrf"]``.
        """
        state = self.load(request)
        if check_csrf:
            self.check_csrf(request, state)
        manager = self.manager
        try:
            user = manager.verify(state.access)
            if refresh_early and time.time() > (user.issued_at + user.expires_at) / 2:
                raise TokenExpired()
        except TokenExpired:
            if not slide:
                raise
            try:
                result = manager.refresh(state.refresh)  # the core enforces the absolute lifetime
            except AuthError:
                self.storage.clear(request, response)
                raise
            # CookieStorage derives the CSRF token from the access token: it changes with it.
            csrf = csrf_for_session(result.access_token) if isinstance(self.storage, CookieStorage) else state.csrf
            state = replace(state, access=result.access_token, refresh=result.refresh_token, csrf=csrf)
            user = manager.verify(result.access_token)
        except InvalidToken:
            self.storage.clear(request, response)
            raise
        # Every request a session authenticates is activity: the server-side session slides even
        # where the cookie cannot be rewritten (a FastAPI dependency), as Flask's
        # SESSION_REFRESH_EACH_REQUEST slides its cookie.
        self._slide_server_side(user)
        if slide:
            self.storage.save(request, response, replace(state, seen=time.time()))
        request.memo["csrf"] = state.csrf  # the session's CSRF token now, for replies that show it
        return user

    def _slide_server_side(self, user: VerifiedToken) -> None:
        """Push the core session's idle expiry back, as the cookie's is: an authenticated request
        is activity even when its access token is still fresh (a refresh slides it anyway)."""
        now = time.time()
        if now - self._slid.get(user.session_id, float("-inf")) < _SLIDE_GRANULARITY:
            return
        if len(self._slid) >= _SLID_BOUND:
            self._slid.clear()
        self._slid[user.session_id] = now
        self.manager.keep_alive(user)

    def end(self, state: SessionState) -> VerifiedToken | None:
        """End the session; return its user, ``None`` if none was live.

        The access token is tried first; when it has expired (``access_ttl`` is much shorter
        than the idle lifetime) or is garbage, the refresh token is traded for a fresh access
        token that is then logged out, so the server-side session (and a refresh token someone
        may have copied) always ends. The caller checks CSRF.
        """
        manager = self.manager
        if state.access:
            try:
                user = manager.verify(state.access)
                manager.logout(state.access)
                return user
            except AuthError:
                pass
        if state.refresh:
            try:
                result = manager.refresh(state.refresh)
                user = manager.verify(result.access_token)
                manager.logout(result.access_token)
                return user
            except AuthError:
                pass
        return None

    def resume_quietly(self, request: WebRequest, response: WebResponse) -> tuple[VerifiedToken | None, str | None]:
        """For pages: ``(user, CSRF token)`` of the session, refreshing an expired access token
        into *response*'s cookies; ``(None, None)`` without a live session. Never raises."""
        state = self.storage.load(request)
        if state is None:
            return None, None
        try:
            return self.manager.verify(state.access), state.csrf or None
        except AuthError:
            pass
        try:
            result = self.manager.refresh(state.refresh)
            user = self.manager.verify(result.access_token)
        except AuthError:
            return None, None
        return user, self.start(request, response, result)
