"""FastAPI adapter: the auth router and Jupyverse-shaped dependencies.

::

    from fastapi import Depends, FastAPI
    from authcore import AuthManager
    from authcore.web.fastapi import FastAPIAuth

    manager = AuthManager.from_file("authcore.yml")
    auth = FastAPIAuth(manager, prefix="/ispyb/api/v1")
    app = FastAPI()
    auth.install(app)                       # router + error handler (+ CORS when configured)

    @app.get("/contents")
    async def contents(user=Depends(auth.current_user({"contents": ["read"]}))): ...

Async all the way: logins, refreshes, logouts and uncached verifications run the
provider and the session store in worker threads (``AuthManager.a*``); a cached token
is checked in-line. User management runs in a worker thread as well.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from .. import permissions as _permissions
from ..errors import AuthError, Forbidden, InvalidCredentials, InvalidToken, NotSupported
from ..manager import AuthManager
from ..models import Identity, LoginResult, VerifiedToken
from ..providers import SingleSignOn
from . import users as _users
from .common import (
    CSRF_HEADER,
    MAX_BODY_BYTES,
    SAFE_METHODS,
    LoginBody,
    NotAuthenticated,
    PayloadTooLarge,
    RefreshBody,
    SingleUse,
    StateSigner,
    WebSettings,
    bearer_token,
    csrf_for_session,
    csrf_matches,
    error_response,
    expected_csrf,
    login_payload,
    me_payload,
    parse_json,
    parse_login,
    query_token_refused,
    safe_next,
    single_header,
    websocket_permissions,
)

__all__ = ["FastAPIAuth", "AuthHTTPException", "Permissions", "auth_error_handler", "json_error"]

#: Required permissions: Jupyverse's ``{"contents": ["read"]}``, a list of strings, or one string.
Permissions = Mapping[str, Iterable[str]] | Iterable[str] | str | None

_LOGIN_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": LoginBody.model_json_schema()}},
    }
}
_REFRESH_SCHEMA = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": RefreshBody.model_json_schema()}},
    }
}


def json_error(exc: AuthError) -> JSONResponse:
    """The JSON response for *exc* (see :func:`authcore.web.common.error_response`)."""
    status, body, headers = error_response(exc)
    return JSONResponse(body, status_code=status, headers=headers)


class AuthHTTPException(HTTPException):
    """An :class:`~authcore.errors.AuthError` raised from a dependency (``current_user``).

    :meth:`FastAPIAuth.install` renders it as the one error body (``{"detail", "code"}``); an
    app that only includes the router still gets the right status, headers and ``detail``
    from FastAPI's own ``HTTPException`` handler.
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


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    # isascii(): str.isdigit() accepts digits int() refuses; the header is latin-1 decoded.
    if declared is not None and (not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY_BYTES):
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class FastAPIAuth:
    """authcore for a FastAPI application: :attr:`router`, dependencies, cookie sessions, SSO.

    ``settings`` (a :class:`~authcore.web.common.WebSettings`) or keyword overrides of its
    fields configure the prefix, cookies, CORS, throttling and so on.

    Attributes:
        router: the :class:`fastapi.APIRouter` with every auth endpoint (paths already prefixed).
        update_user: Jupyverse's ``update_user`` dependency: ``Depends(auth.update_user)`` gives an
            ``async (data: dict) -> dict`` that updates the caller's own profile (self-update).
    """

    def __init__(self, manager: AuthManager, settings: WebSettings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = WebSettings(**overrides)
        elif overrides:
            raise TypeError("give settings or keyword overrides, not both")
        self.manager = manager
        self.settings = settings
        self.signer = StateSigner(settings.state_key)
        # SSO states already redeemed, so a state cookie works once: the signature alone keeps
        # it valid for sso_state_ttl. Per process and bounded.
        self._used_states = SingleUse(settings.sso_state_ttl)
        self.update_user: Callable[..., Awaitable[Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]]] = (
            self._make_update_user()
        )
        self.router = APIRouter()
        self._build_router()

    # ----------------------------------------------------------------- app wiring

    def install(self, app: FastAPI) -> None:
        """Add the router, an :class:`~authcore.errors.AuthError` handler, and CORS when configured."""
        app.include_router(self.router)
        app.add_exception_handler(AuthError, auth_error_handler)
        app.add_exception_handler(AuthHTTPException, auth_error_handler)
        if self.settings.cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            app.add_middleware(
                CORSMiddleware,
                allow_origins=list(self.settings.cors_origins),
                allow_credentials=self.settings.cors_credentials,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", CSRF_HEADER],
            )

    # ----------------------------------------------------------------- tokens

    def token_from(self, connection: HTTPConnection) -> tuple[str | None, bool]:
        """``(token, from_cookie)``: the bearer header, else the session cookie (``cookie_auth``),
        else, on a websocket only, the configured query parameter. Malformed headers, and that
        parameter on a plain HTTP request, raise :class:`InvalidToken`."""
        token = bearer_token(single_header(connection.headers.getlist("authorization")))
        if token is not None:
            return token, False
        settings = self.settings
        if settings.cookie_auth:
            cookie = connection.cookies.get(settings.cookies.access)
            if cookie:
                return bearer_token("Bearer " + cookie), True
        if settings.query_token is not None:
            value = connection.query_params.get(settings.query_token)
            if value:
                if connection.scope["type"] != "websocket":
                    raise query_token_refused(settings.query_token)
                return bearer_token("Bearer " + value), False
        return None, False

    def _csrf_ok(self, request: HTTPConnection) -> bool:
        expected = expected_csrf(request.cookies, self.settings.cookies)
        return csrf_matches(expected, request.headers.get(CSRF_HEADER))

    def _same_origin(self, connection: HTTPConnection) -> bool:
        origin = connection.headers.get("origin")
        if origin is None:
            return True
        if origin in self.settings.cors_origins:
            return True
        return urlsplit(origin).netloc.lower() == (connection.headers.get("host") or "").lower()

    async def authenticate(self, request: Request) -> VerifiedToken:
        """The verified caller of *request*; raises :class:`~authcore.errors.AuthError` (401/403)."""
        token, from_cookie = self.token_from(request)
        if token is None:
            raise NotAuthenticated()
        user = await self.manager.averify(token)
        if from_cookie and request.method not in SAFE_METHODS and not self._csrf_ok(request):
            raise Forbidden("CSRF token missing or wrong")
        return user

    # ----------------------------------------------------------------- dependencies

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
        ``Authorization`` header, the session cookie (``cookie_auth``; the ``Origin`` must then be
        this host or a CORS origin) or the configured query parameter.
        """
        _permissions.normalize(permissions)  # validate early

        async def _websocket_auth(websocket: WebSocket) -> tuple[WebSocket, Any] | None:
            try:
                token, from_cookie = self.token_from(websocket)
                if token is None:
                    raise NotAuthenticated()
                if from_cookie and not self._same_origin(websocket):
                    raise Forbidden("cross-origin websocket refused")
                user = await self.manager.averify(token)
            except AuthError:
                await self._refuse(websocket)
                return None
            checked, accepted = websocket_permissions(user, permissions)
            if not accepted:
                await self._refuse(websocket)
                return None
            websocket.state.authcore_user = user
            return websocket, checked

        return _websocket_auth

    @staticmethod
    async def _refuse(websocket: WebSocket) -> None:
        # Accept, then close with 1008, so the client sees the policy-violation code
        # (closing before accepting turns into an HTTP 403 at the handshake).
        await websocket.accept()
        await websocket.close(code=1008)

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

    # ----------------------------------------------------------------- cookie sessions

    def set_session_cookies(self, response: Response, request: HTTPConnection, result: LoginResult) -> str:
        """Put a login's tokens in ``HttpOnly`` cookies, and their CSRF token in a cookie scripts
        can read; return the CSRF token (bound to the session, see :func:`csrf_for_session`)."""
        cookies = self.settings.cookies
        secure = self.settings.cookie_secure(request.url.hostname)
        lifetime = int(self.manager.config.sessions.idle_timeout)
        common: dict[str, Any] = {"secure": secure, "samesite": cookies.samesite, "path": cookies.path}
        response.set_cookie(cookies.access, result.access_token, max_age=lifetime, httponly=True, **common)
        response.set_cookie(cookies.refresh, result.refresh_token, max_age=lifetime, httponly=True, **common)
        csrf = csrf_for_session(result.access_token)
        response.set_cookie(cookies.csrf, csrf, max_age=lifetime, httponly=False, **common)
        return csrf

    async def end_cookie_session(self, request: HTTPConnection) -> VerifiedToken | None:
        """End the session held in the request's cookies; return its user, ``None`` if none was live.

        The access cookie is tried first; when its token has expired (``access_ttl`` is much
        shorter than the cookie's idle lifetime) or is garbage, the refresh cookie is traded
        for a fresh access token that is then logged out, so the server-side session (and the
        refresh token someone may have copied) always ends. The caller checks CSRF.
        """
        manager = self.manager
        cookies = self.settings.cookies
        access = request.cookies.get(cookies.access)
        if access:
            try:
                user = await manager.averify(access)
                await manager.alogout(access)
                return user
            except AuthError:
                pass
        refresh = request.cookies.get(cookies.refresh)
        if refresh:
            try:
                result = await manager.arefresh(refresh)
                user = await manager.averify(result.access_token)
                await manager.alogout(result.access_token)
                return user
            except AuthError:
                pass
        return None

    def clear_session_cookies(self, response: Response, request: HTTPConnection) -> None:
        """Delete the session cookies."""
        cookies = self.settings.cookies
        secure = self.settings.cookie_secure(request.url.hostname)
        for name in (cookies.access, cookies.refresh, cookies.csrf):
            response.delete_cookie(
                name, path=cookies.path, secure=secure, httponly=name != cookies.csrf, samesite=cookies.samesite
            )

    # ----------------------------------------------------------------- the router

    def _client_address(self, request: Request) -> str | None:
        return request.client.host if request.client else None

    async def login(self, body: LoginBody, address: str | None) -> LoginResult:
        """Log in with py-ispyb's body, with throttling when configured.

        The throttle holds for what was typed and, after a successful login, for the login the
        provider returned: if that one is locked the new session is ended and the login refused.
        """
        throttle = self.settings.throttle
        if throttle is not None:
            throttle.check(body.login, address)
        try:
            result = await self.manager.alogin(body.plugin, **body.credentials())
        except InvalidCredentials:
            if throttle is not None:
                throttle.failure(body.login, address)
            raise
        if throttle is not None:
            refused = throttle.refusal_after_login(body.login, result.identity.login)
            if refused is not None:
                await self.manager.alogout(result.access_token)
                raise refused
        return result

    def sso_providers(self) -> list[str]:
        """Names of enabled providers with the single sign-on capability."""
        return [name for name, p in self.manager.providers.items() if isinstance(p, SingleSignOn)]

    def _build_router(self) -> None:
        router = self.router
        path = self.settings.path
        manager = self.manager
        settings = self.settings
        me = Depends(self.current_user())

        @router.post(path("/auth/login"), tags=["auth"], openapi_extra=_LOGIN_SCHEMA)
        async def login(request: Request) -> Response:
            """Log in: ``{plugin, login, password, token}`` → ``{login, token, permissions, refresh_token, ...}``."""
            try:
                content_type = request.headers.get("content-type")
                body = parse_login(await _read_body(request), content_type, manager.providers)
                result = await self.login(body, self._client_address(request))
            except AuthError as exc:
                return json_error(exc)
            return JSONResponse(login_payload(result))

        @router.get(path("/auth/config"), tags=["auth"])
        async def config() -> Response:
            """Every enabled provider's public config (py-ispyb's UI reads it), plus SSO entry points."""
            data = manager.public_config()
            sso = self.sso_providers()
            data["sso"] = [{"provider": n, "login": path(f"/auth/sso/{n}/login")} for n in sso]
            return JSONResponse(data)

        @router.post(path("/auth/refresh"), tags=["auth"], openapi_extra=_REFRESH_SCHEMA)
        async def refresh(request: Request) -> Response:
            """Trade a refresh token (body, or the session cookie) for new tokens."""
            try:
                raw = await _read_body(request)
                from_cookie = False
                if raw.strip():
                    refresh_token = parse_json(raw, RefreshBody).refresh_token
                else:
                    refresh_token = request.cookies.get(settings.cookies.refresh) if settings.cookie_auth else None
                    from_cookie = True
                    if not refresh_token:
                        raise InvalidToken("refresh token required")
                    if not self._csrf_ok(request):
                        raise Forbidden("CSRF token missing or wrong")
                result = await manager.arefresh(refresh_token)
            except AuthError as exc:
                return json_error(exc)
            response = JSONResponse(login_payload(result))
            if from_cookie:
                self.set_session_cookies(response, request, result)
            return response

        @router.post(path("/auth/logout"), tags=["auth"], status_code=204)
        async def logout(request: Request) -> Response:
            """End the caller's session: its refresh token and every access token die with it."""
            cookies = settings.cookies
            cookie_session = (
                settings.cookie_auth
                and "authorization" not in request.headers
                and bool(request.cookies.get(cookies.access) or request.cookies.get(cookies.refresh))
            )
            try:
                if cookie_session:
                    if not self._csrf_ok(request):
                        raise Forbidden("CSRF token missing or wrong")
                    # The access cookie outlives its token (idle timeout vs. access_ttl): end the
                    # session through the refresh cookie as well, never leave it running.
                    if await self.end_cookie_session(request) is None:
                        refused = json_error(InvalidToken("session ended"))
                        self.clear_session_cookies(refused, request)
                        return refused
                else:
                    token, _from_cookie = self.token_from(request)
                    if token is None:
                        raise NotAuthenticated()
                    await manager.alogout(token)
            except AuthError as exc:
                return json_error(exc)
            response = Response(status_code=204)
            if settings.cookie_auth:
                self.clear_session_cookies(response, request)
            return response

        @router.get(path("/auth/me"), tags=["auth"])
        async def who_am_i(user: VerifiedToken = me) -> dict[str, Any]:
            """The verified caller."""
            return me_payload(user)

        @router.patch(path("/auth/me"), tags=["users"])
        async def self_update(request: Request, user: VerifiedToken = me) -> Response:
            """Change one's own attributes, where the provider allows it."""
            return await self._users(request, "self_update", user.provider, user.login)

        @router.post(path("/auth/register/{provider}"), tags=["users"], status_code=201)
        async def register(request: Request, provider: str) -> Response:
            """Self-registration, where the provider allows it (501 otherwise)."""
            return await self._users(request, "register", provider)

        for method, suffix, operation, status in _users.ADMIN_ROUTES:
            router.add_api_route(
                path("/auth/users/{provider}" + suffix),
                self._admin_endpoint(operation),
                methods=[method],
                tags=["users"],
                status_code=status,
                name=f"users_{operation}",
                summary=f"User management: {operation.replace('_', ' ')}",
            )

        @router.get("/.well-known/jwks.json", tags=["auth"])
        async def jwks() -> Response:
            """The public keys that verify our tokens (empty for HMAC)."""
            return JSONResponse(manager.jwks(), headers={"Cache-Control": "public, max-age=300"})

        @router.get(path("/auth/sso/{provider}/login"), tags=["sso"])
        async def sso_login(request: Request, provider: str) -> Response:
            """Send the browser to the identity provider (PKCE S256, state, nonce)."""
            try:
                return await self._sso_login(request, provider)
            except AuthError as exc:
                return json_error(exc)

        @router.get(path("/auth/sso/{provider}/callback"), tags=["sso"])
        async def sso_callback(request: Request, provider: str) -> Response:
            """Take the authorization code back: check state, log in, start the session."""
            try:
                return await self._sso_callback(request, provider)
            except AuthError as exc:
                response = json_error(exc)
                self._clear_sso_cookie(response, request)
                return response

    def _admin_endpoint(self, operation: str) -> Callable[..., Awaitable[Response]]:
        """The endpoint of one user-management *operation*: the caller must administer *provider*."""
        caller = Depends(self.current_user())
        admin_permission = self.settings.admin_permission

        async def endpoint(
            request: Request, provider: str, login: str | None = None, user: VerifiedToken = caller
        ) -> Response:
            try:
                _users.require_admin(user, provider, admin_permission)
            except AuthError as exc:
                return json_error(exc)
            return await self._users(request, operation, provider, login)

        return endpoint

    async def _users(self, request: Request, operation: str, provider: str, login: str | None = None) -> Response:
        try:
            body = None
            if request.method in {"POST", "PATCH", "PUT", "DELETE"}:
                raw = await _read_body(request)
                body = parse_json(raw) if raw.strip() else {}
            status, payload = await run_in_threadpool(
                _users.run_operation,
                self.manager,
                operation,
                provider,
                login=login,
                body=body,
                query=dict(request.query_params),
            )
        except AuthError as exc:
            return json_error(exc)
        if payload is None:
            return Response(status_code=status)
        return JSONResponse(payload, status_code=status)

    # ----------------------------------------------------------------- single sign-on

    def _sso(self, name: str) -> SingleSignOn:
        provider = self.manager.provider(name)
        if not isinstance(provider, SingleSignOn):
            raise NotSupported(name, "single sign-on")
        return provider

    def callback_url(self, request: HTTPConnection, provider: str) -> str:
        """The redirect URI registered at the identity provider for *provider*."""
        suffix = self.settings.path(f"/auth/sso/{provider}/callback")
        base = self.settings.public_url
        if base is None:
            base = f"{request.url.scheme}://{request.url.netloc}"
        return base.rstrip("/") + suffix

    def _sso_cookie_path(self) -> str:
        return self.settings.path("/auth/sso/")

    async def _sso_login(self, request: Request, name: str) -> Response:
        provider = self._sso(name)
        redirect_uri = self.callback_url(request, name)
        pending = await run_in_threadpool(provider.authorization_request, redirect_uri)
        state = {
            "p": name,
            "s": pending.state,
            "n": pending.nonce,
            "v": pending.code_verifier,
            "r": pending.redirect_uri,
            "x": safe_next(request.query_params.get("next")),
        }
        ttl = self.settings.sso_state_ttl
        response = RedirectResponse(pending.url, status_code=302)
        cookies = self.settings.cookies
        response.set_cookie(
            cookies.sso,
            self.signer.dumps(state, ttl),
            max_age=int(ttl),
            httponly=True,
            secure=self.settings.cookie_secure(request.url.hostname),
            samesite="lax",  # must come back on the identity provider's top-level redirect
            path=self._sso_cookie_path(),
        )
        return response

    def _clear_sso_cookie(self, response: Response, request: HTTPConnection) -> None:
        cookies = self.settings.cookies
        response.delete_cookie(
            cookies.sso,
            path=self._sso_cookie_path(),
            secure=self.settings.cookie_secure(request.url.hostname),
            httponly=True,
            samesite="lax",
        )

    async def _sso_callback(self, request: Request, name: str) -> Response:
        self._sso(name)
        query = request.query_params
        if query.get("error"):
            raise InvalidCredentials("single sign-on refused")
        code, state = query.get("code"), query.get("state")
        if not code or not state:
            raise InvalidCredentials("single sign-on: code and state required")
        pending = self.signer.loads(request.cookies.get(self.settings.cookies.sso))
        if pending.get("p") != name or not hmac.compare_digest(str(pending.get("s", "")).encode(), state.encode()):
            raise InvalidToken("single sign-on: state mismatch")
        self._used_states.redeem(state)
        result = await self.manager.alogin(
            name, code=code, redirect_uri=pending["r"], code_verifier=pending["v"], nonce=pending["n"]
        )
        response: Response
        if self.settings.cookie_auth:
            response = RedirectResponse(safe_next(pending.get("x")), status_code=303)
            self.set_session_cookies(response, request, result)
        else:
            response = JSONResponse(login_payload(result))
        self._clear_sso_cookie(response, request)
        return response

    async def sso_logout_url(self, user: VerifiedToken, post_logout_redirect_uri: str | None) -> str | None:
        """Where to send the browser to end the identity provider's session, if *user* came by SSO."""
        provider = self.manager.providers.get(user.provider)
        if not isinstance(provider, SingleSignOn):
            return None
        identity = Identity(login=user.login, provider=user.provider, groups=user.groups)
        try:
            return await run_in_threadpool(provider.logout_url, identity, post_logout_redirect_uri)
        except NotSupported:
            return None
