"""The standalone service: `authcore serve` as a subprocess, the login page's forms, cookies, CSRF, SSO."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import manager_config

from authcore import AuthManager
from authcore.web.common import WebSettings
from authcore.web.service import create_app


def authcore_command() -> list[str]:
    exe = shutil.which("authcore")
    return [exe] if exe else [sys.executable, "-m", "authcore.cli"]


@pytest.fixture
def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["AUTHCORE_STATE_DIR"] = str(tmp_path / "state")
    return env


def wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"authcore serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("authcore serve did not come up")


def test_authcore_serve_development_default_over_real_http(child_env):
    port = support.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*authcore_command(), "serve", "--port", str(port)],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(url, proc)
        with httpx.Client(base_url=url, timeout=10) as client:
            body = {"plugin": "dummy", "login": "test", "password": "read,Admin", "token": "read,Admin"}
            data = client.post("/auth/login", json=body).json()
            assert data["login"] == "test" and data["permissions"] == ["Admin", "read"]
            me = client.get("/auth/me", headers={"Authorization": f"Bearer {data['token']}"})
            assert me.status_code == 200 and me.json()["login"] == "test"
            assert client.get("/readyz").json() == {"ready": True, "providers": {"dummy": {"ok": True}}}
            page = client.get("/")
            assert page.status_code == 200 and "DEVELOPMENT MODE" in page.text
            assert page.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            client.get("/auth/me", params={"token": data["token"]})  # a query string that must not be logged
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=15)
    assert "DEVELOPMENT MODE" in err
    access = [line for line in err.splitlines() if line.startswith('{"event": "access"')]
    assert any('"path": "/auth/login"' in line and '"status": 200' in line for line in access), err
    assert data["token"] not in err and data["refresh_token"] not in err
    assert "read,Admin" not in err and "Bearer" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_authcore_serve_development_default_refuses_non_loopback_hosts(child_env, host):
    proc = subprocess.run(
        [*authcore_command(), "serve", "--host", host], env=child_env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "loopback" in proc.stderr


def test_authcore_help_lists_serve(child_env):
    proc = subprocess.run([*authcore_command(), "serve", "--help"], env=child_env, capture_output=True, text=True)
    assert proc.returncode == 0 and "--config" in proc.stdout and "--host" in proc.stdout


# --------------------------------------------------------------------------- the page's forms


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    manager = AuthManager.from_config(manager_config())
    with support.run_uvicorn(create_app(manager)) as url:
        yield url
    manager.close()


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_login_page_form_flow_with_cookies_and_csrf(service):
    with httpx.Client(base_url=service, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert '<label for="login">' in page.text and 'aria-live="assertive"' in page.text
        csrf = csrf_of(page.text)
        form = {"provider": "local", "login": "alice", "password": "wonderland"}

        assert client.post("/login", data=form).status_code == 403  # no CSRF field
        wrong = client.post("/login", data={**form, "password": "nope", "csrf_token": csrf})
        unknown = client.post("/login", data={**form, "login": "nobody", "csrf_token": csrf})
        assert wrong.status_code == unknown.status_code == 401
        assert "Invalid login or password." in wrong.text and "Invalid login or password." in unknown.text

        ok = client.post("/login", data={**form, "csrf_token": csrf})
        assert ok.status_code == 303
        cookies = ok.headers.get_list("set-cookie")
        access = next(c for c in cookies if c.startswith("authcore_access="))
        assert "HttpOnly" in access and "SameSite=lax" in access and "Secure" not in access  # loopback
        assert "HttpOnly" not in next(c for c in cookies if c.startswith("authcore_csrf="))

        signed_in = client.get("/")
        assert 'id="login-name">alice<' in signed_in.text
        # cookie-authenticated unsafe API calls need the CSRF header
        assert client.get("/auth/me").json()["login"] == "alice"
        assert client.post("/auth/logout").status_code == 403
        token = client.cookies["authcore_csrf"]
        assert client.post("/auth/refresh", headers={"X-CSRF-Token": token}).status_code == 200
        token = client.cookies["authcore_csrf"]
        assert client.post("/auth/logout", headers={"X-CSRF-Token": token}).status_code == 204
        assert client.get("/auth/me").status_code == 401


def test_page_logout_form_and_expired_access_cookie_is_refreshed(service):
    with httpx.Client(base_url=service, timeout=10) as client:
        csrf = csrf_of(client.get("/").text)
        client.post("/login", data={"provider": "dummy", "login": "zoe", "password": "read", "csrf_token": csrf})
        # Same domain and path as the server's cookie, so the refreshed one replaces it as in a browser.
        client.cookies.set("authcore_access", "expired.or.garbage", domain="127.0.0.1", path="/")
        page = client.get("/")  # the refresh cookie slides the session
        assert 'id="login-name">zoe<' in page.text
        out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        after = client.get(out.headers["location"])
        assert "You have signed out." in after.text and 'id="login-form"' in after.text


def test_cookies_are_secure_off_loopback():
    manager = AuthManager.from_config(manager_config())
    try:
        app = create_app(manager)

        async def run() -> list[str]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://auth.example.org") as client:
                page = await client.get("/")
                form = {"provider": "dummy", "login": "a", "password": "read", "csrf_token": csrf_of(page.text)}
                response = await client.post("/login", data=form)
                return response.headers.get_list("set-cookie")

        import asyncio

        cookies = asyncio.run(run())
        assert cookies and all("Secure" in c for c in cookies)
    finally:
        manager.close()


def test_serve_tunes_the_collector_and_an_embedded_app_leaves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`authcore serve` owns its process: once its server starts, what startup made is frozen
    out of later collections and the youngest generation's threshold raised
    (service._tune_collector). The app a host embeds changes neither."""
    import asyncio
    import gc

    from authcore.web import service

    def started(app: Any) -> tuple[int, int]:
        async def lifespan() -> tuple[int, int]:
            async with app.router.lifespan_context(app):
                return gc.get_freeze_count(), gc.get_threshold()[0]

        return asyncio.run(lifespan())

    class Server:  # what build_server returns, run as uvicorn runs it: the app's lifespan
        def __init__(self, app: Any) -> None:
            self.app = app

        def run(self) -> None:
            frozen.append(started(self.app))

    frozen: list[tuple[int, int]] = []
    monkeypatch.setattr(service, "build_server", lambda app, **_options: Server(app))
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        with AuthManager.from_config(manager_config()) as embedded:
            assert started(create_app(embedded)) == (0, threshold[0])
        service.serve(AuthManager.from_config(manager_config()))
        assert frozen and frozen[0][0] > 10_000  # the modules, the app, its routes
        assert frozen[0][1] == service.YOUNG_COLLECTION_THRESHOLD > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_readyz_reports_unhealthy_providers():
    manager = AuthManager.from_config(manager_config())
    manager.providers["local"].health = lambda: (_ for _ in ()).throw(RuntimeError("down"))  # type: ignore[method-assign]
    try:
        with support.run_uvicorn(create_app(manager)) as url:
            response = httpx.get(url + "/readyz")
            assert response.status_code == 503
            assert response.json()["providers"]["local"] == {"ok": False}
    finally:
        manager.close()


# --------------------------------------------------------------------------- single sign-on


@pytest.fixture(scope="module")
def sso() -> Iterator[dict[str, Any]]:
    with support.run_uvicorn(support.fake_idp_app()) as idp:
        config = manager_config()
        config["providers"].append({"name": "corp", "class": support.FAKESSO, "config": {"issuer": idp}})
        manager = AuthManager.from_config(config)
        with support.run_uvicorn(create_app(manager, WebSettings(cookie_auth=True))) as url:
            yield {"idp": idp, "url": url}
        manager.close()


def test_sso_login_round_trip_with_pkce_and_state(sso):
    with httpx.Client(base_url=sso["url"], timeout=10) as client:
        page = client.get("/")
        assert "/auth/sso/corp/login" in page.text and "single sign-on" in page.text
        assert client.get("/auth/config").json()["sso"] == [{"provider": "corp", "login": "/auth/sso/corp/login"}]
        start = client.get("/auth/sso/corp/login", params={"next": "/"})
        assert start.status_code == 302
        location = start.headers["location"]
        assert location.startswith(sso["idp"] + "/authorize?") and "code_challenge_method=S256" in location
        sso_cookie = next(c for c in start.headers.get_list("set-cookie") if c.startswith("authcore_sso="))
        assert "HttpOnly" in sso_cookie and "Path=/auth/sso/" in sso_cookie
        back = httpx.get(location)  # the identity provider approves and sends the browser back
        assert back.status_code == 302
        callback = client.get(back.headers["location"])
        assert callback.status_code == 303 and callback.headers["location"] == "/"
        assert 'id="login-name">sso-user<' in client.get("/").text
        out = client.post("/logout", data={"csrf_token": client.cookies["authcore_csrf"]})
        assert out.status_code == 303 and out.headers["location"].startswith(sso["idp"] + "/logout?")
        at_idp = httpx.get(out.headers["location"])  # the browser ends the identity provider's session
        assert at_idp.status_code == 302 and at_idp.headers["location"].endswith("/?signed_out=1")
        assert "sso-user" in support.LOGOUTS


def test_sso_callback_refuses_a_wrong_state_or_a_missing_cookie(sso):
    with httpx.Client(base_url=sso["url"], timeout=10) as client:
        start = client.get("/auth/sso/corp/login")
        back = httpx.get(start.headers["location"])
        tampered = re.sub(r"state=[^&]+", "state=forged", back.headers["location"])
        assert client.get(tampered).status_code == 401
        with httpx.Client(timeout=10) as stranger:  # no state cookie: another browser
            assert stranger.get(back.headers["location"]).status_code == 401
        assert client.get("/auth/sso/corp/callback", params={"error": "access_denied"}).status_code == 401
        assert client.get("/auth/sso/local/login").status_code == 501
        assert client.get("/auth/sso/nope/login").status_code == 400


def test_sso_next_parameter_cannot_redirect_off_site(sso):
    with httpx.Client(base_url=sso["url"], timeout=10) as client:
        start = client.get("/auth/sso/corp/login", params={"next": "//evil.example/"})
        back = httpx.get(start.headers["location"])
        assert client.get(back.headers["location"]).headers["location"] == "/"
