"""Helpers for the web tests: real servers on free loopback ports, and two test providers.

* :func:`run_uvicorn` / :func:`run_werkzeug`: serve an app in a thread on 127.0.0.1.
* :class:`MemoryUsersProvider` (type ``memusers``): passwords in memory, full user management.
* :class:`FakeSSOProvider` (type ``fakesso``): the SingleSignOn capability against
  :func:`fake_idp_app`, a minimal OpenID-Connect-like authorization endpoint served over real
  HTTP that auto-approves ``login_hint`` and checks PKCE S256 when the code is redeemed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode

from pydantic import Field

from authcore import (
    AuthorizationCodeCredentials,
    AuthorizationRequest,
    Credentials,
    Identity,
    InvalidCredentials,
    NewUser,
    PasswordCredentials,
    Provider,
    ProviderConfig,
    ProviderUnavailable,
    Registration,
    SecondFactor,
    SelfUpdate,
    SingleSignOn,
    UpstreamSessions,
    UserExists,
    UserManagement,
    UserNotFound,
    UserUpdate,
)
from authcore.testing import servers

# The servers come from the test kit, under the names the web tests use.
free_port = servers.free_port
run_uvicorn = servers.run_asgi
run_werkzeug = servers.run_wsgi


def raw_status(base_url: str, path: str, header_lines: Sequence[bytes], method: bytes = b"GET") -> int:
    """Send a hand-written HTTP/1.1 request (headers no client library would send); return the status.

    A server that drops the connection instead of answering counts as 400 (a refusal, not a 500).
    """
    host, _, port = base_url.removeprefix("http://").partition(":")
    request = b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, path.encode(), host.encode())
    request += b"".join(line + b"\r\n" for line in header_lines) + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if not data.startswith(b"HTTP/1."):
        return 400
    return int(data.split(b" ", 2)[1])


# --------------------------------------------------------------------------- user management


class MemoryUsersConfig(ProviderConfig):
    """Initial users: login → password."""

    users: dict[str, str] = Field(default_factory=dict)
    roles: dict[str, list[str]] = Field(default_factory=dict)


class MemoryUsersProvider(Provider, UserManagement):
    """Users in memory with every user-management operation except ``self_register`` when closed."""

    type = "memusers"
    Config = MemoryUsersConfig
    credential_types = (PasswordCredentials,)

    def __init__(self, name: str, config: ProviderConfig) -> None:
        super().__init__(name, config)
        assert isinstance(config, MemoryUsersConfig)
        self.users: dict[str, dict[str, Any]] = {
            login: {"password": pw, "roles": list(config.roles.get(login, [])), "enabled": True, "attrs": {}}
            for login, pw in config.users.items()
        }
        self.lock = threading.Lock()

    def authenticate(self, credentials: Credentials) -> Identity:
        assert isinstance(credentials, PasswordCredentials)
        user = self.users.get(credentials.login)
        password = credentials.password.get_secret_value()
        ok = secrets.compare_digest(password.encode(), (user or {"password": "\x00decoy"})["password"].encode())
        if user is None or not ok or not user["enabled"]:
            raise InvalidCredentials()
        return self._identity(credentials.login)

    def _identity(self, login: str) -> Identity:
        user = self.users.get(login)
        if user is None:
            raise UserNotFound()
        return Identity(login=login, groups=tuple(user["roles"]), **user["attrs"])

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        logins = sorted(u for u in self.users if not search or search in u)[offset : offset + limit]
        return [self._identity(u) for u in logins]

    def get_user(self, login: str) -> Identity:
        return self._identity(login)

    def create_user(self, user: NewUser) -> Identity:
        with self.lock:
            if user.login in self.users:
                raise UserExists()
            password = user.password.get_secret_value() if user.password else secrets.token_hex(8)
            self.users[user.login] = {"password": password, "roles": list(user.roles), "enabled": True, "attrs": {}}
        return self._identity(user.login)

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        self._identity(login)
        attrs = changes.model_dump(exclude_none=True, exclude={"attributes"})
        self.users[login]["attrs"].update(attrs)
        return self._identity(login)

    def enable_user(self, login: str) -> None:
        self._identity(login)
        self.users[login]["enabled"] = True

    def disable_user(self, login: str) -> None:
        self._identity(login)
        self.users[login]["enabled"] = False

    def delete_user(self, login: str) -> None:
        self._identity(login)
        del self.users[login]

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        self._identity(login)
        self.users[login]["roles"] = sorted({*self.users[login]["roles"], *roles})

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        self._identity(login)
        self.users[login]["roles"] = [r for r in self.users[login]["roles"] if r not in roles]

    def self_register(self, registration: Registration) -> Identity:
        return self.create_user(NewUser(login=registration.login, password=registration.password))

    def self_update(self, login: str, changes: SelfUpdate) -> Identity:
        self._identity(login)
        if changes.password is not None:
            self.users[login]["password"] = changes.password.get_secret_value()
        attrs = changes.model_dump(exclude_none=True, exclude={"password"})
        self.users[login]["attrs"].update(attrs)
        return self._identity(login)


# --------------------------------------------------------------------------- single sign-on

#: code → what the fake identity provider remembered when it issued it.
ISSUED_CODES: dict[str, dict[str, str]] = {}
#: Logout requests seen by the fake identity provider.
LOGOUTS: list[str] = []


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeSSOConfig(ProviderConfig):
    """Where the fake identity provider listens."""

    issuer: str
    client_id: str = "authcore-test"
    login_hint: str = "sso-user"


class FakeSSOProvider(Provider, SingleSignOn):
    """Authorization code flow with PKCE S256 against :func:`fake_idp_app`."""

    type = "fakesso"
    Config = FakeSSOConfig
    credential_types = (AuthorizationCodeCredentials,)

    def _config(self) -> FakeSSOConfig:
        assert isinstance(self.config, FakeSSOConfig)
        return self.config

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        config = self._config()
        state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
        query = urlencode(
            {
                "response_type": "code",
                "client_id": config.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "nonce": nonce,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
                "login_hint": config.login_hint,
            }
        )
        return AuthorizationRequest(
            url=f"{config.issuer}/authorize?{query}",
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
        )

    def authenticate(self, credentials: Credentials) -> Identity:
        if not isinstance(credentials, AuthorizationCodeCredentials):
            raise InvalidCredentials()
        issued = ISSUED_CODES.pop(credentials.code, None)
        if (
            issued is None
            or credentials.code_verifier is None
            or s256(credentials.code_verifier) != issued["challenge"]
            or issued["redirect_uri"] != credentials.redirect_uri
            or issued["nonce"] != credentials.nonce
        ):
            raise InvalidCredentials()
        return Identity(login=issued["login"], groups=("sso",), permissions=("read",))

    def logout_url(self, identity: Identity, post_logout_redirect_uri: str | None = None) -> str | None:
        query = urlencode({"post_logout_redirect_uri": post_logout_redirect_uri or "", "login": identity.login})
        return f"{self._config().issuer}/logout?{query}"


def fake_idp_app() -> Any:
    """The fake identity provider: ``/authorize`` auto-approves, ``/logout`` records and redirects back."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("state"):
            return PlainTextResponse("PKCE S256 and state required", status_code=400)
        code = secrets.token_urlsafe(24)
        ISSUED_CODES[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "nonce": q.get("nonce", ""),
            "login": q.get("login_hint", "sso-user"),
        }
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return RedirectResponse(f"{q['redirect_uri']}{sep}{urlencode({'code': code, 'state': q['state']})}", 302)

    async def logout(request: Request) -> Response:
        LOGOUTS.append(request.query_params.get("login", ""))
        target = request.query_params.get("post_logout_redirect_uri")
        return RedirectResponse(target, 302) if target else PlainTextResponse("signed out")

    return Starlette(routes=[Route("/authorize", authorize), Route("/logout", logout)])


MEMUSERS = f"{__name__}:MemoryUsersProvider"
FAKESSO = f"{__name__}:FakeSSOProvider"


class Gate:
    """Holds a login in :class:`SlowProvider` until the test lets it go: ``entered`` is set when
    a login reaches the provider, which then waits (at most 30 s) for ``release``."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


class SlowProvider(Provider):
    """A blocking provider: every login sleeps (an LDAP server far away), or, while a test has
    set :attr:`gate`, waits until the test releases it."""

    type = "slow"
    credential_types = (PasswordCredentials,)
    delay = 0.6
    gate: ClassVar[Gate | None] = None

    def authenticate(self, credentials: Credentials) -> Identity:
        assert isinstance(credentials, PasswordCredentials)
        gate = self.gate
        if gate is None:
            time.sleep(self.delay)
        else:
            gate.entered.set()
            if not gate.release.wait(30):
                raise RuntimeError("the test never released the held login")
        return Identity(login=credentials.login, permissions=("read",))


SLOW = f"{__name__}:SlowProvider"


class SlowUpstreamProvider(SlowProvider, UpstreamSessions):
    """A blocking provider that keeps a session upstream (Keycloak far away): a refresh asks it,
    and it notes whether that ran on an event loop's thread."""

    type = "slow-upstream"
    on_a_loop: ClassVar[list[bool]] = []

    def refresh_upstream(self, identity: Identity) -> Identity:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            type(self).on_a_loop.append(False)
        else:
            type(self).on_a_loop.append(True)
        return identity


SLOW_UPSTREAM = f"{__name__}:SlowUpstreamProvider"


class InstantProvider(Provider, SecondFactor):
    """A provider that answers without waiting (``blocking = False``), so logins through it are
    counted by the throttle after its answer (WebCore.login). Password ``right`` logs in (a
    login starting ``mfa-`` then needs a second factor); ``down`` is an outage; anything else
    is wrong. Every password it is asked about is recorded in :attr:`asked`."""

    type = "instant"
    blocking = False
    credential_types = (PasswordCredentials,)
    asked: list[str] = []

    def authenticate(self, credentials: Credentials) -> Identity:
        assert isinstance(credentials, PasswordCredentials)
        password = credentials.password.get_secret_value()
        type(self).asked.append(password)
        if password == "down":
            raise ProviderUnavailable("directory down")
        if password != "right":
            raise InvalidCredentials()
        return Identity(login=credentials.login, permissions=("read",))

    def second_factor_methods(self, identity: Identity) -> tuple[str, ...]:
        return ("totp",) if identity.login.startswith("mfa-") else ()


class WaitingProvider(InstantProvider):
    """:class:`InstantProvider` declared blocking: its logins reserve a throttle count first."""

    type = "waiting"
    blocking = True
    asked: list[str] = []


INSTANT = f"{__name__}:InstantProvider"
WAITING = f"{__name__}:WaitingProvider"


class AliasProvider(Provider):
    """A directory that maps aliases onto accounts: any login starting with ``alice`` is alice.

    Stands for what LDAP or Keycloak do that :func:`authcore.web.common.canonical_login` does
    not know about (mail addresses, aliases, server-side normalisation). Password ``pw``.
    """

    type = "alias"
    credential_types = (PasswordCredentials,)

    def authenticate(self, credentials: Credentials) -> Identity:
        assert isinstance(credentials, PasswordCredentials)
        ok = secrets.compare_digest(credentials.password.get_secret_value().encode(), b"pw")
        if not ok or not credentials.login.startswith("alice"):
            raise InvalidCredentials()
        return Identity(login="alice", permissions=("read",))


ALIAS = f"{__name__}:AliasProvider"
