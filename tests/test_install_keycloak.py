"""The auth-keycloak install story: built wheels in a fresh virtualenv, the CLI against the test server.

authcore and auth-keycloak are installed *by path* from wheels built from this tree (the
package index holds an unrelated ``authcore`` 0.1.x that must never be picked up); their
dependencies (python-keycloak, pydantic, ...) come from the index. The Keycloak-compatible
test server runs from the interpreter running the tests (``python -m auth_keycloak.testing``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("auth_keycloak.testing")
requests = pytest.importorskip("requests")


@pytest.fixture(scope="module")
def keycloak_venv(wheels: dict[str, Path], fresh_venv: Callable[..., Any]) -> Path:
    """A virtualenv with our authcore and auth-keycloak wheels installed by path."""
    ours = wheels["authcore"], wheels["auth-keycloak"]
    root: Path = fresh_venv("keycloak-install", *ours, find_links=wheels["authcore"].parent).root
    return root


@pytest.fixture(scope="module")
def keycloak_server(child_env: Callable[..., dict[str, str]]) -> Iterator[dict[str, Any]]:
    """The test server in a child process; yields what it printed (url, realm, clients, users)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "auth_keycloak.testing"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        info: dict[str, Any] = json.loads(proc.stdout.readline())
        yield info
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def config_file(tmp_path: Path, keycloak_server: dict[str, Any]) -> Path:
    path = tmp_path / "authcore.yml"
    path.write_text(
        "providers:\n"
        "  - name: sso\n"
        "    type: keycloak\n"
        "    config:\n"
        f"      KEYCLOAK_SERVER_URL: {keycloak_server['url']}\n"
        f"      KEYCLOAK_REALM_NAME: {keycloak_server['realm']}\n"
        f"      KEYCLOAK_CLIENT_ID: {keycloak_server['client_id']}\n"
        "      KEYCLOAK_CLIENT_SECRET_KEY: ${KC_SECRET}\n"
        "permissions:\n"
        "  groups:\n"
        "    user: [own_proposals]\n"
        "    Admin: [all_proposals]\n"
        "    staff: [staff_area]\n"
    )
    return path


def run(venv: Path, *args: str, input: str = "", env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "authcore"), *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=venv,
    )


def issued_token(info: dict[str, Any], client_id: str, secret: str, login: str) -> str:
    reply = requests.post(
        info["issuer"] + "/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": secret,
            "username": login,
            "password": info["users"][login],
            "scope": "openid",
        },
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def test_keycloak_login_and_token_verify_in_a_fresh_venv(
    keycloak_venv: Path,
    keycloak_server: dict[str, Any],
    config_file: Path,
    tmp_path: Path,
    child_env: Callable[..., dict[str, str]],
):
    env = child_env(
        {
            "AUTHCORE_STATE_DIR": str(tmp_path / "state"),
            "KC_SECRET": keycloak_server["client_secret"],
            "VIRTUAL_ENV": str(keycloak_venv),
            "PATH": f"{keycloak_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }
    )
    where = subprocess.run(
        [str(keycloak_venv / "bin" / "python"), "-c", "import authcore, auth_keycloak; print(authcore.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert str(keycloak_venv) in where.stdout  # the wheel, not the editable checkout

    providers = run(keycloak_venv, "providers", "--json", env=env)
    assert providers.returncode == 0, providers.stderr
    assert {"name": "keycloak", "distribution": "auth-keycloak", "version": "0.1.0"} in json.loads(providers.stdout)

    login = run(
        keycloak_venv,
        "login",
        "--config",
        str(config_file),
        "--provider",
        "sso",
        "--login",
        "bob",
        "--password-stdin",
        "--json",
        input=keycloak_server["users"]["bob"] + "\n",
        env=env,
    )
    assert login.returncode == 0, login.stderr
    result = json.loads(login.stdout)
    assert result["login"] == "bob"
    assert {"all_proposals", "own_proposals"} <= set(result["permissions"])
    assert keycloak_server["client_secret"] not in login.stdout + login.stderr

    wrong = run(
        keycloak_venv,
        "login",
        "--config",
        str(config_file),
        "--provider",
        "sso",
        "--login",
        "bob",
        "--password-stdin",
        input="not-the-password\n",
        env=env,
    )
    assert wrong.returncode == 1, (wrong.stdout, wrong.stderr)
    assert "Traceback" not in wrong.stderr

    ours = issued_token(keycloak_server, keycloak_server["client_id"], keycloak_server["client_secret"], "alice")
    verified = run(keycloak_venv, "token", "verify", "--config", str(config_file), "--json", ours, env=env)
    assert verified.returncode == 0, verified.stderr
    data = json.loads(verified.stdout)
    assert data["login"] == "alice" and data["provider"] == "sso"
    assert {"own_proposals", "staff_area"} <= set(data["permissions"])

    theirs = issued_token(
        keycloak_server, keycloak_server["other_client_id"], keycloak_server["other_client_secret"], "alice"
    )
    refused = run(keycloak_venv, "token", "verify", "--config", str(config_file), theirs, env=env)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr
