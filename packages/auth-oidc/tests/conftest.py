"""Fixtures: panva's oidc-provider started by :mod:`auth_oidc.testing` (real node process, loopback port),
the Keycloak-compatible test server, and the helpers of the provider's own tests."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from auth_keycloak.testing.pytest_plugin import keycloak_realm, keycloak_server  # noqa: F401
from auth_oidc import OIDCConfig, OIDCProvider
from auth_oidc.testing import CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS, OidcProviderServer
from auth_oidc.testing.flow import drive_login
from authcore import AuthorizationCodeCredentials, AuthorizationRequest
from authcore.testing.tls import make_test_ca

pytest_plugins = ["auth_oidc.testing.pytest_plugin"]

# ---------------------------------------------------------------- provider tests (auth_oidc itself)


REDIRECT_URI = REDIRECT_URIS[0]


def provider_settings(issuer: str, /, **overrides: Any) -> dict[str, Any]:
    """The ``config:`` mapping of an ``oidc`` provider for the fixtures' client at *issuer*."""
    settings: dict[str, Any] = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "openid profile email groups",
        "timeout": 5,
    }
    settings.update(overrides)
    return settings


def manager_config(issuer: str, /, **overrides: Any) -> dict[str, Any]:
    """An authcore configuration with one ``oidc`` provider called ``sso``."""
    return {
        "providers": [{"name": "sso", "type": "oidc", "config": provider_settings(issuer, **overrides)}],
        "permissions": {"groups": {"staff": ["staff_area"], "mx": ["mx_area"], "users": ["own_proposals"]}},
    }


@dataclass
class FakeClock:
    """Wall and monotonic time that move only when a test says so (starts at the real time)."""

    now: float = field(default_factory=time.time)

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A clock that stands still until advanced."""
    return FakeClock()


@pytest.fixture
def make_provider() -> Iterator[Callable[..., OIDCProvider]]:
    """``make_provider(issuer, clock=None, **settings)``: a provider called ``sso``, closed after the test."""
    made: list[OIDCProvider] = []

    def make(issuer: str, /, *, clock: FakeClock | None = None, **settings: Any) -> OIDCProvider:
        config = OIDCConfig.model_validate(provider_settings(issuer, **settings))
        times = {"clock": clock.time, "monotonic": clock.monotonic} if clock is not None else {}
        provider = OIDCProvider("sso", config, **times)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def count_requests(provider: OIDCProvider) -> list[str]:
    """The URLs the provider requests from now on (an httpx event hook on its client)."""
    seen: list[str] = []
    provider.http.client().event_hooks["request"].append(lambda request: seen.append(str(request.url)))
    return seen


def browser_login(
    request: AuthorizationRequest, *, login: str = "alice", password: str = "alice-password"
) -> dict[str, str]:
    """Sign in at the test server's login page; the query of the redirect back (``code``, ``state``, ``iss``)."""
    with httpx.Client(follow_redirects=False, timeout=10.0, trust_env=False) as browser:
        back = drive_login(browser, request.url, login=login, password=password, redirect_uri=request.redirect_uri)
    return {name: values[0] for name, values in parse_qs(urlsplit(back).query).items()}


def code_credentials(
    request: AuthorizationRequest, answer: dict[str, str], **changes: Any
) -> AuthorizationCodeCredentials:
    """The credentials the web layer would hand to the provider for *answer*."""
    values: dict[str, Any] = {
        "code": answer["code"],
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.code_verifier,
        "nonce": request.nonce,
        "issuer": answer.get("iss"),
    }
    values.update(changes)
    return AuthorizationCodeCredentials(**values)


def server_tokens(server: OidcProviderServer, login: str = "alice", password: str | None = None) -> dict[str, Any]:
    """A token answer of the password grant, asked directly (the server must run with ``password_grant=True``)."""
    document = httpx.get(server.discovery_url, timeout=10.0).json()
    answer = httpx.post(
        document["token_endpoint"],
        data={
            "grant_type": "password",
            "username": login,
            "password": password or f"{login}-password",
            "scope": "openid profile email groups",
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10.0,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


# ---------------------------------------------------------------- a small issuer whose answers tests write


class Kit:
    """The helpers above, for test modules (importlib mode: a test module cannot import this conftest)."""

    redirect_uri = REDIRECT_URI
    provider_settings = staticmethod(provider_settings)
    manager_config = staticmethod(manager_config)
    count_requests = staticmethod(count_requests)
    browser_login = staticmethod(browser_login)
    code_credentials = staticmethod(code_credentials)
    server_tokens = staticmethod(server_tokens)


@pytest.fixture
def kit() -> Kit:
    """:class:`Kit`: configuration builders, the browser login, request counting."""
    return Kit()


@dataclass
class Route:
    """One fixed answer of :class:`StaticIssuer`."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    #: Whether to send ``Content-Length`` (without it the body ends when the connection closes).
    length: bool = True


class StaticIssuer:
    """A loopback HTTP(S) server that answers each path as a test says (discovery, JWKS, odd answers).

    For what oidc-provider cannot be made to do: a document naming another issuer, a JWKS of a
    thousand keys or of garbage, an answer slower than the timeout, a redirect, a huge body.
    ``hits`` counts requests per path.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.tls = tls
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return None

            def _answer(self) -> None:
                path = urlsplit(self.path).path
                owner.hits[path] += 1
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                route = owner.routes.get(path, Route(404, b'{"error":"not_found"}'))
                if route.delay:
                    time.sleep(route.delay)
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    if route.length:
                        self.send_header("Content-Length", str(len(route.body)))
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            do_GET = do_POST = _answer

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a handler sleeping past a client's timeout must not hold up stop()
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)

    @property
    def issuer(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StaticIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def json(self, path: str, document: Any, status: int = 200, **options: Any) -> None:
        """Answer *path* with *document* as JSON."""
        self.routes[path] = Route(status, json.dumps(document).encode(), **options)

    def raw(self, path: str, body: bytes, status: int = 200, **options: Any) -> None:
        """Answer *path* with *body* as it is (options: the fields of :class:`Route`)."""
        self.routes[path] = Route(status, body, **options)

    def openid(self, jwks: Any, *, issuer: str | None = None, **document: Any) -> dict[str, Any]:
        """Serve a discovery document (endpoints on this server, overridable) and *jwks* at ``/jwks``."""
        base = self.issuer
        doc: dict[str, Any] = {
            "issuer": issuer or base,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "userinfo_endpoint": f"{base}/me",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        doc.update(document)
        self.json("/.well-known/openid-configuration", doc)
        self.json("/jwks", jwks)
        return doc


@pytest.fixture
def static_issuer() -> Iterator[StaticIssuer]:
    """A running :class:`StaticIssuer` (plain HTTP) with no routes yet."""
    issuer = StaticIssuer().start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def tls_issuer(tmp_path: Path) -> Iterator[tuple[StaticIssuer, str]]:
    """A :class:`StaticIssuer` over HTTPS for 127.0.0.1, and the file of the test CA that signed it."""
    files = make_test_ca(tmp_path, hostnames=("127.0.0.1",))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.certificate, files.key)
    issuer = StaticIssuer(tls=context).start()
    try:
        yield issuer, str(files.ca_file)
    finally:
        issuer.stop()
