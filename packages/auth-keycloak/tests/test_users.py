"""User management end to end through python-keycloak's admin client and the test server's admin API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auth_keycloak import UnknownRole
from auth_keycloak.testing import USERS, KeycloakTestServer, Realm
from authcore import (
    AuthManager,
    InvalidCredentials,
    NewUser,
    ProviderUnavailable,
    UserExists,
    UserNotFound,
    UserUpdate,
)
from authcore.testing.race import outcomes, race


def test_user_lifecycle(manager: AuthManager, keycloak_realm: Realm):
    users = manager.users("sso")
    assert {u.login for u in users.list_users()} == {"alice", "bob", "carol", "dave"}
    assert [u.login for u in users.list_users(search="ali")] == ["alice"]
    assert len(users.list_users(limit=2)) == 2
    alice = users.get_user("alice")
    assert alice.email == "alice@example.org" and "user" in alice.roles and "staff" in alice.groups

    created = users.create_user(
        NewUser(login="erin", password="Erin-pw-5", given_name="Erin", email="erin@example.org", roles=("Admin",))
    )
    assert created.login == "erin" and "Admin" in created.roles
    result = manager.login("sso", login="erin", password="Erin-pw-5")
    assert "all_proposals" in result.permissions
    with pytest.raises(UserExists):
        users.create_user(NewUser(login="erin"))

    updated = users.update_user("erin", UserUpdate(family_name="Example", display_name="Erin E."))
    assert updated.family_name == "Example" and updated.display_name == "Erin E."

    users.set_password("erin", "Erin-new-6")
    with pytest.raises(InvalidCredentials):
        manager.login("sso", login="erin", password="Erin-pw-5")
    assert manager.login("sso", login="erin", password="Erin-new-6").login == "erin"

    users.disable_user("erin")
    with pytest.raises(InvalidCredentials):
        manager.login("sso", login="erin", password="Erin-new-6")
    users.enable_user("erin")
    assert manager.login("sso", login="erin", password="Erin-new-6").login == "erin"

    users.add_roles("erin", ["user", "staff", "/staff/mx"])
    erin = users.get_user("erin")
    assert {"user", "Admin"} <= set(erin.roles) and {"staff", "mx"} <= set(erin.groups)
    users.remove_roles("erin", ["Admin", "staff"])
    erin = users.get_user("erin")
    assert "Admin" not in erin.roles and "staff" not in erin.groups and "mx" in erin.groups
    with pytest.raises(UnknownRole):
        users.add_roles("erin", ["no-such-role-or-group"])

    users.delete_user("erin")
    with pytest.raises(UserNotFound):
        users.get_user("erin")
    for operation in (users.delete_user, users.enable_user, users.disable_user):
        with pytest.raises(UserNotFound):
            operation("erin")


def test_one_admin_client_across_threads(manager: AuthManager, keycloak_server: KeycloakTestServer):
    users = manager.users("sso")

    def worker(n: int) -> None:
        for i in range(3):
            login = f"user-{n}-{i}"
            users.create_user(NewUser(login=login, password="Pw-123456"))
            assert users.get_user(login).login == login
            users.delete_user(login)

    results = race(worker)
    assert outcomes(results) == {"ok": 8}, results
    # One admin token for all of it: the client is reused.
    assert keycloak_server.hits("/realms/test/protocol/openid-connect/token") == 1


def test_admin_errors(make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer):
    wrong = make_manager(client_secret="not-the-right-secret")
    with pytest.raises(ProviderUnavailable):
        wrong.users("sso").list_users()
    without_rights = make_manager(admin_client_id="other-app", client_secret="kc-other-client-secret-41d9e3")
    with pytest.raises(ProviderUnavailable):  # no service account / no realm-management roles
        without_rights.users("sso").list_users()
    manager = make_manager()
    keycloak_server.set_down(True)
    with pytest.raises(ProviderUnavailable):
        manager.users("sso").get_user("alice")
    keycloak_server.set_down(False)


def test_admin_user_login(make_manager: Callable[..., AuthManager], keycloak_realm: Realm):
    keycloak_realm.add_user("root", "Root-pw-9", realm_roles=["admin"])
    manager = make_manager(admin_username="root", admin_password="Root-pw-9")
    assert "alice" in {u.login for u in manager.users("sso").list_users()}
    assert USERS  # the standard realm
