"""FastAPI/Starlette adapter: the route table as a router, and Jupyverse-shaped dependencies.

::

    from fastapi import Depends, FastAPI
    from authcore import AuthManager
    from authcore.web.fastapi import FastAPIAuth

    manager = AuthManager.from_file("authcore.yml")     # its web: section configures the adapter
    auth = FastAPIAuth(manager, prefix="/ispyb/api/v1")  # keyword arguments override it
    app = FastAPI()
    auth.install(app)                       # router + error handler (+ CORS when configured)

    @app.get("/contents")
    async def contents(user=Depends(auth.current_user({"contents": ["read"]}))): ...

This module only translates: every endpoint is a row of :data:`~authcore.web.routes.ROUTES`
run by :class:`~authcore.web.core.WebCore` in a worker thread (providers and stores block);
``current_user`` checks a cached token in-line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from .. import permissions as _permissions
from ..errors import AuthError, Forbidden, NotAuthenticated
from ..manager import AuthManager
from ..models import VerifiedToken
from . import second_factor, self_service
from . import users as _users
from .asgi import CorsMiddleware, read_body, to_response, web_request
from .common import LoginBody, RefreshBody, bearer_token, websocket_permissions
from .core import WebCore
from .http import error_response
from .routes import Route
from .settings import WebSettings, settings_from_config

__all__ = ["FastAPIAuth", "AuthHTTPException", "Permissions", "auth_error_handler", "json_error", "to_response"]

#: Required permissions: Jupyverse's ``{"contents": ["read"]}``, a list of strings, or one string.
Permissions = Mapping[str, Iterable[str]] | Iterable[str] | str | None

#: The request bodies shown in the OpenAPI schema: operation -> (model, required).
_SCHEMAS: dict[str, tuple[type[BaseModel], bool]] = {
    "login": (LoginBody, True),
    "refresh": (RefreshBody, False),
    **{operation: (model, True) for operation, model in {**second_factor.BODIES, **self_service.BODIES}.items()},
}


def json_error(exc: AuthError) -> JSONResponse:
    """The JSON response for *exc* (see :func:`authcore.web.http.error_response`)."""
    status, body, headers = error_response(exc)
    return JSONResponse(body, status_code=status, headers=headers)


class AuthHTTPException(HTTPException):
    """An :class:`~authcore.errors.AuthError` raised from a dependency (``current_user``).

    :meth:`FastAPIAuth.install` renders it as the one error body; an app that only includes the
    router still gets the right status, headers and ``detail`` from FastAPI's own handler.
    """

    def __init__(self, error: AuthError) -> None:
        status, body, headers = error_response(error)
        super().__init__(status_code=status, detail=body["detail"], headers=headers or None)
        self.error = error


async def auth_error_handler(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`~authcore.errors.AuthError` (and :class:`AuthHTTPException`)."""
    if isinstance(exc, AuthHTTPException):
        return json_error(exc.error)
    assert isinstance(exc, AuthError)
    return json_error(exc)


class FastAPIAuth:
    """authcore for a FastAPI application: :attr:`router`, dependencies, cookie sessions, SSO.

    Configured by ``manager.config.web``; ``settings`` (a :class:`WebSettings`) replaces it, and
    keyword arguments (``prefix=``, ``cookie_auth=``, ...) override single fields of it.

    Attributes:
        core: the :class:`~authcore.web.core.WebCore` behind every endpoint.
        router: the :class:`fastapi.APIRouter` with every auth endpoint (paths already prefixed).
        update_user: Jupyverse's ``update_user`` dependency: ``Depends(auth.update_user)`` gives an
            ``async (data: dict) -> dict`` that updates the caller's own profile (self-update).
    """

    def __init__(self, manager: AuthManager, settings: WebSettings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = settings_from_config(manager.config.web, **overrides)
        elif overrides:
            raise TypeError("give settings or keyword overrides, not both")
        self.manager = manager
        self.settings = settings
        self.core = WebCore(manager, settings)
        self.update_user = self._make_update_user()
        self.router = APIRouter()
        for route in self.core.routes:
            model, required = _SCHEMAS.get(route.operation, (None, False))
            body = {"content": {"application/json": {"schema": model.model_json_schema()}}} if model else None
            self.router.add_api_route(
                route.full_path(settings.prefix),
                self._endpoint(route),
                methods=[route.method],
                status_code=route.status,
                name=route.name,
                tags=[route.operation.partition("_")[0]],
                openapi_extra={"requestBody": {"required": required, **body}} if body else None,
            )

    def _endpoint(self, route: Route) -> Callable[[Request], Awaitable[Response]]:
        handle, handle_on_loop, waits = self.core.handle, self.core.handle_on_loop, self.core.waits
        # Public rows read their body here, on the loop (a worker thread fetching it from the loop
        # costs a round trip per request); guarded rows read it only once the caller is verified.
        eager = route.guard == "public" and route.method in ("POST", "PATCH", "DELETE")

        async def endpoint(request: Request) -> Response:
            web = web_request(request)
            if eager:
                try:
                    web.preload(await read_body(request))
                except AuthError as exc:
                    return json_error(exc)
            where = waits(route, web)
            if where == "none":
                return to_response(handle(route, web))
            if where == "loop":
                return await handle_on_loop(route, web, to_response)
            return to_response(await run_in_threadpool(handle, route, web))

        endpoint.__doc__ = f"{route.method} {route.path}: {route.operation.replace('_', ' ')}."
        return endpoint

    def install(self, app: FastAPI) -> None:
        """Add the router, an :class:`~authcore.errors.AuthError` handler, and CORS when configured."""
        app.include_router(self.router)
        app.add_exception_handler(AuthError, auth_error_handler)
        app.add_exception_handler(AuthHTTPException, auth_error_handler)
        if self.settings.cors_origins:
            app.add_middleware(CorsMiddleware, core=self.core)

    def sso_providers(self) -> list[str]:
        """Names of enabled providers with the single sign-on capability."""
        return self.core.sso.providers()

    async def authenticate(self, request: Request) -> VerifiedToken:
        """The verified caller of *request*; raises :class:`~authcore.errors.AuthError` (401/403)."""
        name = self.settings.query_token
        query_value = request.query_params.get(name) if name else None
        token = self.core.token(request.headers.getlist("authorization"), query_value, False)
        if token is not None:
            return await self.manager.averify(token)
        if not self.settings.cookie_auth:
            raise NotAuthenticated()
        user: VerifiedToken = await run_in_threadpool(self.core.caller, web_request(request))
        return user

    def current_user(self, permissions: Permissions = None) -> Callable[[Request], Awaitable[VerifiedToken]]:
        """A dependency giving the verified caller, who must hold *every* one of *permissions*.

        401 with ``WWW-Authenticate`` without a valid token; 403 without the permissions.
        *permissions*: Jupyverse's ``{"contents": ["read"]}``, ``["read"]``, or ``None``.
        """
        required = _permissions.normalize(permissions)
        authenticate = self.authenticate

        async def _current_user(request: Request) -> VerifiedToken:
            try:
                user = await authenticate(request)
                if required:
                    _permissions.require(user.permissions, required)
            except AuthError as exc:
                raise AuthHTTPException(exc) from None
            return user

        return _current_user

    def websocket_auth(
        self, permissions: Permissions = None
    ) -> Callable[[WebSocket], Awaitable[tuple[WebSocket, Any] | None]]:
        """A websocket dependency with Jupyverse's semantics.

        Accepted (the user holds *at least one* of *permissions*, or none are asked): returns
        ``(websocket, checked_permissions)``, the websocket still to be accepted by the caller,
        the verified user in ``websocket.state.authcore_user``. Refused: the websocket is closed
        with code 1008 (policy violation) and ``None`` returned. A token comes from the
        ``Authorization`` header, the configured query parameter, or the session cookie
        (``cookie_auth``; the ``Origin`` must then be this host or a CORS origin).
        """
        _permissions.normalize(permissions)  # validate early
        core, settings = self.core, self.settings

        async def _websocket_auth(websocket: WebSocket) -> tuple[WebSocket, Any] | None:
            try:
                name = settings.query_token
                query_value = websocket.query_params.get(name) if name else None
                token = core.token(websocket.headers.getlist("authorization"), query_value, True)
                cookie = websocket.cookies.get(settings.cookies.access) if settings.cookie_auth else None
                if token is None and cookie:
                    if not core.same_origin(websocket.headers.get("origin"), websocket.headers.get("host")):
                        raise Forbidden("cross-origin websocket refused")
                    token = bearer_token("Bearer " + cookie)
                if token is None:
                    raise NotAuthenticated()
                user = await self.manager.averify(token)
            except AuthError:
                user = None
            checked, accepted = websocket_permissions(user, permissions) if user else (None, False)
            if user is None or not accepted:
                # Accept, then close with 1008, so the client sees the policy-violation code
                # (closing before accepting turns into an HTTP 403 at the handshake).
                await websocket.accept()
                await websocket.close(code=1008)
                return None
            websocket.state.authcore_user = user
            return websocket, checked

        return _websocket_auth

    def _make_update_user(
        self,
    ) -> Callable[..., Awaitable[Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]]]:
        manager = self.manager

        async def _update_user(
            user: VerifiedToken = Depends(self.current_user()),
        ) -> Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]:
            async def _update(data: Mapping[str, Any]) -> dict[str, Any]:
                _status, body = await run_in_threadpool(
                    _users.run_operation, manager, "self_update", user.provider, login=user.login, body=data
                )
                result: dict[str, Any] = body
                return result

            return _update

        return _update_user
