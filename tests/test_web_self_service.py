"""Password self-service over real HTTP (the FastAPI adapter under uvicorn) against auth-local on an
SQLite file, mailing through a real SMTP server (aiosmtpd; a missing one fails, never skips).

The routes of :mod:`authcore.web.self_service`: a password change ends the caller's other sessions
and personal access tokens; a forgotten-password request answers the same bytes for every login; a
reset with the mailed token ends every session of the user; e-mail verification; the throttle on
requests that send mail; hostile bodies refused with typed errors that never echo a secret.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from auth_local import LocalProvider
from auth_local.testing import SMTP_INSTALL_HINT, SmtpError, SmtpSink, start_smtp
from authcore import AuthManager, NewUser
from authcore.testing.servers import run_asgi
from authcore.web.fastapi import FastAPIAuth
from authcore.web.settings import WebSettings
from authcore.web.throttle import Throttle

#: argon2 parameters that keep these tests quick (the defaults cost ~50 ms a hash).
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
PW = "Correct-Horse-Battery-9"
NEW_PW = "Staple-Lantern-Orbit-42"
TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")  # not \b: a token may end with "-"
#: The throttle's limit per login (and per login of mail requests) in these tests.
LIMIT = 3


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port, collecting what it receives."""
    try:
        server = start_smtp()
    except SmtpError as exc:
        pytest.fail(f"{exc} (these tests need a real SMTP server: {SMTP_INSTALL_HINT})", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Site:
    """The service under test: its base URL, manager, local provider and mail sink."""

    base: str
    manager: AuthManager
    provider: LocalProvider
    smtp: SmtpSink
    clients: list[httpx.Client] = field(default_factory=list)
    #: Every response body seen, to check that no secret was ever echoed.
    seen: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """A new device: a client with a cookie jar of its own."""
        client = httpx.Client(base_url=self.base, timeout=30, event_hooks={"response": [self._keep]})
        self.clients.append(client)
        return client

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.seen.append(response.text)

    def login(self, login: str, password: str = PW, plugin: str = "users") -> httpx.Response:
        """A login from a new device."""
        return self.client().post("/auth/login", json={"plugin": plugin, "login": login, "password": password})

    def session(self, login: str, password: str = PW) -> dict[str, Any]:
        """A successful login's JSON (tokens), from a new device."""
        response = self.login(login, password)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def post(self, path: str, body: Any = None, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """``POST path`` with a JSON *body* (none if ``None``), as the bearer of *token* if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            kwargs["json"] = body
        return self.client().post(path, headers=headers, **kwargs)

    def me(self, token: str) -> int:
        """The status of ``GET /auth/me`` with *token*."""
        return self.client().get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code

    def refresh(self, refresh_token: str) -> int:
        """The status of ``POST /auth/refresh`` with *refresh_token*."""
        return self.post("/auth/refresh", {"refresh_token": refresh_token}).status_code

    def mailed(self, index: int = -1) -> str:
        """The token in the *index*-th message the SMTP server received."""
        found = TOKEN.search(self.smtp.received()[index].text)
        assert found is not None
        return found.group(1)

    def never_echoed(self, *secrets: str) -> None:
        for secret in secrets:
            assert not any(secret in body for body in self.seen), f"{secret[:4]}... came back in a response"


@pytest.fixture
def site(tmp_path: Path, smtp: SmtpSink) -> Iterator[Site]:
    """auth-local (``users``, mailing to *smtp*) and the dummy provider (``dev``, no self-service) behind
    the FastAPI adapter with cookie sessions and a throttle; users alice (with an address), bob (none)
    and carl (disabled)."""
    mail = {"host": "127.0.0.1", "port": smtp.port, "security": "none", "from_address": "auth@example.org"}
    local = {
        "database_url": f"sqlite:///{tmp_path / 'users.db'}",
        **FAST_ARGON2,
        "delivery": "smtp",
        "smtp": mail,
        "reset_url": "https://example.org/reset?token={token}",
        "verification_url": "https://example.org/verify?token={token}",
    }
    config = {
        "tokens": {"secret": "a-test-secret-that-is-long-enough-0123456789abcdef"},
        "providers": [{"name": "users", "type": "local", "config": local}, {"name": "dev", "type": "dummy"}],
        "permissions": {"groups": {"staff": ["read"]}},
    }
    manager = AuthManager.from_config(config)
    provider = manager.provider("users")
    assert isinstance(provider, LocalProvider)
    provider.create_user(NewUser(login="alice", password=PW, email="alice@example.org", roles=("staff",)))
    provider.create_user(NewUser(login="bob", password=PW))
    provider.create_user(NewUser(login="carl", password=PW, email="carl@example.org", enabled=False))
    throttle = Throttle(max_per_login=LIMIT, max_per_address=1000, window=600)
    app = FastAPI()
    FastAPIAuth(manager, WebSettings(cookie_auth=True, throttle=throttle)).install(app)
    try:
        with run_asgi(app) as base:
            served = Site(base, manager, provider, smtp)
            try:
                yield served
            finally:
                for client in served.clients:
                    client.close()
    finally:
        manager.close()


def bad_login(site: Site) -> httpx.Response:
    """A failed login, whose answer a wrong current password must repeat byte for byte."""
    response = site.login("nobody-at-all", "wrong")
    assert response.status_code == 401
    return response


# --------------------------------------------------------------------------- change


def test_change_ends_every_other_session_and_token(site: Site) -> None:
    this, other = site.session("alice"), site.session("alice")
    pat = site.post("/auth/tokens", {"name": "ci"}, this["token"]).json()["token"]
    site.seen.clear()  # the token was shown once, on creation: from here on never
    assert site.me(other["token"]) == site.me(pat) == 200

    wrong = site.post("/auth/password/change", {"current_password": "not-it", "new_password": NEW_PW}, this["token"])
    refused = bad_login(site)
    assert (wrong.status_code, wrong.content) == (401, refused.content)
    assert wrong.headers["www-authenticate"] == refused.headers["www-authenticate"]
    by_token = site.post("/auth/password/change", {"current_password": PW, "new_password": NEW_PW}, pat)
    assert by_token.status_code == 403 and by_token.json()["code"] == "forbidden"
    weak = site.post("/auth/password/change", {"current_password": PW, "new_password": "short"}, this["token"])
    assert weak.status_code == 422 and weak.json()["code"] == "password_refused"
    assert site.me(other["token"]) == site.me(pat) == 200  # nothing changed yet

    changed = site.post("/auth/password/change", {"current_password": PW, "new_password": NEW_PW}, this["token"])
    assert changed.status_code == 204 and changed.content == b""
    assert site.me(this["token"]) == 200 and site.refresh(this["refresh_token"]) == 200  # this device goes on
    assert site.me(other["token"]) == site.me(pat) == 401  # the others are out
    assert site.refresh(other["refresh_token"]) == 401
    assert site.login("alice", PW).status_code == 401 and site.login("alice", NEW_PW).status_code == 200
    assert site.smtp.received() == []
    site.never_echoed(PW, NEW_PW, "not-it", pat)


def test_change_in_a_cookie_session_needs_the_csrf_token(site: Site) -> None:
    browser = site.client()
    signed_in = browser.post("/auth/login", json={"plugin": "users", "login": "alice", "password": PW})
    csrf = signed_in.json()["csrf_token"]
    body = {"current_password": PW, "new_password": NEW_PW}
    assert browser.post("/auth/password/change", json=body).status_code == 403
    assert browser.post("/auth/password/change", json=body, headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser.get("/auth/me").json()["login"] == "alice"  # the cookie session is the one kept


def test_wrong_current_passwords_are_throttled_as_failed_logins(site: Site) -> None:
    token = site.session("alice")["token"]
    for _ in range(LIMIT):
        guess = site.post("/auth/password/change", {"current_password": "guess", "new_password": NEW_PW}, token)
        assert guess.status_code == 401
    locked = site.post("/auth/password/change", {"current_password": PW, "new_password": NEW_PW}, token)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert site.login("alice").status_code == 429  # one counter: guessing here is guessing there
    assert site.login("bob").status_code == 200


# --------------------------------------------------------------------------- forgot, reset


def test_forgot_answers_the_same_bytes_for_every_login(site: Site) -> None:
    asked = ["alice", "nobody", "ALICE", "nobody@example.org", "Alice@Example.ORG", "bob", "carl", "carl@example.org"]
    answers = [site.post("/auth/password/forgot", {"login": login}) for login in asked]
    answers.append(site.post("/auth/password/forgot", {"plugin": "users", "login": "nobody-else"}))

    def shape(response: httpx.Response) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        return response.status_code, response.content, tuple((k, v) for k, v in response.headers.items() if k != "date")

    assert {shape(r) for r in answers} == {shape(answers[0])}
    assert answers[0].status_code == 202
    # Mail went to alice only (by login twice, by address once); bob has no address, carl is disabled.
    assert [m.recipients for m in site.smtp.received()] == [("alice@example.org",)] * 3


def test_a_failed_delivery_answers_as_no_account_does(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """A 503 for an account whose message cannot go out would tell that the account exists."""
    site.smtp.stop()  # the mail server is down
    with caplog.at_level(logging.WARNING, logger="authcore"):
        known = site.post("/auth/password/forgot", {"login": "alice"})
    unknown = site.post("/auth/password/forgot", {"login": "nobody"})
    assert known.status_code == unknown.status_code == 202 and known.content == unknown.content
    logged = [r.getMessage() for r in caplog.records if r.name == "authcore"]
    assert logged == ["provider 'users': a password reset message could not be sent"]  # whose: not said


def test_reset_with_the_mailed_token_ends_every_session(site: Site) -> None:
    first, second = site.session("alice"), site.session("alice")
    pat = site.post("/auth/tokens", {"name": "ci"}, first["token"]).json()["token"]
    site.seen.clear()
    assert site.post("/auth/password/forgot", {"login": "alice"}).status_code == 202
    token = site.mailed()

    weak = site.post("/auth/password/reset", {"token": token, "new_password": "short"})
    assert weak.status_code == 422 and site.me(first["token"]) == 200  # refused: token unspent, nobody out
    reset = site.post("/auth/password/reset", {"token": token, "new_password": NEW_PW})
    assert reset.status_code == 204 and reset.content == b""
    assert site.me(first["token"]) == site.me(second["token"]) == site.me(pat) == 401
    assert site.refresh(first["refresh_token"]) == site.refresh(second["refresh_token"]) == 401
    assert site.login("alice", PW).status_code == 401 and site.login("alice", NEW_PW).status_code == 200

    again = site.post("/auth/password/reset", {"token": token, "new_password": "Yet-Another-Pass-77"})
    assert again.status_code == 401 and again.json() == {
        "detail": "the link is invalid or has expired",
        "code": "invalid_token",
    }
    assert again.headers["www-authenticate"] == 'Bearer realm="authcore", error="invalid_token"'
    assert site.login("alice", NEW_PW).status_code == 200  # the spent token changed nothing
    site.never_echoed(token, PW, NEW_PW, pat)


def test_an_expired_reset_token_is_refused(site: Site) -> None:
    assert site.post("/auth/password/forgot", {"login": "alice@example.org"}).status_code == 202
    token = site.mailed()
    started = site.provider.clock()
    site.provider.clock = lambda: started + timedelta(minutes=30, seconds=1)  # past reset_token_ttl, no waiting
    expired = site.post("/auth/password/reset", {"plugin": "users", "token": token, "new_password": NEW_PW})
    assert expired.status_code == 401 and expired.json()["code"] == "invalid_token"
    assert site.login("alice", PW).status_code == 200


def test_a_reset_lifts_the_login_throttle(site: Site) -> None:
    for _ in range(LIMIT):
        assert site.login("alice", "wrong guess").status_code == 401
    assert site.login("alice", PW).status_code == 429
    assert site.post("/auth/password/forgot", {"login": "alice"}).status_code == 202  # mail has its own counter
    assert site.post("/auth/password/reset", {"token": site.mailed(), "new_password": NEW_PW}).status_code == 204
    assert site.login("alice", NEW_PW).status_code == 200


def test_requests_that_send_mail_are_throttled(site: Site) -> None:
    for login in ("alice", "nobody"):  # an account or none: the same answers, the same limit
        for _ in range(LIMIT):
            assert site.post("/auth/password/forgot", {"login": login}).status_code == 202
        flooded = site.post("/auth/password/forgot", {"login": login.upper()})
        assert flooded.status_code == 429 and flooded.json()["code"] == "too_many_requests"
        assert int(flooded.headers["retry-after"]) >= 1
    assert len(site.smtp.received()) == LIMIT
    token = site.session("alice")["token"]  # logins keep their own counter
    assert site.post("/auth/email/verification", token=token).status_code == 429  # alice's mail budget is spent
    assert len(site.smtp.received()) == LIMIT


# --------------------------------------------------------------------------- e-mail verification


def test_email_verification(site: Site) -> None:
    assert site.provider.get_user("alice").attributes["email_verified"] is False
    token = site.session("alice")["token"]
    asked = site.post("/auth/email/verification", token=token)
    assert asked.status_code == 202 and "token" not in asked.text
    [mail] = site.smtp.received()
    assert mail.recipients == ("alice@example.org",) and "https://example.org/verify?token=" in mail.text
    assert site.post("/auth/email/verification", {}, token).status_code == 202  # {} is no body too
    verification = site.mailed()
    assert site.post("/auth/email/verify", {"token": site.mailed(0)}).status_code == 401  # voided by the newer one

    assert site.post("/auth/email/verify", {"token": verification}).status_code == 204
    assert site.provider.get_user("alice").attributes["email_verified"] is True
    reused = site.post("/auth/email/verify", {"plugin": "users", "token": verification})
    assert reused.status_code == 401 and reused.json()["code"] == "invalid_token"

    no_address = site.post("/auth/email/verification", token=site.session("bob")["token"])
    assert no_address.status_code == 422
    assert site.post("/auth/email/verification", {"login": "bob"}, token).status_code == 422  # no fields taken
    assert site.post("/auth/email/verification").status_code == 401  # the caller's own only
    site.never_echoed(verification)


# --------------------------------------------------------------------------- refusals


def test_a_provider_without_the_capability_answers_501(site: Site) -> None:
    for path, body in (
        ("/auth/password/forgot", {"plugin": "dev", "login": "dora"}),
        ("/auth/password/reset", {"plugin": "dev", "token": "t" * 43, "new_password": NEW_PW}),
        ("/auth/email/verify", {"plugin": "dev", "token": "t" * 43}),
    ):
        refused = site.post(path, body)
        assert (refused.status_code, refused.json()["code"]) == (501, "not_supported"), path
    dora = site.client().post("/auth/login", json={"plugin": "dev", "login": "dora", "password": "read"})
    token = dora.json()["token"]
    change = site.post("/auth/password/change", {"current_password": "read", "new_password": NEW_PW}, token)
    assert (change.status_code, change.json()["code"]) == (501, "not_supported")
    assert site.post("/auth/email/verification", token=token).status_code == 501


def test_hostile_bodies(site: Site) -> None:
    forgot, reset, verify = "/auth/password/forgot", "/auth/password/reset", "/auth/email/verify"
    secret_token, secret_pw = "S3cretTokenValue_" + "x" * 26, "Hostile-Password-Never-Echoed\x00"
    token = site.session("alice")["token"]
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (forgot, {"data": {"login": "alice"}}, 415, "unsupported_media_type"),  # a cross-site form
        (
            forgot,
            {"content": b'{"login": "alice"}', "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        (forgot, {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_request"),
        (forgot, {"json": ["alice"]}, 400, "bad_request"),
        (
            forgot,
            {"content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}},
            413,
            "payload_too_large",
        ),
        (
            forgot,
            {"content": b"[" * 30_000 + b"]" * 30_000, "headers": {"Content-Type": "application/json"}},
            400,
            "bad_request",
        ),
        (forgot, {"json": {"login": 5}}, 422, "bad_request"),
        (forgot, {"json": {"login": ""}}, 422, "bad_request"),
        (forgot, {"json": {"login": "a" * 321}}, 422, "bad_request"),
        (forgot, {"json": {"login": "ali\x00ce"}}, 422, "bad_request"),
        (forgot, {"json": {"login": "alice", "password": secret_pw}}, 422, "bad_request"),
        (forgot, {"json": {"plugin": "nope", "login": "alice"}}, 400, "unknown_provider"),
        (forgot, {"json": {"plugin": 7, "login": "alice"}}, 422, "bad_request"),
        (forgot, {"json": {"login": "zoë@例え.jp"}}, 202, ""),
        (forgot, {"json": {"login": "x' OR '1'='1"}}, 202, ""),
        (reset, {"json": {"token": secret_token, "new_password": secret_pw}}, 422, "bad_request"),  # NUL
        (reset, {"json": {"token": secret_token, "new_password": NEW_PW}}, 401, "invalid_token"),
        (reset, {"json": {"token": "x" * 513, "new_password": NEW_PW}}, 422, "bad_request"),
        (reset, {"json": {"token": "tökén", "new_password": NEW_PW}}, 422, "bad_request"),
        (reset, {"json": {"token": "a b", "new_password": NEW_PW}}, 422, "bad_request"),
        (reset, {"json": {"token": secret_token, "new_password": "p" * 1025}}, 422, "bad_request"),
        (reset, {"json": {"token": secret_token}}, 422, "bad_request"),
        (verify, {"json": {}}, 422, "bad_request"),
        (verify, {"json": {"token": None}}, 422, "bad_request"),
        (verify, {"json": {"token": secret_token}}, 401, "invalid_token"),
    ]
    for path, request, status, code in cases:
        response = site.client().post(path, **request)
        assert response.status_code == status, (path, request, response.text)
        assert code == "" or response.json()["code"] == code, (path, response.text)
    change = "/auth/password/change"
    for body in ({"current_password": PW}, {"current_password": PW, "new_password": NEW_PW, "login": "bob"}):
        assert site.post(change, body, token).status_code == 422
    assert site.post(change, None, token, content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert site.login("alice", PW).status_code == 200  # nothing changed
    site.never_echoed(secret_token, secret_pw.rstrip("\x00"), json.dumps(secret_pw)[1:-1])
