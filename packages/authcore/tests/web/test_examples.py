"""The examples under examples/ over real HTTP: py-ispyb service, Jupyverse-like app, MXCuBE-like app."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import authcore_webtest_support as support
import httpx
import websockets
from conftest import REPO

EXAMPLES = REPO / "examples"


def load(example: str) -> ModuleType:
    path = EXAMPLES / example / "app.py"
    name = f"authcore_example_{example}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_pyispyb_service_from_the_seed_auth_yml():
    module = load("pyispyb_service")
    assert (EXAMPLES / "pyispyb_service" / "auth.yml").read_text().startswith("# py-ispyb")
    with support.run_uvicorn(module.create_app()) as url, httpx.Client(base_url=url) as client:
        seed = {"plugin": "dummy", "login": "test", "password": "Admin", "token": "Admin"}
        data = client.post("/ispyb/api/v1/auth/login", json=seed).json()
        assert {"login", "token", "permissions"} <= set(data)
        assert data["login"] == "test" and data["permissions"] == ["Admin", "all_proposals", "all_sessions"]
        headers = {"Authorization": f"Bearer {data['token']}"}
        assert client.get("/ispyb/api/v1/proposals", headers=headers).json()[0]["proposalCode"] == "MX"
        assert client.get("/ispyb/api/v1/sessions", headers=headers).status_code == 200
        user = client.post("/ispyb/api/v1/auth/login", json={**seed, "login": "u", "password": "user", "token": "user"})
        user_headers = {"Authorization": f"Bearer {user.json()['token']}"}
        assert client.get("/ispyb/api/v1/sessions", headers=user_headers).status_code == 403
        assert client.get("/ispyb/api/v1/proposals").status_code == 401
        config = client.get("/ispyb/api/v1/auth/config").json()
        assert config["providers"][0]["name"] == "dummy"


async def _kernel_session(url: str, token: str) -> list[Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers, open_timeout=5) as conn:
        first = json.loads(await conn.recv())
        await conn.send("1 + 1")
        second = json.loads(await conn.recv())
        return [first, second]


async def _refused(url: str, token: str) -> int | None:
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as conn:
        try:
            await asyncio.wait_for(conn.recv(), 5)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


def test_jupyverse_like_app():
    module = load("jupyverse_app")
    with support.run_uvicorn(module.create_app()) as url, httpx.Client(base_url=url) as client:

        def token(perms: str) -> str:
            r = client.post("/auth/login", json={"plugin": "dummy", "login": "jo", "password": perms})
            return str(r.json()["token"])

        reader = {"Authorization": f"Bearer {token('contents:read,kernels:execute')}"}
        assert client.get("/api/contents", headers=reader).json() == ["notebook.ipynb"]
        assert client.put("/api/contents/a.py", headers=reader, json={"content": "x"}).status_code == 403
        assert client.get("/api/me", headers=reader).json()["username"] == "jo"
        ws = url.replace("http", "ws") + "/api/kernels/k1/channels"
        first, second = asyncio.run(_kernel_session(ws, token("kernels:execute")))
        assert first == {"kernel": "k1", "permissions": {"kernels": ["execute"]}}
        assert second == {"echo": "1 + 1"}
        assert asyncio.run(_refused(ws, token("contents:read"))) == 1008


def test_mxcube_like_app_with_sliding_sessions():
    module = load("mxcube_app")
    with support.run_werkzeug(module.create_app()) as url, httpx.Client(base_url=url) as client:
        prefix = "/mxcube/api/v0.1"
        body = {"plugin": "dummy", "login": "opid", "password": "queue:read,queue:write"}
        data = client.post(f"{prefix}/auth/login", json=body).json()
        assert client.get(f"{prefix}/queue").json()["user"] == "opid"
        assert client.post(f"{prefix}/queue").status_code == 403  # no CSRF header
        added = client.post(f"{prefix}/queue", headers={"X-CSRF-Token": data["csrf_token"]})
        assert added.json()["queue"] == [{"sample": 1, "by": "opid"}]
        assert client.post(f"{prefix}/beamline/move", headers={"X-CSRF-Token": data["csrf_token"]}).status_code == 403
        refreshed = client.get(f"{prefix}/auth/refresh_session")
        assert refreshed.status_code == 200 and refreshed.json()["idle_timeout"] == 1800
        assert "Expires=" in refreshed.headers["set-cookie"]
