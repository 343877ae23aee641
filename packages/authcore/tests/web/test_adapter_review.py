"""Review fixes of the web layer: cross-site websocket upgrades on a cookie session and explicit
settings keeping their ``cookie_auth`` (over real HTTP), the throttle's reservation under races."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import manager_config
from flask import Flask

from authcore import AuthManager
from authcore.errors import Throttled
from authcore.testing.race import outcomes, race
from authcore.web.flask import FlaskAuth
from authcore.web.settings import WebSettings
from authcore.web.throttle import Throttle

ALICE = {"plugin": "local", "login": "alice", "password": "wonderland"}
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.fixture
def manager() -> Iterator[AuthManager]:
    manager = AuthManager.from_config(manager_config())
    yield manager
    manager.close()


def flask_app(manager: AuthManager, *args: Any, **options: Any) -> Flask:
    app = Flask("review")
    app.secret_key = "review-secret-" + "r" * 30
    auth = FlaskAuth(manager, app, *args, **options)

    @app.route("/ws", websocket=True)  # a websocket route, as flask-sock registers them
    @auth.login_required
    def ws() -> dict[str, Any]:  # a plain reply instead of flask-sock's 101: the check is what counts
        return {"login": auth.current_user.login}

    @app.get("/http")
    @auth.login_required
    def http() -> dict[str, Any]:
        return {"login": auth.current_user.login}

    return app


def test_flask_refuses_a_cross_site_websocket_upgrade_on_the_cookie_session(manager):
    with support.run_werkzeug(flask_app(manager)) as url, httpx.Client(base_url=url, timeout=10) as client:
        token = client.post("/auth/login", json=ALICE).json()["token"]
        evil = client.get("/ws", headers={**UPGRADE, "Origin": "https://evil.example.org"})
        assert evil.status_code == 403 and evil.json()["code"] == "forbidden", evil.text
        same_site = client.get("/ws", headers={**UPGRADE, "Origin": url})
        assert same_site.status_code == 200 and same_site.json() == {"login": "alice"}
        assert client.get("/ws", headers=UPGRADE).status_code == 200  # no Origin: not a browser
        # a bearer token is not sent by browsers on their own: any origin may use one
        with httpx.Client(base_url=url, timeout=10) as fresh:
            bearer = {**UPGRADE, "Origin": "https://evil.example.org", "Authorization": f"Bearer {token}"}
            assert fresh.get("/ws", headers=bearer).status_code == 200


def test_flask_keeps_cookie_auth_off_when_the_settings_say_so(manager):
    app = flask_app(manager, WebSettings(cookie_auth=False))
    assert app.extensions["authcore"].cookie_sessions is False
    with support.run_werkzeug(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        data = client.post("/auth/login", json=ALICE).json()
        assert "csrf_token" not in data and "set-cookie" not in client.cookies  # no session started
        assert client.get("/http").status_code == 401
        assert client.get("/http", headers={"Authorization": f"Bearer {data['token']}"}).status_code == 200
    on = flask_app(manager, WebSettings(cookie_auth=False), cookie_sessions=True)
    assert on.extensions["authcore"].cookie_sessions is True  # the keyword still overrides
    assert flask_app(manager, WebSettings(cookie_auth=True)).extensions["authcore"].cookie_sessions is True


def test_parallel_attempts_cannot_all_pass_the_throttle():
    """Every attempt is reserved before the provider is asked: of 12 simultaneous attempts on a
    login allowed 3, exactly 3 are admitted, however long their providers take."""
    throttle = Throttle(max_per_login=3, max_per_address=1000, window=600)
    # none of the admitted attempts completes (nor releases) during the test
    results = race(lambda i: throttle.reserve("alice", f"10.0.0.{i}"), 12)
    assert outcomes(results) == {"ok": 3, "Throttled": 9}, results


def test_a_released_reservation_is_not_counted():
    throttle = Throttle(max_per_login=2, max_per_address=2, window=600)
    for _ in range(5):  # successes (or outages) give their attempt back
        throttle.reserve("alice", "10.0.0.1")
        throttle.release("alice", "10.0.0.1")
    throttle.reserve("alice", "10.0.0.1")  # two wrong passwords: kept
    throttle.reserve("alice", "10.0.0.1")
    with pytest.raises(Throttled):
        throttle.check("alice", None)
    with pytest.raises(Throttled):
        throttle.reserve("bob", "10.0.0.1")  # the address is over its limit too


def test_flask_cors_adds_origin_to_the_apps_own_vary(manager):
    """A view that answers `Vary: Accept-Language` keeps it: CORS adds Origin, it does not replace the
    view's Vary (a shared cache would otherwise hand one language's page to another)."""
    app = flask_app(manager, WebSettings(cors_origins=("https://app.example.org",), cookie_auth=True))

    @app.get("/localised")
    def localised() -> Any:
        from flask import jsonify

        response = jsonify({"greeting": "hello"})
        response.headers["Vary"] = "Accept-Language"
        return response

    with support.run_werkzeug(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        for origin in ("https://app.example.org", "https://evil.example.org"):
            answer = client.get("/localised", headers={"Origin": origin})
            vary = {v.strip().lower() for v in answer.headers["vary"].split(",")}
            assert {"accept-language", "origin"} <= vary, vary
