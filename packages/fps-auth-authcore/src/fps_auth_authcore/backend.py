"""``AuthcoreAuth``: Jupyverse's ``Auth`` API (``current_user``, ``websocket_auth``, ``update_user``) on authcore.

Permissions: Jupyverse asks ``{resource: [actions]}``; each pair is the authcore permission
``resource:action`` (``{"contents": ["read"]}`` → ``contents:read``), so a granted ``contents:*``
allows every action on contents and ``*`` allows everything. ``current_user`` needs *every*
asked permission (403 otherwise, 401 without a session); ``websocket_auth`` needs *at least one*
(the socket is closed with 1008 otherwise) and hands back the ones held.

When every configured provider is ``noauth`` (auth-noauth) there is no sign-in at all, as with
fps-noauth: every request is that provider's one user, and websockets are always accepted.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket
from jupyverse_api import Router
from jupyverse_api.app import App
from jupyverse_api.exceptions import RedirectException
from jupyverse_auth import Auth, User
from starlette.concurrency import run_in_threadpool

from authcore import AuthManager, VerifiedToken
from authcore import permissions as _permissions
from authcore.errors import AuthError, BadRequest
from authcore.web.fastapi import AuthHTTPException, FastAPIAuth
from authcore.web.settings import WebSettings, settings_from_config

from .config import AuthcoreAuthConfig
from .pages import JupyterLabHeaders, login_page_router
from .profiles import ProfileStore, claimed_name, jupyverse_user
from .refresh import SessionRefresh

__all__ = ["AuthcoreAuth", "Caller", "web_settings"]

#: Jupyverse's permissions: ``{"contents": ["read", "write"]}``.
JupyversePermissions = dict[str, list[str]] | None
#: Who is calling: ``(provider, login, display name from the provider, granted permissions)``.
Caller = tuple[str, str, str | None, frozenset[str]]
#: JupyterLab reads this cookie and echoes it in ``X-XSRFToken`` (see :class:`.pages.JupyterLabHeaders`).
JUPYTERLAB_XSRF_COOKIE = "_xsrf"


def web_settings(manager: AuthManager) -> WebSettings:
    """The ``web:`` section, with the defaults a browser front end needs.

    Cookie sessions and login throttling are on unless the section turns them off; the CSRF
    cookie is named ``_xsrf`` (JupyterLab's) unless the section names it.
    """
    settings = settings_from_config(manager.config.web, default_cookie_session=True, default_throttle=True)
    if "csrf" not in manager.config.web.cookies.model_fields_set:
        settings = replace(settings, cookies=replace(settings.cookies, csrf=JUPYTERLAB_XSRF_COOKIE))
    return settings


def _is_browser_navigation(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


class AuthcoreAuth(Auth, Router):
    """Jupyverse's auth plugin API backed by an :class:`~authcore.AuthManager`.

    Routes: authcore's (``POST /auth/login``, ``/auth/logout``, ``/auth/refresh``, ``GET /auth/me``,
    ``/auth/config``, ...), ``GET``/``PATCH /api/me`` (JupyterLab's identity), and the sign-in page.
    """

    def __init__(self, app: App, manager: AuthManager, config: AuthcoreAuthConfig, profiles: ProfileStore) -> None:
        super().__init__(app)
        self.manager = manager
        self.config = config
        self.profiles = profiles
        self.web = FastAPIAuth(manager, web_settings(manager))
        self._anonymous = self._anonymous_caller(manager)
        self._include(self.web.router)
        self._include(self._me_router())
        if self._anonymous is None and config.login_url == "/login" and self.web.settings.cookie_auth:
            self._include(login_page_router(self.web.core))
        self.add_middleware(JupyterLabHeaders)
        if self._anonymous is None and self.web.settings.cookie_auth:
            self.add_middleware(SessionRefresh, core=self.web.core)

    def _include(self, router: APIRouter) -> None:
        # Jupyverse's App refuses a path another plugin already serves (fps-login's /login, say).
        self.include_router(router)  # type: ignore[no-untyped-call]

    @staticmethod
    def _anonymous_caller(manager: AuthManager) -> Caller | None:
        """With only noauth providers: their one user, logged in once (fps-noauth's behaviour)."""
        providers = list(manager.providers.values())
        if not providers or any(provider.type != "noauth" for provider in providers):
            return None
        identity = manager.login(providers[0].name).identity
        return providers[0].name, identity.login, identity.display_name, frozenset(identity.permissions)

    # ----------------------------------------------------------------- the caller

    async def caller(self, request: Request, permissions: JupyversePermissions = None) -> Caller:
        """Who sent *request*, holding every one of *permissions*; raises ``AuthHTTPException`` (401, 403).

        A browser navigation without a session is redirected to the sign-in page instead.
        """
        try:
            if self._anonymous is not None:
                caller = self._anonymous
            else:
                token: VerifiedToken = await self.web.authenticate(request)
                caller = (token.provider, token.login, claimed_name(token), token.permissions)
            _permissions.require(caller[3], permissions)
        except AuthError as exc:
            if exc.status_code == 401 and self.config.login_url and _is_browser_navigation(request):
                raise RedirectException(self.config.login_url) from None
            raise AuthHTTPException(exc) from None
        return caller

    async def user(self, caller: Caller) -> User:
        """Jupyverse's ``User`` of *caller*: the identity, and the profile they saved."""
        provider, login, name, _granted = caller
        profile = await run_in_threadpool(self.profiles.get, provider, login)
        return jupyverse_user(login, name, profile)

    # ----------------------------------------------------------------- Jupyverse's API

    def current_user(self, permissions: JupyversePermissions = None) -> Callable[[Request], Awaitable[User]]:
        """A dependency giving the caller's ``User``; 401 without a session, 403 without *every* permission."""
        _permissions.normalize(permissions)  # a malformed permission fails at start-up, not per request

        async def _current_user(request: Request) -> User:
            return await self.user(await self.caller(request, permissions))

        return _current_user

    def websocket_auth(
        self, permissions: JupyversePermissions = None
    ) -> Callable[[WebSocket], Awaitable[tuple[WebSocket, JupyversePermissions] | None]]:
        """A dependency: ``(websocket, checked permissions)`` with *at least one* permission, else closed 1008."""
        if self._anonymous is None:
            checked: Callable[[WebSocket], Awaitable[tuple[WebSocket, Any] | None]] = self.web.websocket_auth(
                permissions
            )
            return checked

        async def _anonymous(websocket: WebSocket) -> tuple[WebSocket, JupyversePermissions] | None:
            return websocket, permissions

        return _anonymous

    async def update_user(self, request: Request) -> Callable[[Mapping[str, Any]], Awaitable[User]]:  # type: ignore[override]
        """``Depends(auth.update_user)``: a coroutine saving the caller's profile fields, giving the new ``User``.

        The fields are ``User``'s (``settings``, ``workspace``, ``name``, ``display_name``,
        ``initials``, ``color``, ``avatar_url``); anything else is a 400. They are Jupyverse's,
        kept by this plugin: the identity provider is never written to.
        """
        caller = await self.caller(request)

        async def _update(data: Mapping[str, Any]) -> User:
            try:
                profile = await run_in_threadpool(self.profiles.update, caller[0], caller[1], dict(data))
            except AuthError as exc:
                raise AuthHTTPException(exc) from None
            return jupyverse_user(caller[1], caller[2], profile)

        return _update

    # ----------------------------------------------------------------- /api/me

    def _me_router(self) -> APIRouter:
        router = APIRouter()
        identity_keys = ("username", "name", "display_name", "initials", "avatar_url", "color")

        @router.get("/api/me")
        async def get_me(request: Request, permissions: str | None = None) -> dict[str, Any]:
            """JupyterLab's identity and which of the asked ``permissions`` (a JSON object) are held."""
            caller = await self.caller(request)
            asked = _parse_permissions(permissions)
            checked = {
                resource: [a for a in actions if _permissions.allows(caller[3], f"{resource}:{a}")]
                for resource, actions in asked.items()
            }
            user = await self.user(caller)
            return {"identity": {k: getattr(user, k) for k in identity_keys}, "permissions": checked}

        @router.patch("/api/me")
        async def patch_me(
            body: dict[str, Any], update: Callable[[Mapping[str, Any]], Awaitable[User]] = Depends(self.update_user)
        ) -> dict[str, Any]:
            """Change the caller's name, display name, initials, colour or avatar (Jupyter Server's ``PATCH``)."""
            user = await update({k: v for k, v in body.items() if k in identity_keys and k != "username"})
            return {"identity": {k: getattr(user, k) for k in identity_keys}}

        return router


def _parse_permissions(value: str | None) -> dict[str, list[str]]:
    """``?permissions={"contents": ["read"]}`` (fps-auth also takes single quotes); 400 when malformed."""
    if not value:
        return {}
    try:
        parsed = json.loads(value.replace("'", '"'))
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v) for k, v in parsed.items()
    ):
        raise AuthHTTPException(BadRequest("permissions must be a JSON object of lists of actions"))
    return parsed
