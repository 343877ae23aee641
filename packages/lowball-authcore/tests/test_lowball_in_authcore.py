"""A lowball auth provider, written as lowball's documentation shows, as an authcore provider.

``lowball_sample_provider.SampleAuthProvider`` is loaded from authcore's YAML by
``"module:Class"`` (type ``lowball``), passes authcore's provider conformance suite, and its
optional client methods are authcore's user management.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from authcore import (
    AuthManager,
    ConfigError,
    InvalidCredentials,
    NewUser,
    NotSupported,
    Registration,
    SelfUpdate,
    UserNotFound,
    UserUpdate,
)
from authcore.testing import Login, ProviderConformance

BIND_SECRET = "lowball-bind-Secret-9"

YAML = f"""\
providers:
  - name: legacy
    type: lowball
    config:
      auth_provider: lowball_sample_provider:SampleAuthProvider
      auth_provider_config:
        bind_password: {BIND_SECRET}
        users:
          alice: {{password: alice-Secret-1, roles: [admins, staff]}}
          bob: {{password: bob-Secret-2, roles: [guests]}}
          zoë: {{password: zoë-pässwörd, roles: [staff]}}
          carol: {{password: carol-Secret-3, roles: [staff], enabled: false}}
permissions:
  groups: {{admins: [admin, all_proposals], staff: [own_proposals], guests: ["contents:read"]}}
"""


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "authcore.yml"
    path.write_text(YAML, encoding="utf-8")
    return path


@pytest.fixture
def manager(yaml_file: Path) -> Iterator[AuthManager]:
    with AuthManager.from_file(yaml_file) as manager:
        yield manager


class TestLowballProviderConformance(ProviderConformance):
    """authcore's provider contract, kept by a lowball AuthProvider loaded from YAML."""

    provider_name = "legacy"

    @pytest.fixture
    def conformance_config(self) -> dict[str, Any]:
        return dict(yaml.safe_load(YAML))

    @pytest.fixture
    def conformance_manager(self, yaml_file: Path) -> Iterator[AuthManager]:
        with AuthManager.from_file(yaml_file) as manager:  # from the file, as a service loads it
            yield manager

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            Login(
                login="alice",
                password="alice-Secret-1",
                expect_groups=("admins", "staff"),
                expect_permissions=("all_proposals", "own_proposals"),
                expect={"roles": ("admins", "staff")},
            ),
            Login(login="bob", password="bob-Secret-2", expect_permissions=("contents:read",)),
            Login(login="zoë", password="zoë-pässwörd", expect_groups=("staff",)),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return [
            Login(login="alice", password="bob-Secret-2"),
            Login(login="nobody", password="alice-Secret-1"),
            Login(login="carol", password="carol-Secret-3"),  # disabled
            Login(login="zoe", password="zoë-pässwörd"),
        ]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return [BIND_SECRET]


def test_user_management_through_lowball_methods(manager: AuthManager) -> None:
    """The client methods the lowball class implements are authcore's user management; the others NotSupported."""
    users = manager.users("legacy")
    assert set(users.supported_user_operations()) == {
        "list_users", "get_user", "create_user", "enable_user", "disable_user", "delete_user", "add_roles",
        "remove_roles",
    }  # fmt: skip
    assert [u.login for u in users.list_users()] == ["alice", "bob", "carol", "zoë"]
    assert [u.login for u in users.list_users(search="o", limit=1, offset=2)] == ["zoë"]
    assert users.get_user("bob").groups == ("guests",)
    with pytest.raises(UserNotFound):
        users.get_user("nobody")

    dave = users.create_user(NewUser(login="dave", password="dave-Secret-4", roles=("staff",)))
    assert (dave.login, dave.roles) == ("dave", ("staff",))
    assert "own_proposals" in manager.login("legacy", login="dave", password="dave-Secret-4").identity.permissions
    users.add_roles("dave", ["admins"])
    assert users.get_user("dave").groups == ("staff", "admins")
    users.remove_roles("dave", ["staff"])
    assert users.get_user("dave").groups == ("admins",)
    users.disable_user("dave")
    with pytest.raises(InvalidCredentials):
        manager.login("legacy", login="dave", password="dave-Secret-4")
    users.enable_user("dave")
    manager.login("legacy", login="dave", password="dave-Secret-4")
    users.delete_user("dave")
    with pytest.raises(UserNotFound):  # lowball's NotFoundException (404) is UserNotFound
        users.delete_user("dave")

    for call, operation in [
        (lambda: users.update_user("bob", UserUpdate(email="b@example.org")), "update_user"),
        (lambda: users.self_update("bob", SelfUpdate(given_name="Bob")), "self_update"),
        (lambda: users.self_register(Registration(login="eve", password="eve-Secret-5")), "self_register"),
        (lambda: users.set_password("bob", "new-Secret-6"), "set_password"),
    ]:
        with pytest.raises(NotSupported) as caught:
            call()
        assert caught.value.operation == operation


def test_fields_the_package_cannot_take_are_refused(manager: AuthManager) -> None:
    """A NewUser field the lowball package has no parameter for is a BadRequest, not silently dropped."""
    from authcore import BadRequest

    with pytest.raises(BadRequest, match="email") as caught:
        manager.users("legacy").create_user(NewUser(login="eve", password="eve-Secret-5", email="e@example.org"))
    assert "e@example.org" not in str(caught.value) and "eve-Secret-5" not in str(caught.value)


def _config(**overrides: Any) -> dict[str, Any]:
    provider = {"auth_provider": "lowball_sample_provider:SampleAuthProvider", **overrides}
    return {"providers": [{"name": "legacy", "type": "lowball", "config": provider}]}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth_provider": "lowball_sample_provider:NotAProvider"}, "not a subclass"),
        ({"auth_provider": "no_such_module_here:Thing"}, "cannot import"),
        ({"auth_provider": "not a path"}, "auth_provider"),
        ({"auth_provider_config": {"users": BIND_SECRET}}, "refused auth_provider_config"),
        ({"login_field": "nope", "password_field": "nope"}, "login_field"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_configuration_errors(overrides: dict[str, Any], message: str) -> None:
    """Bad configurations are ConfigErrors that say what is wrong and never quote a configured secret."""
    with pytest.raises(ConfigError, match=message) as caught:
        AuthManager.from_config(_config(**overrides))
    assert BIND_SECRET not in str(caught.value)


def test_production_refuses_example_secrets_in_the_class_config() -> None:
    """``production: true`` looks into ``auth_provider_config`` for well-known example secrets."""
    config = _config(auth_provider_config={"bind_password": "changeme"})
    config |= {"production": True, "tokens": {"secret": "p" * 24 + "-Unguessable-Token-Secret-1"}}
    with pytest.raises(ConfigError, match="bind_password"):
        AuthManager.from_config(config)


def test_config_repr_hides_the_class_config(manager: AuthManager) -> None:
    """The mapping for the lowball class holds its secrets: it is never in a repr or str."""
    config = manager.provider("legacy").config
    assert BIND_SECRET not in repr(config) and BIND_SECRET not in str(config)
    assert "alice-Secret-1" not in repr(manager.provider("legacy"))
    assert manager.public_config()["providers"][0]["auth_provider"] == "SampleAuthProvider"
    assert manager.health()["legacy"].ok


def test_importing_does_not_import_lowball() -> None:
    """authcore imports the package to register the ``lowball`` type; lowball waits until a provider starts."""
    code = (
        "import sys, json, importlib.metadata as m, lowball_authcore; "
        "eps = [e.value for e in m.entry_points(group='authcore.providers') if e.name == 'lowball']; "
        "print(json.dumps([eps, 'lowball' in sys.modules, 'flask' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [["lowball_authcore"], False, False]


def test_round_trip_lowball_service_on_a_lowball_provider(lowball_site: Any, manager: AuthManager) -> None:
    """Both directions at once: a lowball service on authcore on a lowball provider, clients managed over HTTP."""
    site = lowball_site(manager=manager, roles_from="both")
    admin = site.login(username="alice", password="alice-Secret-1").json()
    assert set(admin["token_data"]["r"]) == {"admins", "staff", "admin", "all_proposals", "own_proposals"}
    token = admin["token"]
    body = {"client_id": "dave", "password": "dave-Secret-4", "roles": ["staff"]}
    assert site.call("POST", "/builtins/auth/clients/create", token, json=body).status_code == 201
    dave = site.token("dave", "dave-Secret-4")
    assert site.call("GET", "/reports", dave).status_code == 200
    assert site.call("POST", "/builtins/auth/clients/dave", token, json={"email": "d@example.org"}).status_code == 501
    assert site.call("DELETE", "/builtins/auth/clients/dave", token).status_code == 204
    assert site.login(username="dave", password="dave-Secret-4").status_code == 401
    assert "dave-Secret-4" not in site.log_text() and BIND_SECRET not in site.log_text()


def test_token_packages_and_failures() -> None:
    """A token auth package gives token logins; failures of the lowball class are typed, without its messages."""
    from authcore import ProviderUnavailable

    tokens = {"t-alice-1": "alice"}
    provider = {"auth_provider": "lowball_sample_provider:SampleTokenAuthProvider", "roles_as": "roles"}
    config = {
        "providers": [
            {"name": "api", "type": "lowball", "config": provider | {"auth_provider_config": {"tokens": tokens}}}
        ]
    }
    with AuthManager.from_config(config) as manager:
        identity = manager.login("api", token="t-alice-1").identity
        assert (identity.login, identity.roles, identity.groups) == ("alice", ("api",), ())
        assert manager.public_config()["providers"][0]["credentials"] == ["token"]
        for bad in ({"token": "t-nobody"}, {"login": "alice", "password": "t-alice-1"}):
            with pytest.raises(InvalidCredentials):
                manager.login("api", **bad)
        for token in ("explode", "garbage"):
            with pytest.raises(ProviderUnavailable) as caught:
                manager.login("api", token=token)
            assert "explode" not in str(caught.value)
        with pytest.raises(NotSupported):
            manager.users("api").list_users()
    down = {
        "providers": [
            {"name": "api", "type": "lowball", "config": provider | {"auth_provider_config": {"ready": False}}}
        ]
    }
    with AuthManager.from_config(down) as manager:
        assert not manager.health()["api"].ok
