"""`pip install authcore auth-oidc` and one YAML block is all a site needs.

A fresh virtualenv gets our two wheels (their dependencies from the index), a configuration
holds one `type: oidc` block pointing at a real issuer (panva's oidc-provider, started by the
test kit), and the installed `authcore` command checks the issuer, logs a user in and verifies
the token. `authcore --help` in that environment imports neither the provider nor httpx.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auth_oidc.testing import CLIENT_ID, CLIENT_SECRET, USERS, OidcProviderServer, standard_client, standard_users


@pytest.fixture(scope="module")
def oidc_venv(
    wheels: dict[str, Path], fresh_venv: Callable[..., Any]
) -> Iterator[tuple[Path, Callable[..., dict[str, str]]]]:
    ours = wheels["authcore"], wheels["auth-oidc"]
    venv = fresh_venv("install-oidc", *ours, find_links=wheels["authcore"].parent)
    yield venv.root, venv.env


def test_one_yaml_block_logs_in_through_the_installed_command(
    oidc_venv: tuple[Path, Callable[..., dict[str, str]]], tmp_path: Path
) -> None:
    root, env = oidc_venv
    authcore = str(root / "bin" / "authcore")
    with OidcProviderServer(
        clients=[standard_client()], users=standard_users(), access_token_format="jwt", password_grant=True
    ) as issuer:
        config = tmp_path / "authcore.yml"
        config.write_text(
            textwrap.dedent(
                f"""\
                providers:
                  - name: corp
                    type: oidc
                    config:
                      issuer: {issuer.issuer}
                      client_id: {CLIENT_ID}
                      client_secret: ${{OIDC_CLIENT_SECRET}}
                      password_grant: true
                      scope: openid profile email groups
                permissions:
                  groups: {{staff: [beamline:operate]}}
                """
            )
        )
        run_env = env(OIDC_CLIENT_SECRET=CLIENT_SECRET, AUTHCORE_STATE_DIR=str(tmp_path / "state"))

        def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [authcore, *args], input=stdin, capture_output=True, text=True, env=run_env, timeout=120, cwd=root
            )

        checked = run("check", "--config", str(config))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        login = run(
            "login", "--config", str(config), "--provider", "corp", "--login", "alice", "--password-stdin", "--json",
            stdin=USERS["alice"][0] + "\n",
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        assert CLIENT_SECRET not in login.stdout + login.stderr
        token = json.loads(login.stdout)["token"]
        verified = run("token", "verify", "--config", str(config), "--json", token)
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["permissions"] == ["beamline:operate"]
        wrong = run(
            "login", "--config", str(config), "--provider", "corp", "--login", "alice", "--password-stdin",
            stdin="not-her-password\n",
        )  # fmt: skip
        assert wrong.returncode != 0 and "Traceback" not in wrong.stderr


def test_help_imports_neither_the_provider_nor_httpx(oidc_venv: tuple[Path, Callable[..., dict[str, str]]]) -> None:
    root, env = oidc_venv
    probe = (
        "import sys\n"
        "from authcore.cli import run\n"
        "sys.argv = ['authcore', '--help']\n"
        "try:\n    run()\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('auth_oidc', 'httpx')))\n"
    )
    shown = subprocess.run(
        [str(root / "bin" / "python"), "-c", probe], capture_output=True, text=True, env=env(), timeout=120, check=True
    )
    assert shown.stdout.strip().splitlines()[-1] == "[]"
