"""authcore as a real lowball 1.0.4 service's auth provider, over real HTTP.

The dummy provider (the password names the permissions) and a real slapd behind
``AuthcoreAuthProvider``: lowball's own ``/builtins/auth`` login, its tokens on protected
routes, roles from authcore's permissions, its client routes on authcore's user management.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from auth_ldap.testing import SlapdServer
from authcore import AuthManager, ConfigError

DUMMY = {"providers": [{"name": "dummy", "type": "dummy"}]}


@pytest.fixture
def dummy_manager() -> Any:
    manager = AuthManager.from_config(DUMMY)
    yield manager
    manager.close()


def test_login_token_and_roles_with_the_dummy_provider(lowball_site: Callable[..., Any], dummy_manager: Any) -> None:
    """lowball's login runs authcore's; the token's roles are the permissions; lowball's guards use them."""
    site = lowball_site(manager=dummy_manager)
    response = site.login(username="alice", password="admin,own_proposals")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["token_data"]["cid"] == "alice"
    assert data["token_data"]["r"] == ["admin", "own_proposals"]
    token = data["token"]
    assert site.call("GET", "/reports", token).json() == {"client_id": "alice", "roles": ["admin", "own_proposals"]}
    assert site.call("GET", "/admin-only", token).status_code == 200
    assert site.call("GET", "/builtins/auth", token).json()["cid"] == "alice"  # lowball's whoami

    reader = site.token("bob", "own_proposals")
    assert site.call("GET", "/reports", reader).status_code == 200
    assert site.call("GET", "/admin-only", reader).status_code == 401  # lowball's InadequateRoles is a 401
    assert site.call("GET", "/reports").status_code == 400  # no token: lowball's 400

    assert site.call("DELETE", "/builtins/auth", token).status_code == 204  # lowball's logout revokes its token
    assert site.call("GET", "/reports", token).status_code == 401
    assert site.login(login="carol", password="x").json()["token_data"]["cid"] == "carol"  # py-ispyb's key


def test_bad_bodies_are_lowball_errors(lowball_site: Callable[..., Any], dummy_manager: Any) -> None:
    """Malformed bodies are lowball's 400; input authcore refuses is a 401 like any failed login."""
    site = lowball_site(manager=dummy_manager)
    for body in (
        {"username": "alice", "password": ["admin"]},  # not a string
        {"username": "alice", "password": "admin", "role": "admin"},  # an unknown field
        {"username": "alice", "login": "bob", "password": "admin"},  # two logins
    ):
        assert site.login(**body).status_code == 400, body
    assert site.http.post(f"{site.url}/builtins/auth", content="not json").status_code in (400, 415)
    failed = {"message": "401 Unauthorized: Invalid credentials supplied"}
    for body in (
        {"username": "al\x00ice", "password": "admin"},
        {"username": "alice\n", "password": "admin"},
        {"username": "a" * 100_000, "password": "admin"},
        {"username": "alice", "password": ""},
        {"username": "alice"},
        {},
    ):
        response = site.login(**body)
        assert (response.status_code, response.json()) == (401, failed), body
    assert site.login(username="alice", password="admin", plugin="elsewhere").status_code == 400


def test_plugin_picks_among_allowed_providers(lowball_site: Callable[..., Any]) -> None:
    """A login body's ``plugin`` picks an instance the service allows, and only those."""
    config = {
        "providers": [{"name": "dummy", "type": "dummy"}, {"name": "open", "type": "noauth"}],
    }
    with AuthManager.from_config(config) as manager:
        site = lowball_site(manager=manager, provider="dummy")
        assert site.login(username="alice", password="x", plugin="open").status_code == 400  # not allowed
        assert site.login(username="alice", password="x", plugin="dummy").status_code == 200
        both = lowball_site(manager=manager, provider="dummy", providers=["open"])
        assert both.login(plugin="open").json()["token_data"]["cid"]


def test_unsupported_client_operations_answer_501(lowball_site: Callable[..., Any], dummy_manager: Any) -> None:
    """The dummy provider manages no users: lowball's client routes answer its 501."""
    site = lowball_site(manager=dummy_manager)
    admin = site.token("root", "admin")
    assert site.call("GET", "/builtins/auth/clients/all", admin).status_code == 501
    assert site.call("GET", "/builtins/auth/clients/someone", admin).status_code == 501
    assert site.call("POST", "/builtins/auth/clients/create", admin, json={"client_id": "x"}).status_code == 501
    assert site.call("POST", "/builtins/auth/clients/register", json={"login": "x", "password": "y"}).status_code == 501


def test_construction_errors() -> None:
    """What lowball passes from its ``auth_provider:`` section is checked when the app starts."""
    from lowball_authcore import AuthcoreAuthProvider

    with pytest.raises(ConfigError, match="exactly one"):
        AuthcoreAuthProvider()
    config = {"providers": [{"name": "dummy", "type": "dummy"}, {"name": "open", "type": "noauth"}]}
    with AuthManager.from_config(config) as manager:
        with pytest.raises(ConfigError, match="name the provider"):
            AuthcoreAuthProvider(manager=manager)
        with pytest.raises(ConfigError, match="elsewhere"):
            AuthcoreAuthProvider(manager=manager, provider="elsewhere")
        with pytest.raises(ConfigError, match="roles_from"):
            AuthcoreAuthProvider(manager=manager, provider="dummy", roles_from="everything")


def test_yaml_path_from_lowball_config(lowball_site: Callable[..., Any], tmp_path: Any) -> None:
    """lowball's ``auth_provider: {config: <authcore YAML>}`` is all a service needs."""
    path = tmp_path / "authcore.yml"
    path.write_text("providers:\n  - name: dummy\n    type: dummy\n", encoding="utf-8")
    site = lowball_site(config=str(path), roles_from="both")
    token_data = site.login(username="zoë", password="own_proposals").json()["token_data"]
    assert token_data["cid"] == "zoë"
    assert token_data["r"] == ["own_proposals"]


# ---------------------------------------------------------------- LDAP


def test_ldap_logins_over_http(
    lowball_site: Callable[..., Any], slapd: SlapdServer, ldap_manager_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Real slapd behind lowball: groups → permissions → lowball roles; failures alike; no secret logged."""
    caplog.set_level(logging.DEBUG)
    with AuthManager.from_config(ldap_manager_config(slapd)) as manager:
        site = lowball_site(manager=manager)
        alice = site.login(username="alice", password="alice-pw").json()
        assert {"admin", "all_proposals", "own_proposals"} <= set(alice["token_data"]["r"])
        assert site.call("GET", "/admin-only", alice["token"]).status_code == 200
        bob = site.token("bob", "bob-pw")  # developers, ops, auditors: none mapped
        assert site.call("GET", "/reports", bob).status_code == 401
        assert site.login(username="zoë", password="zoë-pw").json()["token_data"]["cid"] == "zoë"
        assert site.login(username="jose", password="pässwörd-ü").json()["token_data"]["cid"] == "jose"

        refusals = [
            site.login(username=name, password=password)
            for name, password in [
                ("alice", "wrong-Password-1"),
                ("nobody", "wrong-Password-1"),
                ("ALICE", "bob-pw"),
                ("*", "alice-pw"),
                ("*)(uid=*", "alice-pw"),
                (")(|(uid=*))", "x"),
                ("admin'--", "x"),
                ("cn=admin,dc=example", "x"),
                ("日本", "x"),
            ]
        ]
        assert {(r.status_code, r.content) for r in refusals} == {(401, refusals[0].content)}

        from lowball_authcore import AuthcoreAuthPackage

        package = AuthcoreAuthPackage(username="alice", password="alice-pw")
        shown = "\n".join([site.log_text(), caplog.text, repr(site.app.auth_provider), repr(package), repr(manager)])
        for secret in ("alice-pw", "bob-pw", "zoë-pw", "pässwörd-ü", slapd.reader_password, alice["token"]):
            assert secret not in shown


def test_ldap_client_routes(
    lowball_site: Callable[..., Any], private_slapd: SlapdServer, ldap_manager_config: Any
) -> None:
    """lowball's admin client routes manage LDAP users through authcore's user management."""
    with AuthManager.from_config(ldap_manager_config(private_slapd, writer=True)) as manager:
        site = lowball_site(manager=manager)
        admin = site.token("alice", "alice-pw")
        clients = site.call("GET", "/builtins/auth/clients/all", admin).json()
        assert {"alice", "bob", "zoë"} <= {c["client_id"] for c in clients}
        bob = site.call("GET", "/builtins/auth/clients/bob", admin).json()
        assert bob["client_id"] == "bob"
        assert site.call("GET", "/builtins/auth/clients/nobody", admin).status_code == 404

        body = {"client_id": "dave", "password": "dave-Secret-1", "given_name": "Dave", "family_name": "Doe"}
        created = site.call("POST", "/builtins/auth/clients/create", admin, json=body)
        assert created.status_code == 201, created.text
        assert created.json()["client_id"] == "dave"
        assert site.call("POST", "/builtins/auth/clients/create", admin, json=body).status_code == 409
        assert (
            site.call("POST", "/builtins/auth/clients/create", admin, json={"client_id": "x", "shoe": 1}).status_code
            == 400
        )
        dave = site.token("dave", "dave-Secret-1")
        assert site.call("GET", "/reports", dave).status_code == 401

        assert site.call("POST", "/builtins/auth/clients/dave/roles/staff", admin).status_code == 204
        assert "own_proposals" in site.login(username="dave", password="dave-Secret-1").json()["token_data"]["r"]
        assert site.call("GET", "/builtins/auth/clients/dave", admin).json()["roles"] == ["own_proposals"]
        # lowball lets a non-admin mint tokens with roles get_client says it holds, and no others.
        dave = site.token("dave", "dave-Secret-1")
        minted = site.call("POST", "/builtins/auth/tokens", dave, json={"roles": ["own_proposals"]})
        assert minted.status_code == 201, minted.text
        assert site.call("GET", "/reports", minted.json()["token"]).status_code == 200
        assert site.call("POST", "/builtins/auth/tokens", dave, json={"roles": ["admin"]}).status_code == 401
        # The LDAP provider has no self-service: lowball's routes answer 501.
        assert site.call("POST", "/builtins/auth/clients", dave, json={"given_name": "David"}).status_code == 501
        register = {"login": "eve", "password": "eve-Secret-2"}
        assert site.call("POST", "/builtins/auth/clients/register", json=register).status_code == 501
        assert site.call("DELETE", "/builtins/auth/clients/dave/roles/staff", admin).status_code == 204

        assert site.call("POST", "/builtins/auth/clients/dave/disable", admin).status_code == 204
        assert site.login(username="dave", password="dave-Secret-1").status_code == 401
        assert site.call("POST", "/builtins/auth/clients/dave/enable", admin).status_code == 204
        assert site.login(username="dave", password="dave-Secret-1").status_code == 200

        updated = site.call("POST", "/builtins/auth/clients/dave", admin, json={"email": "dave@example.org"})
        assert updated.json()["email"] == "dave@example.org"
        assert site.call("GET", "/builtins/auth/clients/all", dave).status_code == 401  # not an admin
        assert site.call("DELETE", "/builtins/auth/clients/dave", admin).status_code == 204
        assert site.login(username="dave", password="dave-Secret-1").status_code == 401
        assert "dave-Secret-1" not in site.log_text()
