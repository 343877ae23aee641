"""Issue 9, the web layer: one error contract on both adapters over real HTTP, query tokens on
websockets only and redacted from server logs, CSRF bound to the session, the pages' CSP,
user administration per provider instance, and one canonical login for throttling."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
import websockets
from conftest import SECRET
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from flask import Flask

from authcore import AuthManager, VerifiedToken, hookimpl
from authcore.web.common import Throttle, Throttled, WebSettings, canonical_login
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth
from authcore.web.logfilter import RedactTokens, install_log_redaction, redact_query_tokens
from authcore.web.service import create_app

PREFIX = "/api"
ADAPTERS = ("fastapi", "flask")


def config() -> dict[str, Any]:
    """Two user-managing instances (local, other), the dummy, and a directory with aliases."""
    return {
        "tokens": {"secret": SECRET},
        "providers": [
            {"name": "dummy", "type": "dummy"},
            {
                "name": "local",
                "class": support.MEMUSERS,
                "config": {
                    "users": {"alice": "wonderland", "admin": "adminpw", "ladmin": "ladminpw"},
                    "roles": {"admin": ["admin"], "ladmin": ["ladmin"], "alice": ["staff"]},
                },
            },
            {"name": "other", "class": support.MEMUSERS, "config": {"users": {"olga": "olgapw"}}},
            {"name": "alias", "class": support.ALIAS},
        ],
        "permissions": {
            "groups": {"admin": ["users:admin", "read"], "ladmin": ["users:admin:local"], "staff": ["read"]}
        },
    }


class SessionLog:
    """Records the login and logout hooks: which sessions were handed out and which were ended."""

    def __init__(self) -> None:
        self.succeeded: list[str] = []
        self.logouts: list[str] = []

    @hookimpl
    def authcore_login_succeeded(self, identity: Any, provider: str) -> None:
        self.succeeded.append(identity.login)

    @hookimpl
    def authcore_logout(self, session_id: str, login: str) -> None:
        self.logouts.append(login)


def fastapi_app(manager: AuthManager, settings: WebSettings) -> FastAPI:
    auth = FastAPIAuth(manager, settings)
    app = FastAPI()
    auth.install(app)

    @app.get(f"{PREFIX}/protected")
    async def protected(user: VerifiedToken = Depends(auth.current_user(["read"]))) -> dict[str, str]:
        return {"login": user.login}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, result: Any = Depends(auth.websocket_auth())) -> None:
        if result is None:
            return
        await websocket.accept()
        await websocket.send_json({"login": websocket.state.authcore_user.login})
        await websocket.close()

    return app


def flask_app(manager: AuthManager, settings: WebSettings) -> Flask:
    app = Flask("hardening")
    app.secret_key = "flask-hardening-" + "z" * 30
    auth = FlaskAuth(manager, app, settings)

    @app.get(f"{PREFIX}/protected")
    @auth.login_required(["read"])
    def protected() -> dict[str, str]:
        return {"login": auth.current_user.login}

    return app


def settings() -> WebSettings:
    return WebSettings(
        prefix=PREFIX, query_token="token", throttle=Throttle(max_per_login=3, max_per_address=10_000, window=600)
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[str, SessionLog]]]:
    managers = {name: AuthManager.from_config(config()) for name in ADAPTERS}
    logs = {name: SessionLog() for name in ADAPTERS}
    for name in ADAPTERS:
        managers[name].plugins.register(logs[name])
    with (
        support.run_uvicorn(fastapi_app(managers["fastapi"], settings())) as fast,
        support.run_werkzeug(flask_app(managers["flask"], settings())) as flask,
    ):
        yield {"fastapi": (fast, logs["fastapi"]), "flask": (flask, logs["flask"])}
    for manager in managers.values():
        manager.close()


def login(client: httpx.Client, plugin: str, user: str, password: str) -> httpx.Response:
    return client.post(f"{PREFIX}/auth/login", json={"plugin": plugin, "login": user, "password": password})


def token_of(client: httpx.Client, plugin: str, user: str, password: str) -> str:
    response = login(client, plugin, user, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def expired(token: str) -> str:
    """*token* re-signed (with the real secret) with a lifetime that ended an hour ago."""
    header, payload, _signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def throttled(client: httpx.Client) -> httpx.Response:
    for _ in range(3):
        assert login(client, "local", "eve-locked", "bad").status_code == 401
    return login(client, "local", "eve-locked", "bad")


LOGIN = f"{PREFIX}/auth/login"
JSON = {"content-type": "application/json"}
Case = Callable[[httpx.Client], httpx.Response]

#: name → (request, expected status, expected code)
CASES: dict[str, tuple[Case, int, str]] = {
    "no token": (lambda c: c.get(f"{PREFIX}/protected"), 401, "not_authenticated"),
    "logout without token": (lambda c: c.post(f"{PREFIX}/auth/logout"), 401, "not_authenticated"),
    "bad token": (lambda c: c.get(f"{PREFIX}/protected", headers=bearer("not.a.jwt")), 401, "invalid_token"),
    "malformed header": (
        lambda c: c.get(f"{PREFIX}/protected", headers={"Authorization": "Basic abc"}),
        401,
        "invalid_token",
    ),
    "expired token": (
        lambda c: c.get(f"{PREFIX}/protected", headers=bearer(expired(token_of(c, "dummy", "x", "read")))),
        401,
        "token_expired",
    ),
    "forbidden": (
        lambda c: c.get(f"{PREFIX}/protected", headers=bearer(token_of(c, "dummy", "x", "write"))),
        403,
        "forbidden",
    ),
    "query token on an HTTP route": (
        lambda c: c.get(f"{PREFIX}/protected", params={"token": token_of(c, "dummy", "x", "read")}),
        401,
        "invalid_token",
    ),
    "body not JSON": (lambda c: c.post(LOGIN, content=b"not json", headers=JSON), 400, "bad_request"),
    "body not an object": (lambda c: c.post(LOGIN, content=b"[1, 2]", headers=JSON), 400, "bad_request"),
    "bad field shape": (
        lambda c: c.post(LOGIN, json={"plugin": "dummy", "login": "a", "password": "x" * 5000}),
        422,
        "bad_request",
    ),
    "unknown provider": (
        lambda c: c.post(LOGIN, json={"plugin": "nope", "login": "a", "password": "b"}),
        400,
        "unknown_provider",
    ),
    "missing plugin": (lambda c: c.post(LOGIN, json={"login": "a", "password": "b"}), 400, "unknown_provider"),
    "null plugin": (
        lambda c: c.post(LOGIN, json={"plugin": None, "login": "a", "password": "b"}),
        400,
        "unknown_provider",
    ),
    "empty plugin": (
        lambda c: c.post(LOGIN, json={"plugin": "", "login": "a", "password": "b"}),
        400,
        "unknown_provider",
    ),
    "plugin not a string": (
        lambda c: c.post(LOGIN, json={"plugin": 5, "login": "a", "password": "b"}),
        400,
        "unknown_provider",
    ),
    "wrong password": (lambda c: login(c, "local", "alice", "nope"), 401, "invalid_credentials"),
    "unknown login": (lambda c: login(c, "local", "nobody", "nope"), 401, "invalid_credentials"),
    "throttled": (throttled, 429, "too_many_requests"),
    "too large": (lambda c: c.post(LOGIN, content=b"[" * 100_000, headers=JSON), 413, "payload_too_large"),
    "form-encoded login": (
        lambda c: c.post(LOGIN, data={"plugin": "local", "login": "alice", "password": "wonderland"}),
        415,
        "unsupported_media_type",
    ),
    "text/plain login": (
        lambda c: c.post(LOGIN, content=b'{"plugin": "dummy"}', headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    ),
    "login without content type": (
        lambda c: c.post(LOGIN, content=b'{"plugin": "dummy"}'),
        415,
        "unsupported_media_type",
    ),
    "refresh with a bad token": (
        lambda c: c.post(f"{PREFIX}/auth/refresh", json={"refresh_token": "nope"}),
        401,
        "invalid_token",
    ),
    "users without admin": (
        lambda c: c.get(f"{PREFIX}/auth/users/local", headers=bearer(token_of(c, "local", "alice", "wonderland"))),
        403,
        "forbidden",
    ),
    "user management unsupported": (
        lambda c: c.get(f"{PREFIX}/auth/users/dummy", headers=bearer(token_of(c, "local", "admin", "adminpw"))),
        501,
        "not_supported",
    ),
    "no such user": (
        lambda c: c.get(f"{PREFIX}/auth/users/local/zed", headers=bearer(token_of(c, "local", "admin", "adminpw"))),
        404,
        "user_not_found",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_both_adapters_answer_every_failure_alike(servers, case):
    request, status, code = CASES[case]
    answers = {}
    for adapter in ADAPTERS:
        with httpx.Client(base_url=servers[adapter][0], timeout=10) as client:
            answers[adapter] = request(client)
    fast, flask = answers["fastapi"], answers["flask"]
    assert fast.status_code == flask.status_code == status, (fast.text, flask.text)
    assert fast.headers["content-type"].startswith("application/json")
    assert flask.headers["content-type"].startswith("application/json")
    assert fast.json() == flask.json(), (fast.text, flask.text)
    body = fast.json()
    assert {"detail", "code"} <= set(body) <= {"detail", "code", "errors"}
    if code:
        assert body["code"] == code
    for header in ("www-authenticate", "retry-after"):
        assert (header in fast.headers) == (header in flask.headers), header
    if status == 401:
        assert fast.headers["www-authenticate"] == flask.headers["www-authenticate"]
    assert "wonderland" not in fast.text and "xxxx" not in fast.text


def test_no_token_is_not_called_a_wrong_password(servers):
    for adapter in ADAPTERS:
        response = httpx.get(f"{servers[adapter][0]}{PREFIX}/protected")
        assert response.json() == {"detail": "authentication required", "code": "not_authenticated"}
        assert response.headers["www-authenticate"] == 'Bearer realm="authcore"'  # no error= without credentials


def test_a_missing_or_unknown_plugin_names_the_enabled_providers(servers):
    for adapter in ADAPTERS:
        for body in ({"plugin": "nope"}, {}, {"plugin": None}, {"plugin": ""}):
            response = httpx.post(f"{servers[adapter][0]}{LOGIN}", json=body)
            assert response.json() == {
                "detail": "'plugin' must name an enabled provider: alias, dummy, local, other",
                "code": "unknown_provider",
            }


# --------------------------------------------------------------------------- users:admin per instance


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_instance_admin_cannot_manage_another_instance(servers, adapter):
    with httpx.Client(base_url=servers[adapter][0], timeout=10) as client:
        scoped = bearer(token_of(client, "local", "ladmin", "ladminpw"))
        everywhere = bearer(token_of(client, "local", "admin", "adminpw"))
        users = f"{PREFIX}/auth/users"
        assert client.get(f"{users}/local", headers=scoped).status_code == 200
        assert client.get(f"{users}/local/alice", headers=scoped).status_code == 200
        for method, path, body in (
            ("GET", f"{users}/other", None),
            ("GET", f"{users}/other/olga", None),
            ("POST", f"{users}/other", {"login": "mallory", "password": "pw-mallory"}),
            ("POST", f"{users}/other/olga/disable", None),
            ("DELETE", f"{users}/other/olga", None),
            ("POST", f"{users}/other/olga/roles", {"roles": ["admin"]}),
        ):
            refused = client.request(method, path, headers=scoped, json=body)
            assert refused.status_code == 403, (method, path, refused.text)
            assert refused.json()["code"] == "forbidden"
        # plain users:admin keeps meaning every instance
        assert client.get(f"{users}/other/olga", headers=everywhere).status_code == 200
        assert [u["login"] for u in client.get(f"{users}/other", headers=everywhere).json()["users"]] == ["olga"]


# --------------------------------------------------------------------------- one canonical login


@pytest.mark.parametrize(
    "variant", ["alice", "ＡＬＩＣＥ", "Alice", "ALICE", " alice ", "alıce", "alİce", "ALİCE", "al\u00adice"]
)
def test_canonical_login_collapses_the_spellings_a_directory_treats_as_one(variant):
    assert canonical_login(variant) == "alice"


def test_canonical_login_keeps_different_names_apart():
    assert len({canonical_login(n) for n in ("alice", "alicia", "bob", "al ice", "alice2")}) == 5


def test_throttle_lock_holds_for_every_variant_of_the_login():
    throttle = Throttle(max_per_login=2, max_per_address=1000)
    throttle.failure("alice", None)
    throttle.failure("alice", None)
    for variant in ("alice", "ＡＬＩＣＥ", "Alice", "alıce", "alİce"):
        with pytest.raises(Throttled):
            throttle.check(variant, None)
    throttle.check("bob", None)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_variants_of_a_locked_login_are_refused_over_http(servers, adapter):
    with httpx.Client(base_url=servers[adapter][0], timeout=10) as client:
        for _ in range(3):  # the dummy refuses a password that names no valid permission
            assert login(client, "dummy", "carol", "not a permission").status_code == 401
        for variant in ("carol", "ＣＡＲＯＬ", "Carol", "CAROL", " carol"):
            refused = login(client, "dummy", variant, "read")
            assert refused.status_code == 429, (variant, refused.text)
            assert refused.json()["code"] == "too_many_requests"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_login_the_provider_maps_onto_a_locked_account_is_refused_and_its_session_ended(servers, adapter):
    base, log = servers[adapter]
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(3):
            assert login(client, "alias", "alice", "wrong").status_code == 401
        before = (log.succeeded.count("alice"), log.logouts.count("alice"))
        refused = login(client, "alias", "alice@corp.example", "pw")  # the directory says: that is alice
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
        assert "token" not in refused.json()
        # The session the provider's success created was ended at once.
        assert (log.succeeded.count("alice"), log.logouts.count("alice")) == (before[0] + 1, before[1] + 1)
        # another, unlocked account of the same directory is not affected
        assert login(client, "dummy", "dave", "read").status_code == 200


# --------------------------------------------------------------------------- query tokens and logs


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def uvicorn_with_logs(app: Any) -> Iterator[tuple[str, Capture]]:
    """uvicorn with its own default logging (access log on), as a host app runs it."""
    import uvicorn

    port = support.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True)
    capture = Capture()
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(capture)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", capture
    finally:
        server.should_exit = True
        thread.join(10)
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(capture)


async def ws_login(url: str) -> str:
    async with websockets.connect(url) as conn:
        login_name: str = json.loads(await conn.recv())["login"]
        return login_name


def test_query_tokens_work_on_websockets_only_and_never_reach_the_server_logs():
    manager = AuthManager.from_config(config())
    redactor = install_log_redaction()
    try:
        with uvicorn_with_logs(fastapi_app(manager, settings())) as (url, capture):
            token = token_of(httpx.Client(base_url=url), "dummy", "wsuser", "read")
            # Plain HTTP: refused, whatever the token's worth.
            refused = httpx.get(f"{url}{PREFIX}/protected", params={"token": token})
            assert refused.status_code == 401 and "websocket" in refused.json()["detail"]
            assert httpx.get(f"{url}{PREFIX}/protected", headers=bearer(token)).status_code == 200
            # Websocket (browsers cannot set headers there): accepted.
            assert asyncio.run(ws_login(f"ws://127.0.0.1:{url.rsplit(':', 1)[1]}/ws?token={token}")) == "wsuser"
            httpx.get(f"{url}/nowhere", params={"code": "auth-code-123", "state": "st-456", "x": "1"})
        logged = "\n".join(capture.lines)
        assert "WebSocket /ws?token=[redacted]" in logged and f"{PREFIX}/protected?token=[redacted]" in logged
        assert token not in logged and token.split(".")[2] not in logged
        assert "auth-code-123" not in logged and "st-456" not in logged and "x=1" in logged
    finally:
        for name in ("uvicorn.access", "uvicorn.error", "gunicorn.access", "gunicorn.error", "werkzeug"):
            logging.getLogger(name).removeFilter(redactor)
        manager.close()


def test_authcore_serve_builds_its_server_with_the_redaction_installed():
    """`serve()` runs exactly this server; its loggers must redact before any handler writes."""
    from authcore.web import service

    manager = AuthManager.from_config(config())
    app = create_app(manager, WebSettings(cookie_auth=True, query_token="ticket"))
    server = service.build_server(app, host="127.0.0.1", port=support.free_port(), log_level="info")
    try:
        for name in ("uvicorn.access", "uvicorn.error"):
            filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactTokens)]
            assert filters, name
            record = logging.LogRecord(
                name,
                logging.INFO,
                __file__,
                1,
                '%s - "WebSocket %s" %s',
                ("c", "/ws?ticket=T0K3N&a=1", "[accepted]"),
                None,
            )
            assert all(f.filter(record) for f in filters)
            assert "T0K3N" not in record.getMessage()
        assert server.config.access_log is False
    finally:
        for name in ("uvicorn.access", "uvicorn.error", "gunicorn.access", "gunicorn.error", "werkzeug"):
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, RedactTokens)]:
                logger.removeFilter(f)
        manager.close()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('GET /a?token=abc.def HTTP/1.1" 200', 'GET /a?token=[redacted] HTTP/1.1" 200'),
        ("/cb?code=C&state=S&next=/", "/cb?code=[redacted]&state=[redacted]&next=/"),
        ("/x?a=1&access_token=T;refresh_token=R", "/x?a=1&access_token=[redacted];refresh_token=[redacted]"),
        ("/x?TOKEN=T", "/x?TOKEN=[redacted]"),
        ("/x%3Ftoken%3DT%26y", "/x%3Ftoken%3D[redacted]%26y"),
        ("/x?mytoken=keep&decode=keep", "/x?mytoken=keep&decode=keep"),
    ],
)
def test_redaction_of_query_values(line, expected):
    assert redact_query_tokens(line) == expected


def test_redaction_keeps_the_formatters_argument_shapes():
    """uvicorn's AccessFormatter unpacks the args tuple and formats the status with %d; gunicorn
    passes a mapping; werkzeug passes strings."""
    for args in (("1.2.3.4", "GET", "/a?token=T", "1.1", 200), {"r": "GET /a?token=T HTTP/1.1", "s": 200}):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", args, None)
        RedactTokens().filter(record)
        values = record.args.values() if isinstance(record.args, dict) else record.args
        assert 200 in values and not any(isinstance(v, str) and "=T" in v for v in values)  # type: ignore[union-attr]
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"GET /a?x=1&ticket=T HTTP/1.1" 200', (), None)
    RedactTokens(extra_names=["ticket"]).filter(record)
    assert record.getMessage() == '"GET /a?x=1&ticket=[redacted] HTTP/1.1" 200'


# --------------------------------------------------------------------------- CSRF bound to the session


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def page_login(client: TestClient, user: str, password: str) -> None:
    form = {"provider": "local", "login": user, "password": password, "csrf_token": csrf_of(client.get("/").text)}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303


def test_a_csrf_value_planted_from_another_session_is_refused():
    """Cookie tossing: a sibling subdomain may set cookies for the parent domain. Its owner signs in
    and plants his own CSRF cookie in the victim's browser; with the plain double submit the forged
    request (his value in cookie and header or form) passed."""
    manager = AuthManager.from_config(config())
    try:
        app = create_app(manager)
        victim = TestClient(app, base_url="http://127.0.0.1")
        attacker = TestClient(app, base_url="http://127.0.0.1")
        page_login(victim, "alice", "wonderland")
        page_login(attacker, "admin", "adminpw")
        planted = attacker.cookies["authcore_csrf"]
        assert planted != victim.cookies["authcore_csrf"]
        victim.cookies.set("authcore_csrf", planted, domain="127.0.0.1", path="/")
        assert victim.post("/auth/logout", headers={"X-CSRF-Token": planted}).status_code == 403
        assert victim.post("/auth/refresh", headers={"X-CSRF-Token": planted}).status_code == 403
        out = victim.post("/logout", data={"csrf_token": planted}, follow_redirects=False)
        assert out.status_code == 403
        assert victim.get("/auth/me").json()["login"] == "alice"  # still signed in
        own = csrf_of(victim.get("/").text)  # the page renders the session's own value
        assert victim.post("/logout", data={"csrf_token": own}, follow_redirects=False).status_code == 303
        assert victim.get("/auth/me").status_code == 401
    finally:
        manager.close()


def test_flask_csrf_is_kept_inside_the_signed_session():
    manager = AuthManager.from_config(config())
    try:
        app = flask_app(manager, WebSettings(prefix=PREFIX, cookie_auth=True))
        victim, attacker = app.test_client(), app.test_client()
        body = {"plugin": "local", "login": "alice", "password": "wonderland"}
        own = victim.post(LOGIN, json=body).json["csrf_token"]
        planted = attacker.post(LOGIN, json={**body, "login": "admin", "password": "adminpw"}).json["csrf_token"]
        victim.set_cookie("authcore_csrf", planted)
        assert victim.post(f"{PREFIX}/auth/logout", headers={"X-CSRF-Token": planted}).status_code == 403
        assert victim.post(f"{PREFIX}/auth/logout", headers={"X-CSRF-Token": own}).status_code == 204
    finally:
        manager.close()


# --------------------------------------------------------------------------- the pages' security headers


def assert_page_headers(response: httpx.Response, form_targets: tuple[str, ...] = ()) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.status_code
    policy = {d.split()[0]: d.split()[1:] for d in response.headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'", *form_targets]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert response.headers.get_list("content-security-policy") == [response.headers["content-security-policy"]]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_every_html_response_of_the_service_carries_the_page_policy():
    manager = AuthManager.from_config(config())
    try:
        settings = WebSettings(cookie_auth=True, throttle=Throttle(max_per_login=1, max_per_address=10_000))
        client = TestClient(create_app(manager, settings), base_url="http://127.0.0.1")
        first = client.get("/")
        csrf = csrf_of(first.text)
        form = {"provider": "local", "login": "alice", "password": "nope", "csrf_token": csrf}
        pages = [
            first,
            client.get("/?signed_out=1"),
            client.post("/login", data={**form, "csrf_token": "wrong"}),  # 403: form expired
            client.post("/login", content=b"\xff\xfe", headers={"content-type": "application/x-www-form-urlencoded"}),
            client.post("/login", data=form),  # 401
            client.post("/login", data=form),  # 429: throttled
            client.post("/login", data={**form, "provider": "nope", "login": "bob"}),  # unknown provider
            client.post("/logout", data={"csrf_token": "wrong"}),  # 403
        ]
        assert [p.status_code for p in pages] == [200, 200, 403, 400, 401, 429, 400, 403]
        page_login(client, "admin", "adminpw")
        pages.append(client.get("/"))  # signed in
        for page in pages:
            assert_page_headers(page)
    finally:
        manager.close()


def test_the_signed_in_page_of_an_sso_user_may_post_to_the_identity_provider_only():
    with support.run_uvicorn(support.fake_idp_app()) as idp:
        cfg = config()
        cfg["providers"].append({"name": "corp", "class": support.FAKESSO, "config": {"issuer": idp}})
        manager = AuthManager.from_config(cfg)
        try:
            with support.run_uvicorn(create_app(manager)) as url, httpx.Client(base_url=url, timeout=10) as client:
                start = client.get("/auth/sso/corp/login")
                back = httpx.get(start.headers["location"])
                assert client.get(back.headers["location"]).status_code == 303
                page = client.get("/")
                assert 'id="login-name">sso-user<' in page.text
                assert_page_headers(page, (idp,))
                out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
                assert out.status_code == 303 and out.headers["location"].startswith(idp + "/logout?")
        finally:
            manager.close()


# --------------------------------------------------------------------------- logout by refresh token


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_logout_with_the_refresh_token_ends_the_session(servers, adapter):
    base, _log = servers[adapter]
    with httpx.Client(base_url=base) as client:
        # A login of its own: the module's other tests lock alice in the shared throttle.
        response = login(client, "dummy", f"refresh-logout-{adapter}", "read")
        assert response.status_code == 200, response.text
        body = response.json()
        assert client.post(f"{PREFIX}/auth/logout", headers=bearer(body["refresh_token"])).status_code == 204
        assert client.get(f"{PREFIX}/protected", headers=bearer(body["token"])).status_code == 401
        refused = client.post(f"{PREFIX}/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert refused.status_code == 401
        again = client.post(f"{PREFIX}/auth/logout", headers=bearer(body["refresh_token"]))
        assert again.status_code == 401 and again.json()["code"] == "invalid_token"


# --------------------------------------------------------------------------- login CSRF on the page's forms


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example.org"},  # another site posts the form
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain (it can toss the CSRF cookie)
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["foreign-origin", "sibling-subdomain", "cross-site"],
)
def test_the_sign_in_form_refuses_a_post_from_another_site(headers):
    """Before sign-in the form's token is a plain double-submit cookie, which a sibling subdomain can
    plant: with it, a forged POST /login would sign the victim into the attacker's account."""
    manager = AuthManager.from_config(config())
    try:
        with support.run_uvicorn(create_app(manager)) as base, httpx.Client(base_url=base) as browser:
            token = csrf_of(browser.get("/").text)
            form = {"provider": "local", "login": "admin", "password": "adminpw", "csrf_token": token}
            forged = browser.post("/login", data=form, headers=headers, follow_redirects=False)
            assert forged.status_code == 403 and "authcore_access" not in forged.cookies
            assert browser.get("/auth/me").status_code == 401  # not signed in as anyone
            same = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
            signed_in = browser.post("/login", data=form, headers=same, follow_redirects=False)
            assert signed_in.status_code == 303
            out = browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/").text)}, headers=headers)
            assert out.status_code == 403 and browser.get("/auth/me").json()["login"] == "admin"
    finally:
        manager.close()
