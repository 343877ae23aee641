"""The web: section: host apps and `authcore serve` read it; constructor arguments and flags override it."""

from __future__ import annotations

from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import manager_config
from fastapi import FastAPI
from flask import Flask

from authcore import AuthManager, ConfigError
from authcore.cli import build_parser, serve_settings
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth

STATE_SECRET = "sso-state-secret-" + "s" * 40
WEB = {
    "prefix": "/from-yaml",
    "cookie_session": True,
    "cookies": {"access": "my_access", "refresh": "my_refresh", "csrf": "my_csrf", "domain": "example.org"},
    "cors": {"origins": ["https://ui.example.org"], "credentials": True},
    "throttle": {"enabled": True, "max_per_login": 2, "window": "1m"},
    "query_token": "ticket",
    "sso_state_secret": STATE_SECRET,
}


def manager_with(make_manager: Any, web: dict[str, Any]) -> AuthManager:
    manager: AuthManager = make_manager(manager_config(web=web))
    return manager


def test_fastapi_reads_the_section_and_arguments_override_it(make_manager):
    manager = manager_with(make_manager, WEB)
    auth = FastAPIAuth(manager)
    settings = auth.settings
    assert (settings.prefix, settings.cookie_auth, settings.query_token) == ("/from-yaml", True, "ticket")
    assert settings.cookies.access == "my_access" and settings.cookies.domain == "example.org"
    assert settings.cors_origins == ("https://ui.example.org",) and settings.cors_credentials
    assert settings.throttle is not None and settings.throttle.max_per_login == 2 and settings.throttle.window == 60
    assert settings.state_key == STATE_SECRET.encode()
    assert FastAPIAuth(manager, prefix="/argument", throttle=None).settings.prefix == "/argument"
    app = FastAPI()
    auth.install(app)
    with support.run_uvicorn(app) as url:
        login = httpx.post(f"{url}/from-yaml/auth/login", json={"plugin": "dummy", "login": "a", "password": "read"})
        set_cookies = login.headers.get_list("set-cookie")
        assert login.status_code == 200 and {c.split("=")[0] for c in set_cookies} == {
            "my_access",
            "my_refresh",
            "my_csrf",
        }
        assert "Domain=example.org" in login.headers["set-cookie"]


def test_flask_reads_the_section(make_manager):
    manager = manager_with(make_manager, {**WEB, "cookie_session": None})
    app = Flask("cfg")
    app.secret_key = "k" * 40
    auth = FlaskAuth(manager, app)
    assert auth.settings.prefix == "/from-yaml" and auth.cookie_sessions  # Flask's default: on
    with support.run_werkzeug(app) as url:
        preflight = httpx.options(
            f"{url}/from-yaml/auth/login",
            headers={"Origin": "https://ui.example.org", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://ui.example.org"


def test_serve_reads_the_section_and_flags_override_it(make_manager):
    manager = manager_with(make_manager, WEB)
    parser = build_parser()
    plain = serve_settings(parser.parse_args(["serve"]), manager)
    assert plain.prefix == "/from-yaml" and plain.cors_origins == ("https://ui.example.org",)
    assert plain.throttle is not None and plain.throttle.max_per_login == 2
    flagged = serve_settings(
        parser.parse_args(["serve", "--prefix", "/flag", "--cors-origin", "https://b.example", "--no-throttle"]),
        manager,
    )
    assert (flagged.prefix, flagged.cors_origins, flagged.throttle) == ("/flag", ("https://b.example",), None)
    default = serve_settings(parser.parse_args(["serve"]), manager_with(make_manager, {}))
    assert default.cookie_auth and default.throttle is not None  # the service's safe defaults


def test_no_secret_in_a_repr(make_manager):
    manager = manager_with(make_manager, WEB)
    assert STATE_SECRET not in repr(manager.config.web) and STATE_SECRET not in repr(manager.config)
    assert STATE_SECRET not in repr(FastAPIAuth(manager).settings)


@pytest.mark.parametrize(
    "web",
    [
        {"unknown": 1},
        {"cookies": {"samesite": "none"}},
        {"cors": {"origins": ["*"], "credentials": True}},
        {"prefix": "no-slash"},
        {"query_token": "bad name"},
        {"sso_state_secret": "short"},
        {"throttle": {"max_per_login": 0}},
    ],
)
def test_bad_web_sections_are_config_errors(web):
    with pytest.raises(ConfigError) as caught:
        AuthManager.from_config(manager_config(web=web))
    assert "'short'" not in str(caught.value)  # never the value, which may be a secret
