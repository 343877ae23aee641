"""py-ispyb's ``auth.yml`` with its Keycloak plugin, served over HTTP: ``/auth/config`` carries the
keys py-ispyb's ``KeycloakAuthentication.config_export`` names, which its front ends read to start
the Keycloak sign-in themselves, and the token login the front end then makes works."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from auth_keycloak.testing import CLIENT_ID, CLIENT_SECRET, USERS, KeycloakTestServer, Realm
from authcore import AuthManager
from authcore.testing.servers import run_asgi
from authcore.web.fastapi import FastAPIAuth

AUTH_YML = """\
AUTH:
  - keycloak:
      ENABLED: true
      AUTH_MODULE: "pyispyb.app.extensions.auth.KeycloakAuthentication"
      AUTH_CLASS: "KeycloakAuthentication"
      CONFIG:
        KEYCLOAK_SERVER_URL: "{server}"
        KEYCLOAK_CLIENT_ID: "{client}"
        KEYCLOAK_REALM_NAME: "{realm}"
        KEYCLOAK_CLIENT_SECRET_KEY: "{secret}"
"""


def test_config_export_and_token_login(
    keycloak_server: KeycloakTestServer, keycloak_realm: Realm, tmp_path: Path
) -> None:
    path = tmp_path / "auth.yml"
    path.write_text(
        AUTH_YML.format(server=keycloak_server.url, client=CLIENT_ID, realm=keycloak_realm.name, secret=CLIENT_SECRET),
        encoding="utf-8",
    )
    with AuthManager.from_file(path) as manager:
        api = FastAPI()
        FastAPIAuth(manager, prefix="/ispyb/api/v1").install(api)
        with run_asgi(api) as url:
            answer = httpx.get(f"{url}/ispyb/api/v1/auth/config")
            assert answer.status_code == 200
            assert CLIENT_SECRET not in answer.text
            (plugin,) = answer.json()["plugins"]
            assert plugin["name"] == "keycloak"
            assert plugin["config"] == {
                "KEYCLOAK_SERVER_URL": keycloak_server.url.rstrip("/") + "/",
                "KEYCLOAK_CLIENT_ID": CLIENT_ID,
                "KEYCLOAK_REALM_NAME": keycloak_realm.name,
            }
            # The front end signs in at Keycloak, then logs in to py-ispyb with the access token.
            upstream = httpx.post(
                f"{keycloak_server.url}/realms/{keycloak_realm.name}/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "username": "alice",
                    "password": USERS["alice"][0],
                },
            )
            assert upstream.status_code == 200, upstream.text
            body = {"plugin": "keycloak", "token": upstream.json()["access_token"]}
            login = httpx.post(f"{url}/ispyb/api/v1/auth/login", json=body)
            assert login.status_code == 200, login.text
            assert login.json()["login"] == "alice"
            assert json.dumps(login.json()).count(CLIENT_SECRET) == 0
