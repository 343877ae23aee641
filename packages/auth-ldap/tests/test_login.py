"""Logins against the shared slapd: binding modes, escaping, identities, groups, guards, secrecy."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from auth_ldap import LdapConfig, LdapProvider
from auth_ldap.dn import dn_key, first_rdn_value, unescape_value
from auth_ldap.testing import USERS, SlapdServer
from authcore import AuthManager, InvalidCredentials, PasswordCredentials


def provider(config: dict[str, Any]) -> LdapProvider:
    return LdapProvider("ldap", LdapConfig.model_validate(config))


@pytest.fixture
def search(slapd: SlapdServer, configs: Any) -> Any:
    made: list[LdapProvider] = []

    def make(**overrides: Any) -> LdapProvider:
        p = provider(configs[0](slapd, **overrides))
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def creds(login: str, password: str) -> PasswordCredentials:
    return PasswordCredentials(login=login, password=SecretStr(password))


TRICKY = [(login, pw) for login, (_rdn, pw) in USERS.items() if pw is not None]


@pytest.mark.parametrize("login,password", TRICKY, ids=[t[0] for t in TRICKY])
def test_search_then_bind_tricky_names(search: Any, slapd: SlapdServer, login: str, password: str) -> None:
    identity = search().authenticate(creds(login, password))
    assert identity.login == login
    # The DN is the server's own form; it names the same entry as the LDIF's.
    assert dn_key(identity.attributes["dn"]) == dn_key(slapd.dn(login))


@pytest.mark.parametrize(
    "template,login,password",
    [
        ("uid={login},ou=people,dc=example,dc=org", "alice", "alice-pw"),
        ("uid={login},ou=people,dc=example,dc=org", "plus+one", "plus-pw"),
        ("uid={login},ou=people,dc=example,dc=org", "#hash", "hash-pw"),
        ("uid={login},ou=people,dc=example,dc=org", "zoë", "zoë-pw"),
        ("cn={login},ou=people,dc=example,dc=org", "Doe, John (EXT)", "john-pw"),
        ("cn={login},ou=people,dc=example,dc=org", "José Müller", "pässwörd-ü"),
    ],
)
def test_direct_bind_escapes_the_login_as_a_dn_value(search: Any, template: str, login: str, password: str) -> None:
    identity = search(user_dn_template=template).authenticate(creds(login, password))
    assert identity.attributes["dn"]  # read back from the server after the bind
    assert identity.display_name


def test_direct_bind_wrong_password_and_unknown(search: Any) -> None:
    p = search(user_dn_template="uid={login},ou=people,dc=example,dc=org")
    for login, password in [("alice", "bob-pw"), ("ghost", "x-pw"), ("nopw", "x-pw"), ("alice,ou=people", "alice-pw")]:
        with pytest.raises(InvalidCredentials):
            p.authenticate(creds(login, password))


@pytest.mark.parametrize(
    "login",
    [
        "*",
        "b*",
        "*b",
        "bo*",
        "bob)(uid=*",
        "*)(|(uid=*",
        "bob)(|(objectClass=*)",
        "\\62ob",
        "\\2a",
        "(uid=bob)",
        "bob\\",
        "bob*",
        "uid=bob,ou=people,dc=example,dc=org",
        "bob,ou=people",
        "bob+cn=x",
    ],
)
@pytest.mark.parametrize("mode", ["search", "direct"])
def test_injection_never_matches_another_user(search: Any, login: str, mode: str) -> None:
    """bob's password with a login that an unescaped filter or DN would turn into bob."""
    overrides = {"user_dn_template": "uid={login},ou=people,dc=example,dc=org"} if mode == "direct" else {}
    with pytest.raises(InvalidCredentials):
        search(**overrides).authenticate(creds(login, "bob-pw"))


def test_identity_login_is_the_directory_value(search: Any) -> None:
    """uid matching ignores case: the identity carries the stored login, so one user is one login.
    Outer spaces, which the server ignores as well, are refused (see test_hardening)."""
    p = search()
    for login in ("BOB", "Bob"):
        assert p.authenticate(creds(login, "bob-pw")).login == "bob"
    for login in (" bob", "Bob "):
        with pytest.raises(InvalidCredentials):
            p.authenticate(creds(login, "bob-pw"))


def test_unescaped_filter_would_have_matched(slapd: SlapdServer) -> None:
    """The injection test can fail: the raw filter (uid=b*) does find bob at this server."""
    from ldap3 import Connection, Server

    conn = Connection(Server(slapd.uri), slapd.reader_dn, slapd.reader_password, auto_bind=True)
    conn.search(slapd.people_dn, "(uid=b*)", attributes=["uid"])
    assert [str(e.uid) for e in conn.entries] == ["bob"]
    conn.search(slapd.people_dn, "(uid=\\62ob)", attributes=["uid"])
    assert [str(e.uid) for e in conn.entries] == ["bob"]
    conn.unbind()


def test_empty_password_refused_by_the_provider_itself(search: Any, slapd: SlapdServer) -> None:
    """slapd has `allow bind_anon_dn`: an empty-password bind would succeed there. The provider refuses it."""
    import subprocess

    # The server really would accept it (as anonymous):
    shown = subprocess.run(
        ["ldapwhoami", "-x", "-H", slapd.uri, "-D", slapd.dn("alice"), "-w", ""],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0 and shown.stdout.strip() == "anonymous"
    for mode in ({}, {"user_dn_template": "uid={login},ou=people,dc=example,dc=org"}):
        p = search(**mode)
        for password in ("", "\x00", "x" * 5000):
            bad = PasswordCredentials.model_construct(login="alice", password=SecretStr(password))
            with pytest.raises(InvalidCredentials):
                p.authenticate(bad)
        for login in ("", "a" * 1000, "al\x00ice", "al\nice"):
            bad = PasswordCredentials.model_construct(login=login, password=SecretStr("alice-pw"))
            with pytest.raises(InvalidCredentials):
                p.authenticate(bad)


def test_empty_password_guard_sends_nothing(search: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    p = search()
    calls: list[str] = []
    monkeypatch.setattr(p._bind_pool, "run", lambda op: calls.append("bind"))
    monkeypatch.setattr(p._search_pool, "run", lambda op: calls.append("search"))
    with pytest.raises(InvalidCredentials):
        p.authenticate(PasswordCredentials.model_construct(login="alice", password=SecretStr("")))
    assert calls == []


def test_errors_do_not_tell_whether_a_login_exists(search: Any) -> None:
    p = search()
    messages = set()
    for login, password in [("alice", "nope-pw"), ("ghost", "nope-pw"), ("nopw", "nope-pw"), ("*", "nope-pw")]:
        with pytest.raises(InvalidCredentials) as caught:
            p.authenticate(creds(login, password))
        messages.add((type(caught.value), str(caught.value)))
    assert len(messages) == 1


def test_groups_member_memberuid_memberof_uniquemember(search: Any) -> None:
    p = search()
    assert set(p.authenticate(creds("alice", "alice-pw")).groups) == {"admins", "staff", "developers"}
    assert set(p.authenticate(creds("bob", "bob-pw")).groups) == {"developers", "ops", "auditors"}
    assert set(p.authenticate(creds("john.doe", "john-pw")).groups) == {"staff", "Sales, EMEA (intl)"}


def test_groups_from_member_of_alone(search: Any) -> None:
    """Without a group base, memberOf (operational, asked for by name) still names the groups."""
    p = search(group_base_dn=None)
    assert set(p.authenticate(creds("alice", "alice-pw")).groups) == {"admins", "staff"}
    assert set(p.authenticate(creds("john.doe", "john-pw")).groups) == {"staff", "Sales, EMEA (intl)"}
    p2 = search(group_base_dn=None, read_member_of=False)
    assert p2.authenticate(creds("alice", "alice-pw")).groups == ()


def test_nested_groups_opt_in_depth_limited_cycle_safe(search: Any) -> None:
    assert "all-staff" not in search().authenticate(creds("alice", "alice-pw")).groups
    nested = search(nested_groups=True)
    assert "all-staff" in nested.authenticate(creds("alice", "alice-pw")).groups
    assert set(nested.authenticate(creds("zoë", "zoë-pw")).groups) == {"loop-a", "loop-b"}  # a cycle ends
    deep = search(nested_groups=True, nested_groups_max_depth=2)
    assert set(deep.authenticate(creds("plus+one", "plus-pw")).groups) == {"level1", "level2", "level3"}
    deeper = search(nested_groups=True, nested_groups_max_depth=10)
    assert set(deeper.authenticate(creds("plus+one", "plus-pw")).groups) == {f"level{n}" for n in range(1, 6)}


def test_attribute_mapping(search: Any) -> None:
    p = search(attributes={"email": "uid", "display_name": "cn", "given_name": "sn", "family_name": "givenName"})
    identity = p.authenticate(creds("alice", "alice-pw"))
    assert (identity.email, identity.display_name, identity.given_name, identity.family_name) == (
        "alice",
        "Alice Smith",
        "Smith",
        "Alice",
    )
    by_mail = search(user_filter="(mail={login})")
    assert by_mail.authenticate(creds("alice@example.org", "alice-pw")).login == "alice"


def test_active_directory_defaults() -> None:
    ad = LdapConfig(
        uri="ldaps://dc1.example.org ldaps://dc2.example.org",
        base_dn="dc=example,dc=org",
        directory="active_directory",
        user_dn_template="{login}@example.org",
    )
    assert ad.uri == ("ldaps://dc1.example.org", "ldaps://dc2.example.org")
    assert ad.attribute("login") == "sAMAccountName"
    assert "userPrincipalName={login}" in ad.effective_user_filter
    assert ad.effective_group_filter == "(member={dn})"
    assert ad.mode == "direct"
    with pytest.raises(ValidationError):
        LdapConfig(uri="ldap://dc", base_dn="dc=x", directory="active_directory")
    openldap = LdapConfig(uri="ldap://h", base_dn="ou=people,dc=x")
    assert openldap.effective_user_filter == "(uid={login})"
    assert openldap.dn_template == "uid={login},ou=people,dc=x"


def test_bind_name_template_refuses_specials(search: Any) -> None:
    """A non-DN template (AD UPN) cannot be steered with DN or domain characters."""
    p = search(user_dn_template="{login}@example.org", user_filter="(uid={login})")
    for login in ("alice@evil.org", "alice,ou=x", "a\\b"):
        with pytest.raises(InvalidCredentials):
            p.authenticate(creds(login, "alice-pw"))


def test_pyispyb_keys_and_config_errors() -> None:
    config = LdapConfig.model_validate(
        {"LDAP_URI": "ldap://x:389", "LDAP_BASE_INTERNAL": "ou=People,dc=test,dc=fr", "LDAP_BASE_GROUPS": "ou=g"}
    )
    assert (config.uri, config.base_dn, config.group_base_dn) == (("ldap://x:389",), "ou=People,dc=test,dc=fr", "ou=g")
    for bad in (
        {"uri": "http://x", "base_dn": "dc=x"},
        {"uri": "ldap://x/dc=x", "base_dn": "dc=x"},
        {"uri": [], "base_dn": "dc=x"},
        {"uri": "ldap://x", "base_dn": "dc=x", "bind_dn": "cn=r"},
        {"uri": "ldap://x", "base_dn": "dc=x", "bind_dn": "cn=r", "bind_password": ""},
        {"uri": "ldap://x", "base_dn": "dc=x", "user_dn_template": "uid=x"},
        {"uri": "ldap://x", "base_dn": "dc=x", "unknown": 1},
        {"uri": "ldap://x", "base_dn": "dc=x", "attributes": {"email": "mail)(x"}},
    ):
        with pytest.raises(ValidationError):
            LdapConfig.model_validate(bad)


def test_no_schema_read_and_public_config_without_secrets(search: Any, slapd: SlapdServer) -> None:
    from ldap3 import NONE

    p = search(writer_dn=slapd.writer_dn, writer_password=slapd.writer_password)
    assert all(server.get_info == NONE for server in p.servers.servers)
    p.authenticate(creds("alice", "alice-pw"))
    assert all(server.schema is None for server in p.servers.servers)
    text = json.dumps(p.public_config())
    assert slapd.reader_password not in text and slapd.writer_password not in text
    assert p.public_config()["servers"] == [slapd.uri]
    for shown in (repr(p), repr(p.config), str(p.config), repr(p._search_pool), repr(p._bind_pool)):
        assert slapd.reader_password not in shown and slapd.writer_password not in shown


def test_no_password_in_logs_or_pooled_connections(search: Any, slapd: SlapdServer, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    p = search(uri=[f"ldap://127.0.0.1:{_closed_port()}", slapd.uri])
    p.authenticate(creds("alice", "alice-pw"))
    with pytest.raises(InvalidCredentials):
        p.authenticate(creds("alice", "wrong-secret-pw"))
    for pool in (p._search_pool, p._bind_pool):
        assert pool is not None
        for item in pool._idle:
            assert item.conn.password is None
            assert "alice-pw" not in repr(item.conn)
    for secret in ("alice-pw", "wrong-secret-pw", slapd.reader_password):
        assert secret not in caplog.text
    assert "failed" in caplog.text  # the dead first server was logged


def test_health(search: Any, slapd: SlapdServer) -> None:
    health = search().health()
    assert health.ok and health.extra["servers"] == {slapd.uri: "up"}
    dead = f"ldap://127.0.0.1:{_closed_port()}"
    health = search(uri=[dead]).health()
    assert not health.ok and health.extra["servers"][dead] == "connection refused"
    assert search(bind_password="wrong-reader-pw").health().ok is False


def test_wrong_service_password_is_unavailable_not_invalid(search: Any) -> None:
    from authcore import ProviderUnavailable

    with pytest.raises(ProviderUnavailable):
        search(bind_password="wrong-reader-pw").authenticate(creds("alice", "alice-pw"))


def test_through_the_manager_with_permissions(slapd: SlapdServer, configs: Any) -> None:
    search_config, manager_config = configs
    with AuthManager.from_config(manager_config(search_config(slapd))) as manager:
        result = manager.login("ldap", login="alice", password="alice-pw")
        assert set(result.permissions) >= {"all_proposals", "own_proposals", "code"}
        assert manager.verify(result.access_token).login == "alice"


def test_dn_helpers() -> None:
    assert unescape_value("Doe\\2C John") == "Doe, John" == unescape_value("Doe\\, John")
    assert unescape_value("Jos\\C3\\A9") == "José"
    assert first_rdn_value("cn=Sales\\2C EMEA (intl),ou=groups,dc=example,dc=org") == "Sales, EMEA (intl)"
    assert dn_key("CN=Doe\\, John,OU=People") == dn_key("cn=doe\\2c john,ou=people")
    assert dn_key("cn=a\\,b,ou=x") != dn_key("cn=a,b=,ou=x")


def _closed_port() -> int:
    from auth_ldap.testing import free_port

    return free_port()


def test_group_filter_placeholders_are_filled_in_one_pass(private_slapd, configs):
    """A DN that itself holds the text "{login}" is not rewritten into another user's DN."""
    from auth_ldap.testing import ssha

    search_config, manager_config = configs
    people, groups = private_slapd.people_dn, private_slapd.groups_dn
    private_slapd.add_ldif(
        f"""dn: cn=mallory,{people}
objectClass: inetOrgPerson
cn: mallory
sn: Victim
uid: victim-twin

dn: cn={{login}},{people}
objectClass: inetOrgPerson
cn: {{login}}
sn: Attacker
uid: mallory
userPassword: {ssha("mallory-pw")}

dn: cn=vault,{groups}
objectClass: groupOfNames
cn: vault
member: cn=mallory,{people}
"""
    )
    config = manager_config(search_config(private_slapd, group_filter="(|(member={dn})(memberUid={login}))"))
    with AuthManager.from_config(config) as manager:
        identity = manager.login("ldap", login="mallory", password="mallory-pw").identity
    assert "vault" not in identity.groups
