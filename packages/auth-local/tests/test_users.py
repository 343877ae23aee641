"""User management through the core's capability, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auth_local import LocalProvider
from authcore import (
    AuthManager,
    InvalidCredentials,
    InvalidToken,
    NewUser,
    NotSupported,
    Registration,
    SelfUpdate,
    UserChangeRefused,
    UserExists,
    UserNotFound,
    UserUpdate,
)

PW = "Correct-Horse-Battery-9"


def test_every_operation_is_supported_with_open_registration(make_manager: Callable[..., AuthManager]) -> None:
    """With ``registration: open`` all twelve operations are implemented; closed drops self_register."""
    opened = make_manager(registration="open").users("users")
    assert set(opened.supported_user_operations()) == set(opened.USER_OPERATIONS)
    closed = make_manager().users("users")
    assert "self_register" not in closed.supported_user_operations()


def test_create_get_list_update_delete(manager: AuthManager) -> None:
    """The whole life of a user; identities carry groups = roles and ``enabled``."""
    users = manager.users("users")
    created = users.create_user(
        NewUser(login="carol", password=PW, given_name="Carol", email="carol@example.org", roles=("staff", "staff"))
    )
    assert created.groups == ("staff",) and created.attributes["enabled"] is True
    users.create_user(NewUser(login="dave", display_name="Dave D", attributes={"desk": 12}))
    assert [u.login for u in users.list_users()] == ["carol", "dave"]
    assert [u.login for u in users.list_users(search="CAR")] == ["carol"]
    assert [u.login for u in users.list_users(search="dave d")] == ["dave"]  # display name
    assert [u.login for u in users.list_users(limit=1, offset=1)] == ["dave"]
    assert users.list_users(limit=0) == []
    assert users.get_user("DAVE").attributes == {"desk": 12, "enabled": True, "email_verified": False}

    updated = users.update_user("carol", UserUpdate(family_name="Jones", given_name=None))
    assert (updated.given_name, updated.family_name, updated.email) == (None, "Jones", "carol@example.org")
    assert users.update_user("dave", UserUpdate(attributes={"desk": 14})).attributes["desk"] == 14

    users.delete_user("carol")
    with pytest.raises(UserNotFound):
        users.get_user("carol")
    with pytest.raises(UserNotFound):
        users.delete_user("carol")
    with pytest.raises(UserExists):
        users.create_user(NewUser(login="Dave"))


def test_roles_become_groups_and_permissions(manager: AuthManager) -> None:
    """Roles added and removed show in the next login's groups and mapped permissions."""
    users = manager.users("users")
    users.create_user(NewUser(login="erin", password=PW))
    users.add_roles("erin", ["admins", "developers"])
    users.add_roles("erin", ["admins"])  # held already: no error, kept once
    identity = manager.login("users", login="erin", password=PW).identity
    assert identity.groups == ("admins", "developers")
    assert {"all_proposals", "users:admin", "code"} <= set(identity.permissions)
    users.remove_roles("erin", ["admins", "not-held"])
    assert manager.login("users", login="erin", password=PW).identity.groups == ("developers",)
    with pytest.raises(UserNotFound):
        users.add_roles("nobody", ["admins"])


def test_user_without_password_logs_in_once_one_is_set(manager: AuthManager) -> None:
    """Created without a password: refused, until set_password."""
    users = manager.users("users")
    users.create_user(NewUser(login="frank"))
    with pytest.raises(InvalidCredentials):
        manager.login("users", login="frank", password=PW)
    users.set_password("frank", PW)
    assert manager.login("users", login="frank", password=PW).login == "frank"
    with pytest.raises(UserNotFound):
        users.set_password("nobody", PW)


def test_disable_and_enable(manager: AuthManager) -> None:
    """A disabled user is refused with the one message; enabled again, they log in."""
    users = manager.users("users")
    users.create_user(NewUser(login="gina", password=PW))
    users.disable_user("gina")
    assert users.get_user("gina").attributes["enabled"] is False
    with pytest.raises(InvalidCredentials) as caught:
        manager.login("users", login="gina", password=PW)
    assert str(caught.value) == InvalidCredentials.default_message
    users.enable_user("gina")
    assert manager.login("users", login="gina", password=PW).login == "gina"


def test_self_register_open_and_closed(make_manager: Callable[..., AuthManager]) -> None:
    """Open registration creates an account with ``registration_roles``; closed refuses; invitation needs a token."""
    manager = make_manager(registration="open", registration_roles=["staff"])
    identity = manager.users("users").self_register(Registration(login="hank", password=PW, email="h@example.org"))
    assert identity.groups == ("staff",) and "enabled" not in identity.attributes
    assert manager.login("users", login="hank", password=PW).identity.email == "h@example.org"
    with pytest.raises(UserExists):
        manager.users("users").self_register(Registration(login="HANK", password=PW))
    with pytest.raises(NotSupported) as caught:
        make_manager(registration="closed").users("users").self_register(Registration(login="ivy", password=PW))
    assert caught.value.operation == "self_register"
    with pytest.raises(InvalidToken):  # without an invitation (tests/test_selfservice.py has the flow)
        make_manager(registration="invitation").users("users").self_register(Registration(login="ivy", password=PW))


def test_self_update_changes_profile_fields_only(manager: AuthManager) -> None:
    """Names and e-mail change; a password in a self-update is refused (it needs the current one)."""
    users = manager.users("users")
    users.create_user(NewUser(login="jack", password=PW, roles=("staff",)))
    changed = users.self_update("jack", SelfUpdate(display_name="Jack J", email="j@example.org"))
    assert (changed.display_name, changed.email, changed.groups) == ("Jack J", "j@example.org", ("staff",))
    with pytest.raises(UserChangeRefused):
        users.self_update("jack", SelfUpdate(password="Another-Password-77"))
    assert manager.login("users", login="jack", password=PW).login == "jack"


def test_public_config_and_health(manager: AuthManager) -> None:
    """The login page learns the registration mode and minimum length; health names the dialect."""
    public = manager.provider("users").public_config()
    assert public["registration"] == "closed" and public["password_min_length"] == 12
    health = manager.health()["users"]
    assert health.ok and health.detail in ("sqlite", "postgresql")
    assert isinstance(manager.provider("users"), LocalProvider)
