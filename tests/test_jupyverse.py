"""fps-auth-authcore in the real Jupyverse: its CLI, started as a subprocess, behind authcore.

One virtualenv serves the module (built once): jupyverse 0.14 with its collaboration plugins
from the index, our wheels by path (the index's ``authcore`` is another project). Jupyverse
pins its own FastAPI range and brings a server stack of its own, so it lives in this dedicated
venv, not in the environment running the tests. Each server is ``jupyverse --port N`` on a free
loopback port, stopped by its pid. REST: the contents and kernels listings; websocket: a Yjs
room (``/api/collaboration/room/…``). LDAP is a real slapd
(:class:`auth_ldap.testing.SlapdServer`). The last test swaps the plugin for fps-auth and back
with pip, as a user would.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from authcore.testing.ports import free_port
from authcore.testing.processes import stop_process

#: Jupyverse, its JupyterLab front end and collaboration plugins (Yjs rooms, file ids), from the index.
JUPYVERSE = "jupyverse[jupyterlab,collaboration]>=0.14,<0.15"
FPS_AUTH = "fps-auth>=0.10.3,<0.11"
OURS = ("authcore", "auth-dummy", "auth-noauth", "auth-ldap", "fps-auth-authcore")
#: How long a server may take to answer its first request (imports, indexing, LDAP connection).
START_DEADLINE = 180.0
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


class Server:
    """``jupyverse`` on a free loopback port in its own working directory; stopped by pid."""

    def __init__(self, venv: Any, workdir: Path, settings: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "nb.ipynb").write_text(NOTEBOOK)
        self.log = workdir / "jupyverse.log"
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        command = [str(venv.bin / "jupyverse"), "--port", str(self.port), "--timeout", "120"]
        for setting in settings:
            command += ["--set", setting]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=venv.env(HOME=str(home), **env)
            )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"jupyverse exited with {self.process.returncode}:\n{self.log_text()}", pytrace=False)
            try:
                httpx.get(f"{self.base}/api/status", timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop()
        pytest.fail(f"jupyverse did not answer on {self.base}:\n{self.log_text()}", pytrace=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60)

    def stop(self) -> None:
        stop_process(self.process, bound=30)


@pytest.fixture(scope="module")
def jv_venv(wheels: dict[str, Path], fresh_venv: Callable[..., Any]) -> Any:
    """The dedicated virtualenv (conftest's FreshVenv): jupyverse from the index, ours by path."""
    ours = (wheels[d] for d in OURS)
    return fresh_venv("jupyverse", *ours, JUPYVERSE, find_links=wheels["authcore"].parent)


@pytest.fixture(scope="module")
def slapd() -> Iterator[Any]:
    from auth_ldap.pytest_plugin import start_slapd

    server = start_slapd()
    try:
        yield server
    finally:
        server.close()


def start(venv: Any, workdir: Path, config: str, env: dict[str, str] | None = None) -> Server:
    """Jupyverse with our plugin, configured through its own ``--set`` with an authcore YAML file."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "authcore.yml").write_text(config)
    settings = [
        f"auth_authcore.config_file={workdir / 'authcore.yml'}",
        f"auth_authcore.directory={workdir / 'profiles'}",
    ]
    return Server(venv, workdir / "root", settings, env or {})


@pytest.fixture(scope="module")
def dummy(jv_venv: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start(jv_venv, tmp_path_factory.mktemp("dummy"), "providers:\n  - name: dummy\n")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ldap(jv_venv: Any, slapd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The password from the environment, as a site's file would take it.
    ldap = slapd.provider_config(bind_password="${LDAP_READER_PASSWORD}")
    permissions = {"groups": {"developers": ["contents:read", "kernels:read"], "admins": ["yjs:*"]}}
    providers = [{"name": "site-ldap", "type": "ldap", "config": ldap}]
    config = yaml.safe_dump({"providers": providers, "permissions": permissions})
    server = start(jv_venv, tmp_path_factory.mktemp("ldap"), config, {"LDAP_READER_PASSWORD": slapd.reader_password})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def noauth(jv_venv: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start(jv_venv, tmp_path_factory.mktemp("noauth"), "providers:\n  - name: noauth\n")
    yield server
    server.stop()


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def login(server: Server, provider: str, user: str, password: str) -> Iterator[httpx.Client]:
    """A client holding the cookie session of a JSON login (what a script or the front end does)."""
    with server.client() as client:
        response = client.post("/auth/login", json={"plugin": provider, "login": user, "password": password})
        assert response.status_code == 200, response.text
        yield client


def xsrf(client: httpx.Client) -> dict[str, str]:
    """JupyterLab's header: the ``_xsrf`` cookie echoed in ``X-XSRFToken`` (none without a session)."""
    token = client.cookies.get("_xsrf")
    return {"X-XSRFToken": token} if token else {}


def room(client: httpx.Client) -> str:
    """The Yjs room of ``nb.ipynb`` (``PUT /api/collaboration/session/…`` needs ``contents:read``)."""
    response = client.put(
        "/api/collaboration/session/nb.ipynb", json={"format": "json", "type": "notebook"}, headers=xsrf(client)
    )
    assert response.status_code in (200, 201), response.text
    data = response.json()
    return f"{data['format']}:{data['type']}:{data['fileId']}"


def websocket(server: Server, room_id: str, client: httpx.Client | None = None, origin: str | None = None) -> Any:
    """Open the room's websocket: the first message (bytes) when accepted, else the close code."""
    headers = {"Origin": origin or server.base}
    if client is not None:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    url = f"ws://127.0.0.1:{server.port}/api/collaboration/room/{room_id}"
    try:
        with connect(url, additional_headers=headers, open_timeout=60) as ws:
            return ws.recv(timeout=60)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


# --------------------------------------------------------------------------- the dummy provider


def test_rest_needs_a_session(dummy: Server) -> None:
    with dummy.client() as client:
        for path in ("/api/contents", "/api/kernels"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.json()["detail"] == "authentication required"
            assert response.headers["www-authenticate"].startswith("Bearer")
        # A browser navigating to the lab is sent to the sign-in page instead.
        page = client.get("/lab", headers={"Accept": "text/html"})
        assert page.status_code in (302, 307) and page.headers["location"] == "/login"


def test_rest_needs_every_permission(dummy: Server) -> None:
    with login(dummy, "dummy", "alice", "kernels:read") as client:
        assert client.get("/api/kernels").status_code == 200
        assert client.get("/api/contents").status_code == 403
    with login(dummy, "dummy", "alice", "contents:read,kernels:read") as client:
        listing = client.get("/api/contents", params={"content": 1})
        assert listing.status_code == 200
        assert "nb.ipynb" in {entry["name"] for entry in listing.json()["content"]}
        assert client.get("/api/kernels").json() == []
        # JupyterLab's `Authorization: token …` (Jupyter Server's scheme) does not hide the session.
        assert client.get("/api/kernels", headers={"Authorization": "token 0123abcd"}).status_code == 200
        # contents:read is not contents:write: creating a file needs every asked permission.
        assert (
            client.post("/api/contents", json={"type": "notebook", "path": ""}, headers=xsrf(client)).status_code == 403
        )


def test_wildcards_and_the_xsrf_header(dummy: Server) -> None:
    with login(dummy, "dummy", "bob", "contents:*") as client:
        # A cookie-authenticated unsafe request needs JupyterLab's X-XSRFToken (authcore's CSRF check).
        assert client.post("/api/contents", json={"type": "notebook", "path": ""}).status_code == 403
        created = client.post("/api/contents", json={"type": "notebook", "path": ""}, headers=xsrf(client))
        assert created.status_code == 201, created.text
        assert client.get("/api/contents").status_code == 200
        assert client.get("/api/kernels").status_code == 403


def test_websocket_refused_without_a_session_accepted_with_one(dummy: Server) -> None:
    with login(dummy, "dummy", "carol", "contents:read,yjs:read") as client:
        room_id = room(client)
        assert isinstance(websocket(dummy, room_id, client), bytes)  # Yjs sync step 1: accepted
        assert websocket(dummy, room_id) == 1008  # no session
        assert websocket(dummy, room_id, client, origin="http://evil.example") == 1008  # cross-site
    with login(dummy, "dummy", "dave", "contents:read") as client:
        assert websocket(dummy, room_id, client) == 1008  # neither yjs:read nor yjs:write
    with login(dummy, "dummy", "erin", "yjs:write") as client:
        assert isinstance(websocket(dummy, room_id, client), bytes)  # one of the two is enough


def test_api_me_and_update_user(dummy: Server) -> None:
    with login(dummy, "dummy", "frank", "contents:read") as client:
        me = client.get("/api/me", params={"permissions": '{"contents": ["read", "write"]}'})
        assert me.status_code == 200
        assert me.json()["identity"]["username"] == "frank"
        assert me.json()["permissions"] == {"contents": ["read"]}
        changed = client.patch("/api/me", json={"display_name": "Frank Zappa", "color": "#f80"}, headers=xsrf(client))
        assert changed.status_code == 200, changed.text
        identity = client.get("/api/me").json()["identity"]
        assert (identity["display_name"], identity["color"], identity["initials"]) == ("Frank Zappa", "#f80", "FZ")
        # Jupyverse's own settings route stores JupyterLab settings through update_user.
        for name in ("themes", "notification"):
            path = f"/lab/api/settings/@jupyterlab/apputils-extension:{name}"
            response = client.put(path, json={"raw": "{}"}, headers=xsrf(client))
            assert response.status_code == 204, response.text
        profiles = list((dummy.workdir.parent / "profiles").glob("*.json"))
        saved = [p.read_text() for p in profiles if "Frank Zappa" in p.read_text()]
        assert len(saved) == 1 and "apputils-extension:themes" in saved[0] and "notification" in saved[0]
        assert "frank" not in "".join(p.name for p in profiles)  # file names are hashes, never logins


def test_sign_in_page_and_sign_out(dummy: Server) -> None:
    with dummy.client() as client:
        page = client.get("/login")
        assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"csrf_token": token.group(1), "provider": "dummy", "login": "gina", "password": "contents:read"}
        signed_in = client.post("/login", data=form)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        assert client.get("/api/contents").status_code == 200
        lab = client.get("/lab", headers={"Accept": "text/html"})
        assert lab.status_code == 200 and "<html" in lab.text.lower()  # JupyterLab's page itself
        assert "gina" in client.get("/login").text  # the page now says who is signed in
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        assert client.post("/logout", data={"csrf_token": csrf.group(1)}).status_code == 303
        assert client.get("/api/contents").status_code == 401


def test_missing_config_file_is_a_clear_error(jv_venv: Any, tmp_path: Path) -> None:
    # Our module fails at once; the short --timeout only stops the others waiting for its Auth
    # (measured here: 18 s with 15, 6 s with 3; the message came either way).
    command = [str(jv_venv.bin / "jupyverse"), "--port", str(free_port()), "--timeout", "5"]
    proc = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=jv_venv.env(HOME=str(tmp_path))
    )
    assert "--set auth_authcore.config_file=/path/to/authcore.yml" in proc.stdout + proc.stderr


def test_jupyterlab_in_a_browser(dummy: Server) -> None:
    """The real front end: sign in on the page, JupyterLab lists the files, no call is refused."""
    from playwright.sync_api import expect, sync_playwright

    from authcore.testing.servers import launch_chromium

    refused: list[str] = []
    granted = "contents:*,kernels:*,kernelspecs:read,sessions:*,status:read,yjs:*,terminals:*,nbconvert:read"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status in (401, 403) else None)
            page.goto(f"{dummy.base}/lab")
            assert page.url == f"{dummy.base}/login"  # sent to the sign-in page
            page.fill("#login", "ivy")
            page.fill("#password", granted)
            page.click("button[type=submit]")
            page.wait_for_url(f"{dummy.base}/lab**")
            # JupyterLab sends `Authorization: token …` and X-XSRFToken on its calls: the file
            # browser fills only when the listing is answered.
            expect(page.locator(".jp-DirListing-item", has_text="nb.ipynb")).to_be_visible(timeout=120_000)
        finally:
            browser.close()
    assert refused == []


# --------------------------------------------------------------------------- LDAP (real slapd)


def test_ldap_users_and_groups(ldap: Server, slapd: Any) -> None:
    with ldap.client() as anonymous:
        assert anonymous.get("/api/contents").status_code == 401
        wrong = anonymous.post("/auth/login", json={"plugin": "site-ldap", "login": "alice", "password": "nope"})
        assert wrong.status_code == 401 and "nope" not in wrong.text
    with login(ldap, "site-ldap", "alice", "alice-pw") as alice:  # developers + admins
        assert alice.get("/api/contents").status_code == 200
        assert alice.get("/api/kernels").status_code == 200
        assert "Alice" in alice.get("/api/me").json()["identity"]["name"]  # the directory's name
        room_id = room(alice)
        assert isinstance(websocket(ldap, room_id, alice), bytes)  # yjs:* from the admins group
    assert websocket(ldap, room_id) == 1008
    with login(ldap, "site-ldap", "bob", "bob-pw") as bob:  # developers only: no yjs permission
        assert bob.get("/api/contents").status_code == 200
        assert websocket(ldap, room_id, bob) == 1008
    with login(ldap, "site-ldap", "john.doe", "john-pw") as john:  # staff: none of the mapped groups
        assert john.get("/api/contents").status_code == 403
        assert john.get("/api/kernels").status_code == 403
    assert slapd.reader_password not in ldap.log_text()


# --------------------------------------------------------------------------- noauth


def test_noauth_is_fps_noauth(noauth: Server) -> None:
    with noauth.client() as client:
        assert client.get("/api/contents").status_code == 200
        assert client.get("/api/kernels").status_code == 200
        assert client.get("/api/me").json()["identity"]["username"] == "anonymous"
        assert client.get("/login").status_code == 404  # nothing to sign in to
        room_id = room(client)
        assert isinstance(websocket(noauth, room_id), bytes)  # no cookie at all, accepted


# --------------------------------------------------------------------------- swapping with fps-auth


def test_swap_with_fps_auth_and_back(jv_venv: Any, tmp_path: Path, wheels: dict[str, Path]) -> None:
    jv_venv.pip("uninstall", "-y", "fps-auth-authcore")
    jv_venv.install(FPS_AUTH)
    try:
        theirs = Server(
            jv_venv, tmp_path / "fps-auth", ["auth.mode=user", "auth.test=true", f"auth.directory={tmp_path}/db"], {}
        )
        try:
            with theirs.client() as client:
                assert client.get("/auth/config").status_code == 404  # not ours
                signed_in = client.post("/auth/login", data={"username": "admin@jupyter.com", "password": "jupyverse"})
                assert signed_in.status_code == 204 and "fastapiusersauth" in client.cookies
        finally:
            theirs.stop()
    finally:
        jv_venv.pip("uninstall", "-y", "fps-auth", "fps-login")
        jv_venv.install("--no-deps", wheels["fps-auth-authcore"])
    assert not jv_venv.has("fps-auth") and jv_venv.has("fps-auth-authcore")
    ours = start(jv_venv, tmp_path / "ours", "providers:\n  - name: dummy\n")
    try:
        with ours.client() as client:
            assert client.get("/auth/config").status_code == 200
            assert client.get("/api/contents").status_code == 401
        with login(ours, "dummy", "hank", "contents:read") as client:
            assert client.get("/api/contents").status_code == 200
    finally:
        ours.stop()
