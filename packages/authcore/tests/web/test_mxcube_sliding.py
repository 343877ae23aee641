"""MXCuBE's front end against the Flask adapter over real HTTP: the server-side session slides.

MXCuBE's tab calls ``refresh_session`` every 9 s while it is open, and Flask's
``SESSION_REFRESH_EACH_REQUEST`` pushes the cookie's expiry back each time. authcore's own
session (the core's idle timer, in the session store) must slide on those requests too, even
while the access token is fresh: with an idle timeout shorter than half the access lifetime it
used to move only on a refresh, and a polling tab was logged out. Times are scaled down (a
2 s idle timeout, a poll every 0.5 s); sleeping is how the clock moves, no time is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from authcore import AuthManager
from authcore.testing.servers import run_asgi, run_wsgi
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth
from authcore.web.settings import WebSettings

PREFIX = "/mxcube/api/v0.1"
IDLE = 2.0
POLL = 0.5  # MXCuBE's 9 s, scaled like the idle timeout


def _manager() -> AuthManager:
    return AuthManager.from_config(
        {
            "tokens": {"secret": "mxcube-sliding-test-only-secret-0123456789", "access_ttl": "60s"},
            "sessions": {"idle_timeout": f"{IDLE:g}s", "max_lifetime": "1h"},
            "providers": [{"name": "dummy"}],
        }
    )


@pytest.fixture(params=["flask", "fastapi"])
def mxcube(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The front end's server on each adapter that keeps cookie sessions (Flask's signed session,
    FastAPI's cookies)."""
    manager = _manager()
    if request.param == "fastapi":
        from fastapi import Depends, FastAPI

        api = FastAPI()
        fastapi_auth = FastAPIAuth(manager, WebSettings(prefix=PREFIX, cookie_auth=True))
        fastapi_auth.install(api)

        @api.get(f"{PREFIX}/queue")
        def fastapi_queue(user: Any = Depends(fastapi_auth.current_user(["queue:read"]))) -> dict[str, str]:
            return {"user": user.login}

        with run_asgi(api) as url:
            yield {"url": url, "manager": manager, "adapter": "fastapi"}
        manager.close()
        return
    app = Flask("mxcube-sliding")
    app.secret_key = "flask-test-only-key"
    auth = FlaskAuth(manager, app, prefix=PREFIX, idle_timeout=IDLE)

    @app.get(f"{PREFIX}/queue")
    @auth.login_required(["queue:read"])
    def queue() -> dict[str, str]:
        return {"user": auth.current_user.login}

    with run_wsgi(app) as url:
        yield {"url": url, "manager": manager, "adapter": "flask"}
    manager.close()


def _poll(client: httpx.Client, seconds: float) -> list[int]:
    statuses = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses.append(client.get(f"{PREFIX}/auth/refresh_session").status_code)
        time.sleep(POLL)
    return statuses


def test_a_polling_tab_stays_signed_in_past_the_idle_timeout(mxcube: dict[str, Any]) -> None:
    with httpx.Client(base_url=mxcube["url"]) as tab:
        body = {"plugin": "dummy", "login": "opid", "password": "queue:read"}
        login = tab.post(f"{PREFIX}/auth/login", json=body)
        assert login.status_code == 200, login.text
        # Three idle timeouts of polling, with an access token that stays fresh all along.
        assert set(_poll(tab, 3 * IDLE)) == {200}
        assert tab.get(f"{PREFIX}/queue").json() == {"user": "opid"}
        # The tab is closed: after the idle timeout the session is over, on both sides.
        time.sleep(IDLE + 0.5)
        assert tab.get(f"{PREFIX}/auth/refresh_session").status_code == 401
        assert tab.get(f"{PREFIX}/queue").status_code == 401


@pytest.mark.parametrize("mxcube", ["flask"], indirect=True)
def test_any_authenticated_request_slides_and_logout_ends(mxcube: dict[str, Any]) -> None:
    """Flask rewrites its signed session on every request (MXCuBE's model). A FastAPI dependency
    does not rewrite the cookies (their Max-Age is the idle timeout), so there the front end keeps
    the cookie alive through refresh_session (the test above, on both adapters)."""
    with httpx.Client(base_url=mxcube["url"]) as tab:
        body = {"plugin": "dummy", "login": "opid", "password": "queue:read"}
        csrf = tab.post(f"{PREFIX}/auth/login", json=body).json()["csrf_token"]
        deadline = time.monotonic() + 2 * IDLE
        while time.monotonic() < deadline:  # the app's own calls, no refresh_session at all
            assert tab.get(f"{PREFIX}/queue").status_code == 200
            time.sleep(POLL)
        logout = tab.post(f"{PREFIX}/auth/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code in (200, 204), logout.text
        assert tab.get(f"{PREFIX}/auth/refresh_session").status_code == 401


MXCUBE_PATHS = {
    "login": "/login/",
    "logout": "/login/signout",
    "refresh_session": "/login/refresh_session",
    "sso_login": "/login/sso/{provider}",
    "sso_callback": "/login/sso/{provider}/callback",
}


def test_mxcube_paths_from_the_web_section() -> None:
    """MXCuBE's front end calls /mxcube/api/v0.1/login/...: `web.paths` moves the rows there,
    once for every adapter, and the old paths are gone."""
    manager = AuthManager.from_config(
        {
            "tokens": {"secret": "mxcube-paths-test-only-secret-0123456789"},
            "providers": [{"name": "dummy"}],
            "web": {"prefix": PREFIX, "paths": MXCUBE_PATHS},
        }
    )
    app = Flask("mxcube-paths")
    app.secret_key = "flask-test-only-key"
    FlaskAuth(manager, app)
    try:
        with run_wsgi(app) as url, httpx.Client(base_url=url) as tab:
            body = {"plugin": "dummy", "login": "opid", "password": "queue:read"}
            assert tab.post(f"{PREFIX}/auth/login", json=body).status_code == 404
            login = tab.post(f"{PREFIX}/login/", json=body)
            assert login.status_code == 200, login.text
            assert tab.get(f"{PREFIX}/login/refresh_session").status_code == 200
            assert tab.get(f"{PREFIX}/auth/me").status_code == 200  # rows not moved stay
            config = tab.get(f"{PREFIX}/auth/config").json()
            assert config["sso"] == []
            signout = tab.post(f"{PREFIX}/login/signout", headers={"X-CSRF-Token": login.json()["csrf_token"]})
            assert signout.status_code == 204
            assert tab.get(f"{PREFIX}/login/refresh_session").status_code == 401
    finally:
        manager.close()


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({"nonsense": "/x"}, "unknown operation 'nonsense'"),
        ({"login": "login"}, "starts with '/'"),
        ({"login": "/a b"}, "starts with '/'"),
        ({"sso_login": "/sso/login"}, "keep the parameters"),
        ({"login": "/auth/config"}, None),  # another method: allowed
        ({"me": "/auth/config"}, "two endpoints on GET"),
    ],
)
def test_web_paths_are_checked(paths: dict[str, str], message: str | None) -> None:
    from authcore.errors import ConfigError
    from authcore.web.core import WebCore

    manager = _manager()
    try:
        if message is None:
            WebCore(manager, WebSettings(paths=paths))
        else:
            with pytest.raises(ConfigError, match=message):
                WebCore(manager, WebSettings(paths=paths))
    finally:
        manager.close()
