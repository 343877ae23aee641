"""User management with the writer account (and NotSupported without it)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from auth_ldap import LdapConfig, LdapProvider
from auth_ldap.testing import SlapdServer
from authcore import (
    InvalidCredentials,
    NewUser,
    NotSupported,
    PasswordCredentials,
    UserExists,
    UserNotFound,
    UserUpdate,
)


def login(p: LdapProvider, name: str, password: str) -> Any:
    return p.authenticate(PasswordCredentials(login=name, password=SecretStr(password)))


@pytest.fixture
def writer(private_slapd: SlapdServer, configs: Any) -> Any:
    p = LdapProvider(
        "ldap",
        LdapConfig.model_validate(
            configs[0](private_slapd, writer_dn=private_slapd.writer_dn, writer_password=private_slapd.writer_password)
        ),
    )
    yield p
    p.close()


def test_read_only_config_refuses_writes(slapd: SlapdServer, configs: Any) -> None:
    p = LdapProvider("ldap", LdapConfig.model_validate(configs[0](slapd)))
    assert p.supported_user_operations() == ("list_users", "get_user")
    assert p.get_user("alice").email == "alice@example.org"
    calls = {
        "create_user": lambda: p.create_user(NewUser(login="x")),
        "update_user": lambda: p.update_user("alice", UserUpdate(email="a@b.c")),
        "enable_user": lambda: p.enable_user("alice"),
        "disable_user": lambda: p.disable_user("alice"),
        "delete_user": lambda: p.delete_user("alice"),
        "set_password": lambda: p.set_password("alice", "new-pw"),
        "add_roles": lambda: p.add_roles("alice", ["ops"]),
        "remove_roles": lambda: p.remove_roles("alice", ["admins"]),
    }
    for operation, call in calls.items():
        with pytest.raises(NotSupported) as caught:
            call()
        assert caught.value.operation == operation
    p.close()


def test_list_and_get(writer: LdapProvider) -> None:
    users = writer.list_users()
    logins = [u.login for u in users]
    assert {"alice", "bob", "john.doe", "jose", "#hash", "plus+one", "zoë"} <= set(logins)
    assert logins == sorted(logins)
    assert [u.login for u in writer.list_users(search="Doe, John")] == ["john.doe"]
    assert [u.login for u in writer.list_users(search="*")] == []  # escaped: no wildcard
    assert len(writer.list_users(limit=3, offset=2)) == 3
    alice = writer.get_user("alice")
    assert set(alice.groups) == {"admins", "staff", "developers"} and alice.attributes["enabled"] is True
    with pytest.raises(UserNotFound):
        writer.get_user("ghost")
    with pytest.raises(UserNotFound):
        writer.get_user("a*")


def test_create_update_password_roles_disable_delete(writer: LdapProvider) -> None:
    created = writer.create_user(
        NewUser(
            login="new, user+1",
            password=SecretStr("first-pw-ü"),
            given_name="New",
            family_name="User",
            email="new@example.org",
            roles=("staff", "developers"),
        )
    )
    assert created.login == "new, user+1" and set(created.groups) == {"staff", "developers"}
    assert login(writer, "new, user+1", "first-pw-ü").email == "new@example.org"
    with pytest.raises(UserExists):
        writer.create_user(NewUser(login="new, user+1"))

    updated = writer.update_user("new, user+1", UserUpdate(email="renamed@example.org", display_name="Renamed"))
    assert (updated.email, updated.display_name, updated.given_name) == ("renamed@example.org", "Renamed", "New")

    writer.set_password("new, user+1", "second-pw")
    with pytest.raises(InvalidCredentials):
        login(writer, "new, user+1", "first-pw-ü")
    assert login(writer, "new, user+1", "second-pw").login == "new, user+1"

    writer.add_roles("new, user+1", ["admins", "auditors", "ops"])
    assert {"admins", "auditors", "ops"} <= set(writer.get_user("new, user+1").groups)
    writer.remove_roles("new, user+1", ["admins", "ops", "auditors"])
    assert set(writer.get_user("new, user+1").groups) == {"staff", "developers"}
    with pytest.raises(UserNotFound):
        writer.add_roles("new, user+1", ["no-such-group"])

    writer.disable_user("new, user+1")
    assert writer.get_user("new, user+1").attributes["enabled"] is False
    with pytest.raises(InvalidCredentials):
        login(writer, "new, user+1", "second-pw")
    writer.enable_user("new, user+1")
    writer.enable_user("new, user+1")  # idempotent
    assert login(writer, "new, user+1", "second-pw").login == "new, user+1"

    writer.delete_user("new, user+1")
    with pytest.raises(UserNotFound):
        writer.get_user("new, user+1")
    with pytest.raises(InvalidCredentials):
        login(writer, "new, user+1", "second-pw")
    assert "new, user+1" not in writer.list_users()
    with pytest.raises(UserNotFound):
        writer.delete_user("new, user+1")


def test_disable_is_enforced_by_slapd_itself(writer: LdapProvider, private_slapd: SlapdServer) -> None:
    """ppolicy's pwdAccountLockedTime: even a plain bind (another application) is refused."""
    import subprocess

    writer.disable_user("bob")
    whoami = ["ldapwhoami", "-x", "-H", private_slapd.uri, "-D", private_slapd.dn("bob"), "-w", "bob-pw"]
    assert subprocess.run(whoami, capture_output=True, timeout=30).returncode == 49
    writer.enable_user("bob")
    assert subprocess.run(whoami, capture_output=True, timeout=30).returncode == 0


def test_created_disabled_user_and_delete_cleans_posix_groups(writer: LdapProvider) -> None:
    writer.create_user(NewUser(login="later", password=SecretStr("later-pw"), enabled=False, roles=("ops",)))
    with pytest.raises(InvalidCredentials):
        login(writer, "later", "later-pw")
    writer.enable_user("later")
    assert "ops" in login(writer, "later", "later-pw").groups
    writer.delete_user("later")
    assert "later" not in str(writer.get_user("bob"))
    assert all(u.login != "later" for u in writer.list_users())


def test_protected_attributes(writer: LdapProvider) -> None:
    # A refused change is a client error the web layer answers 409, never a bare AuthError (a 500).
    from authcore.errors import UserChangeRefused
    from authcore.web.common import error_response

    with pytest.raises(UserChangeRefused) as refused:
        writer.update_user("alice", UserUpdate(attributes={"userPassword": "x"}))
    assert error_response(refused.value)[:2] == (409, {"detail": refused.value.message, "code": "change_refused"})
    with pytest.raises(UserChangeRefused):
        writer.update_user("alice", UserUpdate(attributes={"objectClass": "top"}))
    writer.update_user("alice", UserUpdate(attributes={"telephoneNumber": "+33 1 23"}))
