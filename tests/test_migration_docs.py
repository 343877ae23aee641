"""docs/migration.md's commands, run as written: each system's section shows the seed's configuration
unchanged and a command that serves it; here the configuration is read out of the document itself,
so the guide cannot drift from what works.

* py-ispyb: the seed's ``auth.yml`` under ``authcore serve --prefix /ispyb/api/v1``, then the
  seed's ``curl`` login body, answered as py-ispyb answers it.
* lowball: the seed's ``auth_provider:`` settings under a ``lowball`` provider whose class is
  written as lowball's documentation shows (``__init__(client_id, password, hostname)``), with
  ``web.lowball`` on: lowball's login route answers.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import httpx
import yaml

from authcore.testing.service_process import start_service

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "migration.md"


def section(title: str) -> str:
    """The text of ``## <title>`` up to the next ``## `` heading."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert found, f"docs/migration.md has no section {title!r}"
    return found.group(1)


def yaml_blocks(text: str) -> list[str]:
    """The ```yaml fenced blocks of *text*, dedented (a block may sit inside a list item)."""
    return [textwrap.dedent(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_pyispyb_seed_auth_yml_served_and_logged_in(tmp_path: Path) -> None:
    text = section("py-ispyb")
    config = tmp_path / "auth.yml"
    config.write_text(yaml_blocks(text)[0], encoding="utf-8")
    assert "authcore serve --config auth.yml --prefix /ispyb/api/v1" in text
    body = re.search(r"-d '(\{.*?\})'", text)
    assert body, "the curl command's body"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCORE_")}
    service = start_service(config, env=env, args=["--prefix", "/ispyb/api/v1"])
    try:
        answer = httpx.post(
            service.url + "/ispyb/api/v1/auth/login",
            content=body.group(1),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["login"], answer.json()["permissions"]) == ("test", ["Admin"])
        plugins = httpx.get(service.url + "/ispyb/api/v1/auth/config").json()["plugins"]
        assert [p["name"] for p in plugins] == ["dummy"]
    finally:
        service.stop()


MY_PROVIDER = """
from lowball.exceptions import InvalidCredentialsException
from lowball.models.authentication_models import ClientData
from lowball.models.provider_models.auth_provider import AuthPackage, AuthProvider


class MyAuthPackage(AuthPackage):
    def __init__(self, username, password, **kwargs):
        super().__init__(**kwargs)
        self.username = username
        self.password = password


class MyAuthProvider(AuthProvider):
    def __init__(self, client_id, password, hostname, **kwargs):
        super().__init__(**kwargs)
        self.client_id, self._password, self.hostname = client_id, password, hostname

    @property
    def auth_package_class(self):
        return MyAuthPackage

    def authenticate(self, auth_package):
        # A directory at self.hostname would be asked here; the test's has one user.
        if auth_package.username != "the_user" or auth_package.password != "MySuperComplexPassword":
            raise InvalidCredentialsException
        return ClientData(client_id=auth_package.username, roles=["role1"])
"""


def test_lowball_seed_settings_served_at_lowballs_routes(tmp_path: Path) -> None:
    text = section("lowball")
    block = yaml_blocks(text)[0]
    settings = yaml.safe_load(block)["providers"][0]["config"]["auth_provider_config"]
    assert settings == {"client_id": "user", "password": "keepitsecretkeepitsafe", "hostname": "host.domain.com"}
    package = tmp_path / "my_package"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "auth.py").write_text(MY_PROVIDER, encoding="utf-8")
    config = tmp_path / "authcore.yml"
    config.write_text("tokens: {secret: migration-guide-test-only-secret-0123456789}\n" + block, encoding="utf-8")
    assert "authcore serve --config authcore.yml" in text
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTHCORE_")}, "PYTHONPATH": str(tmp_path)}
    service = start_service(config, env=env)
    try:
        # The request body of lowball's documentation (AuthPackage), at lowball's route.
        body = {"username": "the_user", "password": "MySuperComplexPassword"}
        answer = httpx.post(service.url + "/builtins/auth", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_data"]["cid"] == "the_user"
        token = answer.json()["token"]
        assert (
            httpx.get(service.url + "/builtins/auth", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        assert httpx.post(service.url + "/builtins/auth", json={**body, "password": "x"}).status_code == 401
    finally:
        service.stop()
    assert "keepitsecretkeepitsafe" not in service.log_text()
