"""auth-static passes authcore's conformance suite, installed as a third party would install it."""

from __future__ import annotations

import pytest
from auth_static import hash_password

from authcore import AuthManager, NotSupported, UserNotFound
from authcore.testing import Login, ProviderConformance

# Few iterations keep the tests fast; the format is the same.
ALICE = hash_password("correct horse", iterations=1000)
BOB = hash_password("battery staple", iterations=1000)

CONFIG = {
    "providers": [
        {
            "name": "staff",
            "type": "static",
            "config": {
                "users": {
                    "alice": {"password_hash": ALICE, "email": "alice@example.org", "groups": ["staff"]},
                    "bob": {"password_hash": BOB, "groups": ["guests"]},
                    "carol": {"password_hash": ALICE, "enabled": False},
                }
            },
        }
    ],
    "permissions": {"groups": {"staff": ["contents:*"], "guests": ["contents:read"]}},
}


class TestStaticConformance(ProviderConformance):
    provider_name = "staff"

    @pytest.fixture
    def conformance_config(self):
        return CONFIG

    @pytest.fixture
    def valid_logins(self):
        return [
            Login(
                login="alice",
                password="correct horse",
                expect_permissions=("contents:*",),
                expect_groups=("staff",),
                expect={"email": "alice@example.org"},
            ),
            Login(login="bob", password="battery staple", expect_permissions=("contents:read",)),
        ]

    @pytest.fixture
    def invalid_logins(self):
        return [
            Login(login="alice", password="battery staple"),
            Login(login="nobody", password="correct horse"),
            Login(login="carol", password="correct horse"),  # disabled
        ]


def test_read_only_user_management():
    with AuthManager.from_config(CONFIG) as manager:
        users = manager.users("staff")
        assert [u.login for u in users.list_users()] == ["alice", "bob", "carol"]
        assert [u.login for u in users.list_users(search="al")] == ["alice"]
        assert users.get_user("bob").groups == ("guests",)
        with pytest.raises(UserNotFound):
            users.get_user("nobody")
        with pytest.raises(NotSupported):
            users.delete_user("bob")


def test_bad_hash_is_a_config_error():
    from authcore import ConfigError

    bad = {"providers": [{"name": "s", "type": "static", "config": {"users": {"x": {"password_hash": "plain"}}}}]}
    with pytest.raises(ConfigError, match="password_hash"):
        AuthManager.from_config(bad)
