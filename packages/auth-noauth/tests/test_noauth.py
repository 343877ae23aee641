"""auth-noauth: the conformance suite plus fps-noauth behaviour."""

from __future__ import annotations

import pytest

from authcore import AuthManager, ConfigError
from authcore.testing import Login, ProviderConformance


class TestNoAuthConformance(ProviderConformance):
    provider_name = "open"

    @pytest.fixture
    def conformance_config(self):
        return {"providers": [{"name": "open", "type": "noauth"}]}

    @pytest.fixture
    def valid_logins(self):
        return [
            Login(expect_login="anonymous", expect_permissions=("*",)),
            Login(login="whoever", password="whatever", expect_login="anonymous", expect_permissions=("*",)),
            Login(token="anything", expect_login="anonymous", expect_permissions=("*",)),
        ]

    @pytest.fixture
    def invalid_logins(self):
        return []  # everyone gets in: that is the provider's whole point


def test_everyone_is_anonymous_with_every_permission():
    with AuthManager.from_config({"providers": [{"name": "noauth"}]}) as manager:
        verified = manager.verify(manager.login("noauth").access_token)
        assert verified.login == "anonymous"
        manager.require(verified, {"contents": ["read", "write"], "kernels": ["execute"]})
        manager.require(verified, ["all_proposals"])


def test_configurable_login():
    with AuthManager.from_config({"providers": [{"name": "noauth", "config": {"login": "me"}}]}) as manager:
        assert manager.login("noauth").login == "me"


def test_refused_in_production():
    config = {
        "production": True,
        "tokens": {"secret": "test-only-secret-0123456789abcdefghij"},
        "providers": [{"name": "noauth"}],
    }
    with pytest.raises(ConfigError, match="development only"):
        AuthManager.from_config(config)


def test_warns_at_start(caplog):
    with AuthManager.from_config({"providers": [{"name": "noauth"}]}):
        pass
    assert "never use it in production" in caplog.text
