"""A Keycloak-compatible HTTP server for tests: standard library + cryptography, nothing mocked.

It speaks the endpoints python-keycloak 7 calls, with Keycloak's status codes and error
bodies (see the project's ``facts/keycloak-http.md``): discovery, realm info, certs,
the token endpoint (password, refresh_token, authorization_code with PKCE,
client_credentials), introspection, userinfo, logout, the authorization endpoint with a
minimal login form, and an admin subset (users, passwords, realm roles and role
mappings, groups and memberships, counts, logout).

Switches for tests: :meth:`KeycloakTestServer.set_down` (the listener closes and open
connections are cut: clients get "connection refused"), :meth:`~KeycloakTestServer.slow`
(every reply is delayed) and :meth:`Realm.rotate_keys`; :meth:`~KeycloakTestServer.hits`
counts the requests seen per path.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from .realm import Client, Realm, User, b64url

__all__ = ["KeycloakTestServer"]

Reply = tuple[int, dict[str, str], bytes]
Form = dict[str, str]

# Keycloak's client authentication (ClientIdAndSecretAuthenticator and AuthenticationProcessor,
# Keycloak 20 and later): an unknown client is ``invalid_client``, but a known confidential client
# with a wrong or missing secret is ``unauthorized_client``, both 401 with the same description.
# (Before 20 a wrong secret said ``unauthorized_client`` "Invalid client secret", with 400 or 401.)
_INVALID_CLIENT = {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}
_WRONG_SECRET = {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _empty(status: int = 204, headers: dict[str, str] | None = None) -> Reply:
    return status, dict(headers or {}), b""


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return _json(status, {"error": error, "error_description": description})


def _form(body: bytes) -> Form:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: KeycloakTestServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, and without Nagle's delay (40 ms per reply otherwise).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner._count(method, path)
        delay = owner.delay
        if delay:
            time.sleep(delay)
        if owner.is_down:
            self.close_connection = True
            return
        try:
            status, headers, payload = owner.handle(method, path, query, dict(self.headers.items()), body)
        except Exception:  # a bug in the test server shows as Keycloak's 500
            status, headers, payload = _json(500, {"error": "unknown_error"})
        try:
            lines = [
                f"{self.protocol_version} {status} {HTTPStatus(status).phrase}",
                f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}",
                *(f"{name}: {value}" for name, value in headers.items()),
                f"Content-Length: {len(payload)}",
            ]
            if self.close_connection:
                lines.append("Connection: close")
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        except OSError:  # the client gave up (a timeout) or the server went down
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class KeycloakTestServer:
    """A Keycloak look-alike on ``127.0.0.1`` and a free port, served from a background thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. :attr:`url` ends in
    ``/`` (python-keycloak's ``server_url``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.realms: dict[str, Realm] = {}
        self.delay = 0.0
        self.is_down = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self._routes = self._build_routes()

    # ------------------------------------------------------------ life cycle

    def start(self) -> KeycloakTestServer:
        """Listen and serve in a daemon thread."""
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.is_down = False
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KeycloakTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_down(self, down: bool) -> None:
        """``True``: close the listener and cut connections (connection refused); ``False``: listen again."""
        if down and not self.is_down:
            self.is_down = True
            self.stop()
        elif not down and self.is_down:
            self.start()

    def slow(self, seconds: float) -> None:
        """Delay every reply by *seconds* (0 switches it off)."""
        self.delay = seconds

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # ------------------------------------------------------------ counters

    def _count(self, method: str, path: str) -> None:
        with self._lock:
            self._hits[path] += 1
            self._hits[f"{method} {path}"] += 1

    def hits(self, suffix: str = "") -> int:
        """Requests seen whose path ends with *suffix* (all requests without one)."""
        with self._lock:
            return sum(
                n
                for p, n in self._hits.items()
                if not p.startswith(("GET ", "POST ", "PUT ", "DELETE ")) and p.endswith(suffix)
            )

    def reset_hits(self) -> None:
        """Forget the counts."""
        with self._lock:
            self._hits.clear()

    # ------------------------------------------------------------ realms

    @property
    def url(self) -> str:
        """The server URL, ending in ``/``."""
        return f"http://{self.host}:{self.port}/"

    def issuer(self, realm: str) -> str:
        """``iss`` of *realm*'s tokens."""
        return f"http://{self.host}:{self.port}/realms/{realm}"

    def add_realm(self, name: str, **options: Any) -> Realm:
        """A new realm (the server must have its port: start it first, or give one)."""
        realm = Realm(name, self.issuer(name), **options)
        self.realms[name] = realm
        return realm

    def realm(self, name: str) -> Realm:
        """An existing realm."""
        return self.realms[name]

    # ------------------------------------------------------------ dispatch

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Reply]]]:
        oidc = r"/realms/(?P<realm>[^/]+)/protocol/openid-connect"
        admin = r"/admin/realms/(?P<realm>[^/]+)"
        user = admin + r"/users/(?P<uid>[^/]+)"
        table: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", r"/realms/(?P<realm>[^/]+)/\.well-known/openid-configuration", self._discovery),
            ("GET", r"/realms/(?P<realm>[^/]+)/?", self._realm_info),
            ("GET", oidc + "/certs", self._certs),
            ("POST", oidc + "/token", self._token),
            ("POST", oidc + "/token/introspect", self._introspect),
            ("GET", oidc + "/userinfo", self._userinfo),
            ("POST", oidc + "/userinfo", self._userinfo),
            ("POST", oidc + "/logout", self._logout),
            ("GET", oidc + "/logout", self._browser_logout),
            ("GET", oidc + "/auth", self._auth_form),
            ("POST", oidc + "/auth", self._auth_submit),
            ("GET", admin + "/users", self._users_list),
            ("POST", admin + "/users", self._users_create),
            ("GET", admin + "/users/count", self._users_count),
            ("GET", user, self._user_get),
            ("PUT", user, self._user_update),
            ("DELETE", user, self._user_delete),
            ("PUT", user + "/reset-password", self._user_password),
            ("POST", user + "/logout", self._user_logout),
            ("GET", user + "/role-mappings/realm", self._user_roles),
            ("POST", user + "/role-mappings/realm", self._user_roles_add),
            ("DELETE", user + "/role-mappings/realm", self._user_roles_remove),
            ("GET", user + "/role-mappings/realm/composite", self._user_roles_composite),
            ("GET", user + "/groups", self._user_groups),
            ("PUT", user + "/groups/(?P<gid>[^/]+)", self._user_group_add),
            ("DELETE", user + "/groups/(?P<gid>[^/]+)", self._user_group_remove),
            ("GET", admin + "/roles", self._roles_list),
            ("POST", admin + "/roles", self._roles_create),
            ("GET", admin + "/roles/(?P<name>[^/]+)", self._role_get),
            ("GET", admin + "/roles/(?P<name>[^/]+)/users", self._role_users),
            ("GET", admin + "/groups", self._groups_list),
            ("POST", admin + "/groups", self._groups_create),
            ("GET", admin + "/groups/(?P<gid>[^/]+)", self._group_get),
            ("GET", admin + "/groups/(?P<gid>[^/]+)/children", self._group_children),
            ("POST", admin + "/groups/(?P<gid>[^/]+)/children", self._group_child_create),
            ("GET", admin + "/groups/(?P<gid>[^/]+)/members", self._group_members),
            ("GET", admin + "/group-by-path/(?P<path>.+)", self._group_by_path),
        ]
        return [(m, re.compile(p + "$"), f) for m, p, f in table]

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one request."""
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        allowed = False
        for route_method, pattern, function in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if route_method != method:
                continue
            args = {k: unquote(v) for k, v in match.groupdict().items()}
            realm = self.realms.get(args.pop("realm"))
            if realm is None:
                return _json(404, {"error": "Realm does not exist"})
            request = _Request(method, path, params, {k.lower(): v for k, v in headers.items()}, body)
            if path.startswith("/admin/"):
                denied = self._admin_guard(realm, request)
                if denied is not None:
                    return denied
            with realm.lock:
                return function(realm, request, **args)
        if allowed:
            return _json(405, {"error": "HTTP 405 Method Not Allowed"})
        return _json(404, {"error": "Unable to find matching target resource method"})

    # ------------------------------------------------------------ OpenID Connect

    def _discovery(self, realm: Realm, request: _Request) -> Reply:
        base = realm.issuer + "/protocol/openid-connect"
        return _json(
            200,
            {
                "issuer": realm.issuer,
                "authorization_endpoint": base + "/auth",
                "token_endpoint": base + "/token",
                "introspection_endpoint": base + "/token/introspect",
                "userinfo_endpoint": base + "/userinfo",
                "end_session_endpoint": base + "/logout",
                "jwks_uri": base + "/certs",
                "grant_types_supported": ["authorization_code", "refresh_token", "password", "client_credentials"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            },
        )

    def _realm_info(self, realm: Realm, request: _Request) -> Reply:
        return _json(
            200,
            {
                "realm": realm.name,
                "public_key": realm.active_key.public_key_b64(),
                "token-service": realm.issuer + "/protocol/openid-connect",
                "account-service": realm.issuer + "/account",
                "tokens-not-before": 0,
            },
        )

    def _certs(self, realm: Realm, request: _Request) -> Reply:
        return _json(200, realm.jwks())

    def _client(self, realm: Realm, request: _Request, form: Form) -> Client | Reply:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return _json(401, _INVALID_CLIENT)
        client = realm.clients.get(client_id or "")
        if client is None:
            return _json(401, _INVALID_CLIENT)
        if client.secret is not None and not hmac.compare_digest((secret or "").encode(), client.secret.encode()):
            return _json(401, _WRONG_SECRET)
        return client

    def _token(self, realm: Realm, request: _Request) -> Reply:
        form = _form(request.body)
        client = self._client(realm, request, form)
        if not isinstance(client, Client):
            return client
        grant = form.get("grant_type", "")
        scope = form.get("scope") or "openid"
        if grant == "password":
            if not client.direct_access:
                return _oauth_error(400, "unauthorized_client", "Client not allowed for direct access grants")
            user = realm.user_by_name(form.get("username", ""))
            password = form.get("password", "")
            if (
                user is None
                or user.password is None
                or user.service_account_client is not None
                or not hmac.compare_digest(password.encode(), user.password.encode())
            ):
                return _oauth_error(401, "invalid_grant", "Invalid user credentials")
            if not user.enabled:
                return _oauth_error(400, "invalid_grant", "Account disabled")
            if user.temporary_password:
                return _oauth_error(400, "invalid_grant", "Account is not fully set up")
            session = realm.start_session(user, client.client_id)
            return _json(200, realm.token_response(user, client, session, scope))
        if grant == "refresh_token":
            claims = realm.decode(form.get("refresh_token", ""), refresh=True)
            if claims is None or claims.get("typ") != "Refresh":
                return _oauth_error(400, "invalid_grant", "Invalid refresh token")
            if claims.get("azp") != client.client_id:
                return _oauth_error(
                    400, "invalid_grant", "Invalid refresh token. Token client and authorized client don't match"
                )
            if not realm.session_active(claims):
                return _oauth_error(400, "invalid_grant", "Session not active")
            user = realm.users[claims["sub"]]
            session = realm.sessions[claims["sid"]]
            return _json(200, realm.token_response(user, client, session, str(claims.get("scope", scope))))
        if grant == "authorization_code":
            code = realm.codes.pop(form.get("code", ""), None)
            if code is None or code.client_id != client.client_id or time.time() > code.expires:
                return _oauth_error(400, "invalid_grant", "Code not valid")
            if code.redirect_uri != form.get("redirect_uri"):
                return _oauth_error(400, "invalid_grant", "Incorrect redirect_uri")
            if code.challenge is not None:
                verifier = form.get("code_verifier")
                if not verifier:
                    return _oauth_error(400, "invalid_grant", "PKCE code verifier not specified")
                if code.method == "S256":
                    computed = b64url(hashlib.sha256(verifier.encode()).digest())
                else:
                    computed = verifier
                if not hmac.compare_digest(computed.encode(), code.challenge.encode()):
                    return _oauth_error(400, "invalid_grant", "PKCE verification failed: Invalid code verifier")
            code_session = realm.sessions.get(code.session_id)
            if code_session is None or not code_session.active:
                return _oauth_error(400, "invalid_grant", "Session not active")
            user = realm.users[code_session.user_id]
            return _json(200, realm.token_response(user, client, code_session, code.scope, nonce=code.nonce))
        if grant == "client_credentials":
            # Keycloak's ClientCredentialsGrantType, after the client authenticated.
            if client.public:
                return _oauth_error(401, "unauthorized_client", "Public client not allowed to retrieve service account")
            if not client.service_account or client.service_account_user_id is None:
                return _oauth_error(401, "unauthorized_client", "Client not enabled to retrieve service account")
            user = realm.users[client.service_account_user_id]
            return _json(200, realm.token_response(user, client, None, form.get("scope") or "profile email"))
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")

    def _introspect(self, realm: Realm, request: _Request) -> Reply:
        form = _form(request.body)
        client = self._client(realm, request, form)
        if not isinstance(client, Client):
            return client
        if client.public:
            return _oauth_error(403, "invalid_request", "Client not allowed.")
        token = form.get("token", "")
        claims = realm.decode(token) or realm.decode(token, refresh=True)
        if claims is None or not realm.session_active(claims):
            return _json(200, {"active": False})
        answer = dict(claims)
        answer.update(active=True, client_id=claims.get("azp"), username=claims.get("preferred_username"))
        answer.setdefault("token_type", claims.get("typ"))
        return _json(200, answer)

    def _bearer_claims(self, realm: Realm, request: _Request) -> dict[str, Any] | None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        claims = realm.decode(auth[7:].strip())
        if claims is None or claims.get("typ") != "Bearer" or not realm.session_active(claims):
            return None
        return claims

    def _userinfo(self, realm: Realm, request: _Request) -> Reply:
        claims = self._bearer_claims(realm, request)
        if claims is None:
            return _json(401, {"error": "invalid_token", "error_description": "Token verification failed"})
        keep = ("sub", "email_verified", "name", "preferred_username", "given_name", "family_name", "email", "groups")
        return _json(200, {k: claims[k] for k in keep if k in claims})

    def _logout(self, realm: Realm, request: _Request) -> Reply:
        form = _form(request.body)
        client = self._client(realm, request, form)
        if not isinstance(client, Client):
            return client
        token = form.get("refresh_token")
        if not token:
            return _oauth_error(400, "invalid_request", "No refresh token")
        claims = realm.decode(token, refresh=True)
        if claims is None:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        if claims.get("azp") != client.client_id:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        session = realm.sessions.get(str(claims.get("sid")))
        if session is None or not session.active:
            return _oauth_error(400, "invalid_grant", "Session not active")
        session.active = False
        return _empty(204)

    def _browser_logout(self, realm: Realm, request: _Request) -> Reply:
        hint = request.params.get("id_token_hint")
        claims = realm.decode(hint) if hint else None
        if claims is not None and claims.get("sid") in realm.sessions:
            realm.sessions[claims["sid"]].active = False
        target = request.params.get("post_logout_redirect_uri")
        if target:
            return _empty(302, {"Location": target})
        return 200, {"Content-Type": "text/html; charset=utf-8"}, b"<html><body>You are logged out</body></html>"

    def _auth_check(self, realm: Realm, params: Form) -> Client | Reply:
        client = realm.clients.get(params.get("client_id", ""))
        if client is None:
            return _html_error(400, "Client not found.")
        if not client.allows_redirect(params.get("redirect_uri", "")):
            return _html_error(400, "Invalid parameter: redirect_uri")
        if params.get("response_type") != "code":
            return _html_error(400, "Invalid parameter: response_type")
        method = params.get("code_challenge_method")
        if params.get("code_challenge") and method not in ("S256", "plain"):
            return _html_error(400, "Invalid parameter: code challenge method is not configured one")
        return client

    def _auth_form(self, realm: Realm, request: _Request, error: str = "") -> Reply:
        checked = self._auth_check(realm, request.params)
        if not isinstance(checked, Client):
            return checked
        action = html.escape(request.path + "?" + urlencode(request.params), quote=True)
        message = f'<p class="error">{html.escape(error)}</p>' if error else ""
        page = (
            "<!doctype html><html><head><title>Sign in</title></head><body>"
            f"<h1>Sign in to {html.escape(realm.name)}</h1>{message}"
            f'<form id="kc-form-login" method="post" action="{action}">'
            '<input name="username" id="username" autocomplete="username">'
            '<input name="password" id="password" type="password" autocomplete="current-password">'
            '<input type="submit" name="login" value="Sign In">'
            "</form></body></html>"
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()

    def _auth_submit(self, realm: Realm, request: _Request) -> Reply:
        checked = self._auth_check(realm, request.params)
        if not isinstance(checked, Client):
            return checked
        form = _form(request.body)
        user = realm.user_by_name(form.get("username", ""))
        password = form.get("password", "")
        if (
            user is None
            or user.password is None
            or not user.enabled
            or not hmac.compare_digest(password.encode(), user.password.encode())
        ):
            return self._auth_form(realm, request, "Invalid username or password.")
        params = request.params
        session = realm.start_session(user, checked.client_id)
        code = realm.new_code(
            checked.client_id,
            params["redirect_uri"],
            params.get("code_challenge") or None,
            params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else None),
            params.get("nonce"),
            session,
            params.get("scope") or "openid",
        )
        reply = {"state": params.get("state", ""), "session_state": session.id, "iss": realm.issuer, "code": code}
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return _empty(302, {"Location": params["redirect_uri"] + separator + urlencode(reply)})

    # ------------------------------------------------------------ admin API

    def _admin_guard(self, realm: Realm, request: _Request) -> Reply | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        for issuing in (realm, self.realms.get("master")):
            if issuing is None or not token:
                continue
            claims = issuing.decode(token)
            if claims is None or claims.get("typ") != "Bearer" or not issuing.session_active(claims):
                continue
            roles = set(claims.get("resource_access", {}).get("realm-management", {}).get("roles", []))
            roles |= set(claims.get("realm_access", {}).get("roles", []))
            if roles & {"manage-users", "realm-admin", "admin"}:
                return None
            return _json(403, {"error": "HTTP 403 Forbidden"})
        return _json(401, {"error": "HTTP 401 Unauthorized"})

    def _user(self, realm: Realm, uid: str) -> User | None:
        user = realm.users.get(uid)
        return user if user is not None and user.service_account_client is None else None

    def _users_list(self, realm: Realm, request: _Request) -> Reply:
        params = request.params
        users = sorted((u for u in realm.users.values() if u.service_account_client is None), key=lambda u: u.username)
        exact = params.get("exact") == "true"
        if "username" in params:
            wanted = params["username"].lower()
            users = [u for u in users if (u.username == wanted if exact else wanted in u.username)]
        if "email" in params:
            wanted = params["email"].lower()
            users = [
                u for u in users if u.email and (u.email.lower() == wanted if exact else wanted in u.email.lower())
            ]
        if params.get("search"):
            wanted = params["search"].lower().strip("*")
            users = [
                u
                for u in users
                if any(wanted in (v or "").lower() for v in (u.username, u.email, u.first_name, u.last_name))
            ]
        first, most = _int(params.get("first"), 0), _int(params.get("max"), 100)
        return _json(200, [u.representation() for u in users[first : first + most]])

    def _users_count(self, realm: Realm, request: _Request) -> Reply:
        return _json(200, sum(1 for u in realm.users.values() if u.service_account_client is None))

    def _users_create(self, realm: Realm, request: _Request) -> Reply:
        data = _body_json(request)
        if not isinstance(data, dict) or not isinstance(data.get("username"), str) or not data["username"].strip():
            return _json(400, {"errorMessage": "User name is missing"})
        username = data["username"].strip().lower()
        if realm.user_by_name(username) is not None:
            return _json(409, {"errorMessage": "User exists with same username"})
        email = data.get("email")
        if email and any(u.email and u.email.lower() == str(email).lower() for u in realm.users.values()):
            return _json(409, {"errorMessage": "User exists with same email"})
        user = realm.add_user(
            username,
            None,
            email=email,
            first_name=data.get("firstName"),
            last_name=data.get("lastName"),
            enabled=bool(data.get("enabled", False)),
        )
        user.attributes = _attributes(data.get("attributes"))
        for credential in data.get("credentials") or []:
            if isinstance(credential, dict) and credential.get("type") == "password":
                user.password = str(credential.get("value", ""))
                user.temporary_password = bool(credential.get("temporary", False))
        for path in data.get("groups") or []:
            group = realm.group_by_path(str(path))
            if group is None:
                del realm.users[user.id]
                return _json(400, {"errorMessage": f"Group {path} not found"})
            user.groups.add(group.id)
        location = f"{self.url}admin/realms/{realm.name}/users/{user.id}"
        return _empty(201, {"Location": location})

    def _user_get(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        return _json(200, user.representation())

    def _user_update(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        data = _body_json(request)
        if not isinstance(data, dict):
            return _json(400, {"errorMessage": "Invalid body"})
        if data.get("email") and any(
            u is not user and u.email and u.email.lower() == str(data["email"]).lower() for u in realm.users.values()
        ):
            return _json(409, {"errorMessage": "User exists with same email"})
        if "firstName" in data:
            user.first_name = data["firstName"]
        if "lastName" in data:
            user.last_name = data["lastName"]
        if "email" in data:
            user.email = data["email"] or None
        if "enabled" in data:
            user.enabled = bool(data["enabled"])
            if not user.enabled:
                realm.end_sessions(user.id)
        if "attributes" in data:
            user.attributes = _attributes(data["attributes"])
        return _empty(204)

    def _user_delete(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        realm.end_sessions(user.id)
        del realm.users[user.id]
        return _empty(204)

    def _user_password(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        data = _body_json(request)
        if not isinstance(data, dict) or not data.get("value"):
            return _json(400, {"error": "invalidPasswordMinLengthMessage", "errorMessage": "Invalid password"})
        user.password = str(data["value"])
        user.temporary_password = bool(data.get("temporary", False))
        return _empty(204)

    def _user_logout(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        realm.end_sessions(user.id)
        return _empty(204)

    def _user_roles(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        roles = [realm.roles[r].representation(realm.id) for r in sorted(user.realm_roles) if r in realm.roles]
        return _json(200, roles)

    def _user_roles_composite(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        names = realm.effective_realm_roles(user)
        return _json(200, [realm.roles[r].representation(realm.id) for r in names if r in realm.roles])

    def _role_names(self, realm: Realm, request: _Request) -> list[str] | Reply:
        data = _body_json(request)
        if not isinstance(data, list):
            return _json(400, {"errorMessage": "Invalid body"})
        names = []
        for item in data:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or name not in realm.roles:
                return _json(404, {"error": "Role not found"})
            names.append(name)
        return names

    def _user_roles_add(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        names = self._role_names(realm, request)
        if not isinstance(names, list):
            return names
        user.realm_roles.update(names)
        return _empty(204)

    def _user_roles_remove(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        names = self._role_names(realm, request)
        if not isinstance(names, list):
            return names
        user.realm_roles.difference_update(names)
        return _empty(204)

    def _group_rep(self, realm: Realm, group_id: str) -> dict[str, Any]:
        group = realm.groups[group_id]
        children = [g for g in realm.groups.values() if g.parent == group.id]
        return {
            "id": group.id,
            "name": group.name,
            "path": realm.group_path(group),
            "subGroupCount": len(children),
            "subGroups": [],
            "attributes": {},
            "realmRoles": [],
            "clientRoles": {},
            **({"parentId": group.parent} if group.parent else {}),
        }

    def _user_groups(self, realm: Realm, request: _Request, uid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        groups = sorted((g for g in user.groups if g in realm.groups), key=lambda g: realm.group_path(realm.groups[g]))
        first, most = _int(request.params.get("first"), 0), _int(request.params.get("max"), 100)
        return _json(200, [self._group_rep(realm, g) for g in groups][first : first + most])

    def _user_group_add(self, realm: Realm, request: _Request, uid: str, gid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        if gid not in realm.groups:
            return _json(404, {"error": "Group not found"})
        user.groups.add(gid)
        return _empty(204)

    def _user_group_remove(self, realm: Realm, request: _Request, uid: str, gid: str) -> Reply:
        user = self._user(realm, uid)
        if user is None:
            return _json(404, {"error": "User not found"})
        if gid not in realm.groups:
            return _json(404, {"error": "Group not found"})
        user.groups.discard(gid)
        return _empty(204)

    def _roles_list(self, realm: Realm, request: _Request) -> Reply:
        roles = sorted(realm.roles.values(), key=lambda r: r.name)
        if request.params.get("search"):
            roles = [r for r in roles if request.params["search"].lower() in r.name.lower()]
        first, most = _int(request.params.get("first"), 0), _int(request.params.get("max"), 100)
        return _json(200, [r.representation(realm.id) for r in roles][first : first + most])

    def _roles_create(self, realm: Realm, request: _Request) -> Reply:
        data = _body_json(request)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            return _json(400, {"errorMessage": "Role name is missing"})
        if data["name"] in realm.roles:
            return _json(409, {"errorMessage": f"Role with name {data['name']} already exists"})
        realm.add_role(data["name"], str(data.get("description") or ""))
        return _empty(201, {"Location": f"{self.url}admin/realms/{realm.name}/roles/{data['name']}"})

    def _role_get(self, realm: Realm, request: _Request, name: str) -> Reply:
        role = realm.roles.get(name)
        if role is None:
            return _json(404, {"error": "Could not find role"})
        return _json(200, role.representation(realm.id))

    def _role_users(self, realm: Realm, request: _Request, name: str) -> Reply:
        if name not in realm.roles:
            return _json(404, {"error": "Could not find role"})
        users = [u for u in realm.users.values() if name in u.realm_roles and u.service_account_client is None]
        return _json(200, [u.representation() for u in sorted(users, key=lambda u: u.username)])

    def _groups_list(self, realm: Realm, request: _Request) -> Reply:
        top = sorted((g for g in realm.groups.values() if g.parent is None), key=lambda g: g.name)
        if request.params.get("search"):
            top = [g for g in top if request.params["search"].lower() in g.name.lower()]
        first, most = _int(request.params.get("first"), 0), _int(request.params.get("max"), 100)
        return _json(200, [self._group_rep(realm, g.id) for g in top][first : first + most])

    def _groups_create(self, realm: Realm, request: _Request, parent: str | None = None) -> Reply:
        data = _body_json(request)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            return _json(400, {"errorMessage": "Group name is missing"})
        if any(g.name == data["name"] and g.parent == parent for g in realm.groups.values()):
            return _json(409, {"errorMessage": f"Top level group named '{data['name']}' already exists."})
        group = realm.add_group(data["name"], parent)
        return _empty(201, {"Location": f"{self.url}admin/realms/{realm.name}/groups/{group.id}"})

    def _group_get(self, realm: Realm, request: _Request, gid: str) -> Reply:
        if gid not in realm.groups:
            return _json(404, {"error": "Could not find group by id"})
        return _json(200, self._group_rep(realm, gid))

    def _group_children(self, realm: Realm, request: _Request, gid: str) -> Reply:
        if gid not in realm.groups:
            return _json(404, {"error": "Could not find group by id"})
        children = sorted((g for g in realm.groups.values() if g.parent == gid), key=lambda g: g.name)
        return _json(200, [self._group_rep(realm, g.id) for g in children])

    def _group_child_create(self, realm: Realm, request: _Request, gid: str) -> Reply:
        if gid not in realm.groups:
            return _json(404, {"error": "Could not find group by id"})
        return self._groups_create(realm, request, parent=gid)

    def _group_members(self, realm: Realm, request: _Request, gid: str) -> Reply:
        if gid not in realm.groups:
            return _json(404, {"error": "Could not find group by id"})
        members = [u for u in realm.users.values() if gid in u.groups and u.service_account_client is None]
        first, most = _int(request.params.get("first"), 0), _int(request.params.get("max"), 100)
        reps = [u.representation() for u in sorted(members, key=lambda u: u.username)]
        return _json(200, reps[first : first + most])

    def _group_by_path(self, realm: Realm, request: _Request, path: str) -> Reply:
        group = realm.group_by_path(path)
        if group is None:
            return _json(404, {"error": "Group path does not exist"})
        return _json(200, self._group_rep(realm, group.id))


class _Request:
    __slots__ = ("body", "headers", "method", "params", "path")

    def __init__(self, method: str, path: str, params: Form, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.params = params
        self.headers = headers
        self.body = body


def _html_error(status: int, message: str) -> Reply:
    page = f"<!doctype html><html><body><p id='kc-error-message'>{html.escape(message)}</p></body></html>"
    return status, {"Content-Type": "text/html; charset=utf-8"}, page.encode()


def _body_json(request: _Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value not in (None, "") else default
    except ValueError:
        return default


def _attributes(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in value.items()}


def new_id() -> str:
    """A Keycloak-like id."""
    return str(uuid.uuid4())
