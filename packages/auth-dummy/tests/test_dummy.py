"""auth-dummy: the conformance suite plus py-ispyb's DummyAuthentication behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from authcore import AuthManager, ConfigError, InvalidCredentials
from authcore.testing import Login, ProviderConformance

SEED_AUTH_YML = """\
AUTH:
  - dummy:
      ENABLED: true
      AUTH_MODULE: "pyispyb.app.extensions.auth.DummyAuthentication"
      AUTH_CLASS: "DummyAuthentication"
"""


class TestDummyConformance(ProviderConformance):
    provider_name = "dummy"

    @pytest.fixture
    def conformance_config(self):
        return {"providers": [{"name": "dummy", "type": "dummy"}]}

    @pytest.fixture
    def valid_logins(self):
        return [
            Login(login="test", password="Admin", expect_permissions=("Admin",), secret=False),
            Login(login="alice", password="read,write", expect_permissions=("read", "write"), secret=False),
            Login(login="bob", password="contents:read", expect_permissions=("contents:read",), secret=False),
            Login(login="jöns", password="own_proposals", expect_permissions=("own_proposals",), secret=False),
        ]

    @pytest.fixture
    def invalid_logins(self):
        # Permission names cannot hold spaces or control characters: that password is refused.
        return [Login(login="test", password="not a permission"), Login(login="x", password="a b,c d")]


def test_password_lists_permissions():
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as manager:
        result = manager.login("dummy", login="test", password="Admin")
        assert result.permissions == ("Admin",)
        assert result.identity.groups == ("Admin",)
        assert manager.login("dummy", login="u", password=" a , b ,, c").permissions == ("a", "b", "c")


def test_token_lists_permissions():
    with AuthManager.from_config({"providers": [{"name": "dummy", "config": {"token_login": "robot"}}]}) as manager:
        result = manager.login("dummy", token="all_proposals,all_sessions")
        assert result.login == "robot"
        assert result.permissions == ("all_proposals", "all_sessions")


def test_py_ispyb_body_with_password_and_token():
    # py-ispyb's client sends both; the password wins for a provider that takes passwords.
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as manager:
        result = manager.login("dummy", login="test", password="Admin", token="Other")
        assert (result.login, result.permissions) == ("test", ("Admin",))


def test_group_mapping_applies_to_dummy_groups():
    config = {"providers": [{"name": "dummy"}], "permissions": {"groups": {"Admin": ["all_proposals"]}}}
    with AuthManager.from_config(config) as manager:
        assert manager.login("dummy", login="t", password="Admin").permissions == ("Admin", "all_proposals")


def test_seed_auth_yml_loads_and_logs_in(tmp_path: Path):
    path = tmp_path / "auth.yml"
    path.write_text(SEED_AUTH_YML)
    with AuthManager.from_file(path) as manager:
        result = manager.login("dummy", login="test", password="Admin", token="Admin")
        assert result.permissions == ("Admin",)
        assert manager.verify(result.access_token).permissions == frozenset({"Admin"})


def test_refused_in_production():
    config = {
        "production": True,
        "tokens": {"secret": "test-only-secret-0123456789abcdefghij"},
        "providers": [{"name": "dummy"}],
    }
    with pytest.raises(ConfigError, match="development only"):
        AuthManager.from_config(config)


def test_warns_at_start(caplog):
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}):
        pass
    assert "never use it in production" in caplog.text


def test_unknown_config_key_is_refused():
    with pytest.raises(ConfigError, match="unknown"):
        AuthManager.from_config({"providers": [{"name": "dummy", "config": {"nope": 1}}]})


def test_anonymous_login_is_refused():
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as manager, pytest.raises(InvalidCredentials):
        manager.login("dummy")
