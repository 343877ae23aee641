"""py-ispyb authentication plugins load unchanged through AUTH_MODULE/AUTH_CLASS (authcore.compat.pyispyb).

The plugin modules below are written as py-ispyb's documentation (seed 000/001) shows them,
against a base class of the site's own shaped like py-ispyb's ``AbstractAuthentication``, and
return real ``ispyb.models.Person`` objects (ispyb-models).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from authcore import AuthManager
from authcore.compat.pyispyb import AbstractAuthentication, AuthType, PluginSettings, PyIspybPlugin, adapt
from authcore.errors import ConfigError, InvalidCredentials, ProviderUnavailable
from authcore.testing import Login, ProviderConformance
from authcore.testing.servers import run_asgi

SECRET = "a-test-secret-of-at-least-32-bytes-xx"

# ispyb-models' mappers warn under SQLAlchemy 2.1 (overlapping relationships of tables we never use).
pytestmark = pytest.mark.filterwarnings(
    "ignore::sqlalchemy.exc.SAWarning", "ignore::sqlalchemy.exc.SADeprecationWarning"
)

#: A site's copy of py-ispyb's base class: an ABC, AuthType, a dispatching authenticate().
BASE = """
import enum
from abc import ABC
from typing import Any, Optional


class AuthType(str, enum.Enum):
    login = "login"
    token = "token"


class AbstractAuthentication(ABC):
    authentication_type: AuthType = AuthType.login
    config_export = []

    def configure(self, config: dict[str, Any]) -> None:
        return

    def authenticate(self, login, password, token):
        if self.authentication_type == AuthType.token:
            return self.authenticate_by_token(token)
        return self.authenticate_by_login(login, password)

    def authenticate_by_login(self, login: str, password: str):
        pass

    def authenticate_by_token(self, token: str):
        pass
"""

#: The seed's login example, filled in.
LOGIN_PLUGIN = '''
import logging
from typing import Any, Optional

from ispyb import models

from .AbstractAuthentication import AbstractAuthentication

logger = logging.getLogger(__name__)


class MyAuthentication(AbstractAuthentication):
    """My authentication class."""

    def configure(self, config: dict[str, Any]):
      self._config = config

    def authenticate_by_login(self, login: str, password: str) -> Optional[models.Person]:
        if self._config["PASSWORDS"].get(login) == password:
            return models.Person(
                login=login,
                familyName="Curie",
                givenName="Marie",
                emailAddress="marie@example.org",
            )
        else:
          logger.warning("Something went wrong")
'''

#: The seed's token example with config_export, filled in.
TOKEN_PLUGIN = '''
from typing import Any, Optional

from ispyb import models

from .AbstractAuthentication import AbstractAuthentication, AuthType


class MyAuthentication(AbstractAuthentication):
    """My authentication class."""

    authentication_type = AuthType.token
    config_export = ["MY_CONFIG_PROPERTY"]

    def configure(self, config: dict[str, Any]):
      self._config = config

    def authenticate_by_token(self, token: str) -> Optional[models.Person]:
        login = self._config["TOKENS"].get(token)
        if login:
            return models.Person(login=login)
'''

#: Plugins whose failures authcore must report without leaking what was typed.
BROKEN = """
from ispyb import models


class Raises:
    def authenticate_by_login(self, login, password):
        raise RuntimeError("LDAP said no to " + password)


class NoLogin:
    def authenticate_by_login(self, login, password):
        return models.Person(givenName="Anon")


class BadConfigure:
    def configure(self, config):
        config["MISSING"]

    def authenticate_by_login(self, login, password):
        return None


class NotAPlugin:
    pass


class WrongType:
    authentication_type = "kerberos"

    def authenticate_by_login(self, login, password):
        return None
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site package ``seed_site`` with the plugins above, importable for one test."""
    package = tmp_path / "lib" / "seed_site"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, source in {
        "AbstractAuthentication": BASE,
        "MyAuthentication": LOGIN_PLUGIN,
        "MyTokenAuthentication": TOKEN_PLUGIN,
        "broken": BROKEN,
    }.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    yield tmp_path
    for module in [m for m in sys.modules if m == "seed_site" or m.startswith("seed_site.")]:
        del sys.modules[module]


AUTH_YML = f"""\
tokens: {{secret: {SECRET}}}
AUTH:
  - mine:
      ENABLED: true
      AUTH_MODULE: "seed_site.MyAuthentication"
      AUTH_CLASS: "MyAuthentication"
      CONFIG:
        PASSWORDS: {{marie: "s3cret"}}
  - tok:
      ENABLED: true
      AUTH_MODULE: "seed_site.MyTokenAuthentication"
      AUTH_CLASS: "MyAuthentication"
      CONFIG:
        MY_CONFIG_PROPERTY: "shown to the UI"
        HIDDEN_KEY: "never shown"
        TOKENS: {{opaque-abc: pierre}}
permissions:
  authenticated: [own_proposals]
"""


def manager_for(directory: Path, text: str) -> AuthManager:
    path = directory / "auth.yml"
    path.write_text(text)
    return AuthManager.from_file(path)


def test_seed_plugins_load_unchanged_from_auth_yml(site: Path) -> None:
    with manager_for(site, AUTH_YML) as manager:
        mine, tok = manager.provider("mine"), manager.provider("tok")
        assert isinstance(mine, PyIspybPlugin) and isinstance(tok, PyIspybPlugin)
        result = manager.login("mine", login="marie", password="s3cret")
        identity = result.identity
        assert identity.to_person() == {
            "login": "marie",
            "givenName": "Marie",
            "familyName": "Curie",
            "emailAddress": "marie@example.org",
        }
        assert identity.provider == "mine" and result.permissions == ("own_proposals",)
        assert manager.verify(result.access_token).login == "marie"
        # py-ispyb's client sends login, password and token together: the token plugin takes the token.
        pierre = manager.login("tok", login="x", password="y", token="opaque-abc")
        assert pierre.login == "pierre"
        for provider, credentials in (("mine", {"login": "marie", "password": "wrong"}), ("tok", {"token": "nope"})):
            with pytest.raises(InvalidCredentials) as refused:
                manager.login(provider, **credentials)
            assert str(refused.value) == "invalid login or password"
        with pytest.raises(InvalidCredentials):  # a login plugin takes no token alone
            manager.login("mine", token="opaque-abc")
        public = {p["name"]: p for p in manager.public_config()["providers"]}
        assert public["tok"]["config"] == {"MY_CONFIG_PROPERTY": "shown to the UI"}
        assert public["mine"]["config"] == {} and public["tok"]["credentials"] == ["token"]
        assert "never shown" not in repr(tok.config) and "s3cret" not in repr(mine.config)


def test_auth_config_has_py_ispybs_plugins_shape(site: Path) -> None:
    from fastapi import FastAPI

    from authcore.web.fastapi import FastAPIAuth

    with manager_for(site, AUTH_YML) as manager:
        app = FastAPI()
        FastAPIAuth(manager, prefix="/ispyb/api/v1").install(app)
        with run_asgi(app) as url, httpx.Client(base_url=url + "/ispyb/api/v1") as client:
            config = client.get("/auth/config").json()
            assert config["plugins"] == [
                {"name": "mine", "config": {}},
                {"name": "tok", "config": {"MY_CONFIG_PROPERTY": "shown to the UI"}},
            ]
            body = {"plugin": "mine", "login": "marie", "password": "s3cret", "token": "s3cret"}
            answer = client.post("/auth/login", json=body).json()
            assert answer["login"] == "marie" and answer["permissions"] == ["own_proposals"]
            me = client.get("/auth/me", headers={"Authorization": f"Bearer {answer['token']}"})
            assert me.json()["login"] == "marie"


class OurBase(AbstractAuthentication):
    """A new plugin on authcore's base class, token type."""

    authentication_type = AuthType.token
    config_export = ("REALM",)

    def configure(self, config: dict[str, object]) -> None:
        self.realm = config["REALM"]

    def authenticate_by_token(self, token: str) -> object:
        from ispyb import models

        return models.Person(login=f"{token}@{self.realm}", personId=7) if token.startswith("ok") else None


class Plain:
    """No base class at all: only the method."""

    def authenticate_by_login(self, login: str, password: str) -> object:
        from ispyb import models

        return models.Person(login=login) if password == "pw" else None


def test_authcores_base_and_a_plain_class_through_class_entries() -> None:
    config = {
        "tokens": {"secret": SECRET},
        "providers": [
            {"name": "ours", "class": f"{__name__}:OurBase", "config": {"REALM": "esrf"}},
            {"name": "plain", "class": f"{__name__}.Plain"},  # py-ispyb's dotted form too
        ],
    }
    with AuthManager.from_config(config) as manager:
        identity = manager.login("ours", token="ok1").identity
        assert identity.login == "ok1@esrf" and identity.attributes == {"personId": 7}
        assert manager.provider("ours").public_config()["config"] == {"REALM": "esrf"}
        plugin = OurBase()
        plugin.configure({"REALM": "x"})
        assert plugin.authenticate(None, None, "ok2").login == "ok2@x"  # py-ispyb's dispatch
        assert manager.login("plain", login="jo", password="pw").login == "jo"
        with pytest.raises(InvalidCredentials):
            manager.login("plain", login="jo", password="other")
    assert adapt(Plain) is adapt(Plain)  # one adapter class per plugin class
    assert adapt(Plain).credential_types != adapt(OurBase).credential_types


def entry(site: Path, cls: str, **extra: object) -> str:
    config = "".join(f"        {key}: {value}\n" for key, value in extra.items())
    block = f"      CONFIG:\n{config}" if config else ""
    return (
        f"tokens: {{secret: {SECRET}}}\nAUTH:\n  - site:\n      ENABLED: true\n"
        f'      AUTH_MODULE: "seed_site.broken"\n      AUTH_CLASS: "{cls}"\n{block}'
    )


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        ("NotAPlugin", "is not a subclass of authcore.Provider"),
        ("BadConfigure", "failed to start: KeyError"),
        ("WrongType", "authentication_type must be 'login' or 'token'"),
    ],
)
def test_what_cannot_start_is_a_located_config_error(site: Path, cls: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        manager_for(site, entry(site, cls))
    assert message in str(refused.value) and "auth.yml" in str(refused.value)


def test_config_export_must_name_config_keys(site: Path) -> None:
    text = AUTH_YML.replace('MY_CONFIG_PROPERTY: "shown to the UI"', 'OTHER: "x"')
    with pytest.raises(ConfigError, match=r"config_export names keys CONFIG does not set: \['MY_CONFIG_PROPERTY'\]"):
        manager_for(site, text)


def test_plugin_failures_do_not_leak_what_was_typed(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = entry(site, "Raises") + entry(site, "NoLogin").split("AUTH:\n", 1)[1].replace("- site:", "- nologin:")
    with manager_for(site, text) as manager, caplog.at_level(logging.DEBUG):
        with pytest.raises(ProviderUnavailable) as failed:
            manager.login("site", login="marie", password="hunter2-typed")
        assert "hunter2" not in str(failed.value) and "hunter2" not in caplog.text
        assert "RuntimeError" in caplog.text
        with pytest.raises(ProviderUnavailable, match="Person without a login"):
            manager.login("nologin", login="marie", password="x")


def test_plugin_settings_keep_keys_as_written() -> None:
    settings = PluginSettings.model_validate({"LDAP_URI": "ldap://x", "KEYCLOAK_CLIENT_SECRET_KEY": "s"})
    assert settings.raw() == {"LDAP_URI": "ldap://x", "KEYCLOAK_CLIENT_SECRET_KEY": "s"}
    assert repr(settings) == str(settings) == "PluginSettings(keys=['KEYCLOAK_CLIENT_SECRET_KEY', 'LDAP_URI'])"


class Directory:
    """A py-ispyb login plugin over a fixed directory, for the provider conformance suite."""

    def configure(self, config: dict[str, object]) -> None:
        self.users = config["USERS"]

    def authenticate_by_login(self, login: str, password: str) -> object:
        from ispyb import models

        user = self.users.get(login) if isinstance(self.users, dict) else None
        if user is None or user["password"] != password:
            return None
        return models.Person(login=login, givenName=user["given"], emailAddress=f"{login}@example.org")


class TestAdaptedPluginConformance(ProviderConformance):
    """An adapted py-ispyb plugin passes the suite every authcore provider passes."""

    provider_name = "site"

    @pytest.fixture
    def conformance_config(self) -> dict[str, object]:
        users = {"marie": {"password": "radium-88", "given": "Marie"}, "pierre": {"password": "pol0nium", "given": "P"}}
        return {
            "tokens": {"secret": SECRET},
            "providers": [{"name": "site", "class": f"{__name__}:Directory", "config": {"USERS": users}}],
            "permissions": {"authenticated": ["own_proposals"]},
        }

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            Login(
                login="marie",
                password="radium-88",
                expect_permissions=("own_proposals",),
                expect={"given_name": "Marie"},
            ),
            Login(login="pierre", password="pol0nium", expect={"email": "pierre@example.org"}),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return [Login(login="marie", password="wrong-one"), Login(login="nobody", password="radium-88")]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return ["radium-88", "pol0nium"]


def _example() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "examples" / "pyispyb_service" / "app.py"
    spec = importlib.util.spec_from_file_location("authcore_example_pyispyb_plugins", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_service_runs_its_site_plugin_and_the_ispyb_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authcore.compat.ispyb_db import IspybDatabase

    database = IspybDatabase(f"sqlite:///{tmp_path / 'ispyb.db'}")
    database.create_schema()
    database.grant("Admin", ["all_proposals", "all_sessions"])
    staff_id = database.add_person("staff", groups=["Admin"])
    monkeypatch.setenv("ISPYB_DATABASE_URL", str(database.engine.url))
    app = _example().create_app()
    with run_asgi(app) as url, httpx.Client(base_url=url + "/ispyb/api/v1") as client:
        config = client.get("/auth/config").json()
        assert config["plugins"] == [
            {"name": "dummy", "config": {}},
            {"name": "site", "config": {"SITE_NAME": "Example synchrotron"}},
        ]
        body = {"plugin": "site", "login": "staff", "password": "staff-password", "token": "staff-password"}
        answer = client.post("/auth/login", json=body).json()
        assert answer["permissions"] == ["all_proposals", "all_sessions"]
        headers = {"Authorization": f"Bearer {answer['token']}"}
        assert client.get("/sessions", headers=headers).status_code == 200
        assert client.get("/auth/me", headers=headers).json()["login"] == "staff"
        refused = client.post("/auth/login", json={**body, "password": "wrong"})
        assert refused.status_code == 401
        # The seed's dummy login has no Person row in this database: refused, as py-ispyb refuses it.
        dummy = {"plugin": "dummy", "login": "test", "password": "Admin", "token": "Admin"}
        assert client.post("/auth/login", json=dummy).status_code == 401
    assert staff_id > 0
    database.close()
