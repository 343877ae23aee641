"""Install story for auth-ldap: our wheels by path into a fresh venv, ``authcore login`` against a real slapd.

The package index holds an unrelated ``authcore`` 0.1.x: authcore is only ever installed
from its wheel, by path. The wheels come from the shared ``wheels`` fixture (conftest).
slapd is started by :class:`auth_ldap.testing.SlapdServer` (a missing slapd fails the test:
``apt-get install slapd ldap-utils``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture(scope="module")
def slapd() -> Iterator[object]:
    from auth_ldap.pytest_plugin import start_slapd

    server = start_slapd()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def ldap_venv(wheels: dict[str, Path], fresh_venv: Callable[..., Any]) -> Path:
    # Both of ours by path (the index's authcore is another project); ldap3, pydantic, … from the index.
    ours = wheels["authcore"], wheels["auth-ldap"]
    root: Path = fresh_venv("install-ldap", *ours, find_links=wheels["authcore"].parent).root
    return root


def _login(venv: Path, config: Path, provider: str, login: str, password: str, env: dict[str, str]) -> Any:
    return subprocess.run(
        [str(venv / "bin" / "authcore"), "login", "--config", str(config), "--provider", provider,
         "--login", login, "--password-stdin", "--json"],
        input=password + "\n", capture_output=True, text=True, timeout=120, env=env, cwd=config.parent,
    )  # fmt: skip


def test_installed_wheels_log_a_slapd_user_in(
    ldap_venv: Path, slapd: Any, tmp_path: Path, child_env: Callable[..., dict[str, str]]
) -> None:
    version = subprocess.run(
        [str(ldap_venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('authcore'))"],
        capture_output=True, text=True, check=True, env=child_env(),
    )  # fmt: skip
    assert not version.stdout.startswith("0.1."), "the unrelated authcore from the index"
    config = tmp_path / "authcore.yml"
    # The password from the environment, as a site's file would take it.
    ldap = slapd.provider_config(bind_password="${LDAP_READER_PASSWORD}")
    permissions = {"groups": {"admins": ["all_proposals"], "developers": ["code"]}}
    providers = [{"name": "site-ldap", "type": "ldap", "config": ldap}]
    config.write_text(yaml.safe_dump({"providers": providers, "permissions": permissions}))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    env = child_env({"AUTHCORE_STATE_DIR": str(state), "LDAP_READER_PASSWORD": slapd.reader_password})
    proc = _login(ldap_venv, config, "site-ldap", "alice", "alice-pw", env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "alice" in json.dumps(data)
    assert {"admins", "staff", "developers"} <= set(data["groups"])
    assert {"all_proposals", "code"} <= set(data["permissions"])
    assert slapd.reader_password not in proc.stdout + proc.stderr
    wrong = _login(ldap_venv, config, "site-ldap", "alice", "wrong-pw", env)
    assert wrong.returncode != 0 and "wrong-pw" not in wrong.stdout + wrong.stderr


def test_pyispyb_auth_yml_works(ldap_venv: Path, slapd: Any, tmp_path: Path, child_env: Callable[..., Any]) -> None:
    config = tmp_path / "auth.yml"
    config.write_text(
        f"""
AUTH:
  - ldap:
      ENABLED: true
      AUTH_MODULE: "pyispyb.app.extensions.auth.LdapAuthentication"
      AUTH_CLASS: "LdapAuthentication"
      CONFIG:
        LDAP_URI: "{slapd.uri}"
        LDAP_BASE_INTERNAL: "{slapd.people_dn}"
        LDAP_BASE_GROUPS: "{slapd.groups_dn}"
"""
    )
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    proc = _login(ldap_venv, config, "ldap", "bob", "bob-pw", child_env({"AUTHCORE_STATE_DIR": str(state)}))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "bob" in json.dumps(data)
    assert {"developers", "ops", "auditors"} <= set(data["groups"])
