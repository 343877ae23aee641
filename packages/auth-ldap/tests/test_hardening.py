"""Issue 9: pipelined logins, one login per account, production transports, health without a user."""

from __future__ import annotations

from typing import Any

import pytest
from ldap3 import DEREF_NEVER, SUBTREE  # type: ignore[import-untyped,unused-ignore]
from ldap3.operation.bind import bind_operation  # type: ignore[import-untyped,unused-ignore]
from ldap3.operation.search import search_operation  # type: ignore[import-untyped,unused-ignore]
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp  # type: ignore[import-untyped,unused-ignore]
from ldap3.utils.asn1 import encode  # type: ignore[import-untyped,unused-ignore]
from pydantic import SecretStr, ValidationError

from auth_ldap import LdapConfig, LdapProvider, wire
from auth_ldap.testing import SlapdServer, free_port
from authcore import AuthManager, ConfigError, InvalidCredentials, PasswordCredentials

TEMPLATE = "uid={login},ou=people,dc=example,dc=org"
STRONG = "x9!Kq2@Lm4#Np6$Rs8%Tv0^Wy1&Za3*Bc5(De7)"


def creds(login: str, password: str) -> PasswordCredentials:
    return PasswordCredentials.model_construct(login=login, password=SecretStr(password))


def pyispyb(server: SlapdServer, **extra: Any) -> dict[str, Any]:
    return {
        "LDAP_URI": server.uri,
        "LDAP_BASE_INTERNAL": server.people_dn,
        "LDAP_BASE_GROUPS": server.groups_dn,
        **extra,
    }


@pytest.fixture
def make(slapd: SlapdServer, configs: Any) -> Any:
    made: list[LdapProvider] = []

    def build(mode: str = "search", **overrides: Any) -> LdapProvider:
        if mode == "pyispyb":
            config = pyispyb(slapd, **overrides)
        else:
            direct = {"user_dn_template": TEMPLATE} if mode == "direct" else {}
            config = configs[0](slapd, **{**direct, **overrides})
        p = LdapProvider("ldap", LdapConfig.model_validate(config))
        made.append(p)
        return p

    yield build
    for p in made:
        p.close()


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Every send and receive of the login path, with the message ids involved (a spy: the calls still run)."""
    events: list[tuple[str, tuple[int, ...]]] = []
    send, receive = wire.send, wire.receive

    def spy_send(sock: Any, *requests: wire.Request) -> None:
        events.append(("send", tuple(r.message_id for r in requests)))
        send(sock, *requests)

    def spy_receive(sock: Any, *requests: wire.Request) -> list[wire.Reply]:
        replies = receive(sock, *requests)
        events.append(("receive", tuple(r.message_id for r in requests)))
        return replies

    monkeypatch.setattr(wire, "send", spy_send)
    monkeypatch.setattr(wire, "receive", spy_receive)
    return events


# ------------------------------------------------------------------ the requests on the wire


def _ldap3_bytes(message_id: int, kind: str, request: Any) -> bytes:
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName(kind, request)
    return bytes(encode(message))


FILTERS = [
    "(objectClass=*)",
    "(uid=alice)",
    "(|(member=uid=a\\2cb,dc=x)(uniqueMember=cn=x)(memberUid=al\\2aice))",
    "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName=a)(userPrincipalName=a@x)))",
    "(!(cn=x))",
    "(cn=a*b*c)",
    "(cn=*b*)",
    "(cn=a*)",
    "(cn=*z)",
    "(cn>=5)",
    "(cn<=5)",
    "(cn~=x)",
    "(cn:dn:2.5.13.5:=x)",
    "(:caseExactMatch:=x)",
    "(member:1.2.840.113556.1.4.1941:=cn=g,dc=x)",
    "(uid=zoë)",
    "(uid=\\c3\\a9\\28)",
    "(cn=" + "x" * 300 + ")",
]


@pytest.mark.parametrize("text", FILTERS)
def test_search_requests_are_byte_for_byte_ldap3s(text: str) -> None:
    ours = wire.search("ou=people,dc=example,dc=org", wire.SUBTREE, text, ["uid", "cn"], 2)
    theirs = search_operation(
        "ou=people,dc=example,dc=org", text, SUBTREE, DEREF_NEVER, ["uid", "cn"], 2, 0, False,
        auto_escape=False, auto_encode=False, schema=None, validator=None, check_names=False,
    )  # fmt: skip
    assert ours.data == _ldap3_bytes(ours.message_id, "searchRequest", theirs)


def test_bind_request_is_byte_for_byte_ldap3s() -> None:
    ours = wire.bind("cn=Doe\\, John,dc=x", "pässwörd".encode())
    theirs = bind_operation(3, "SIMPLE", "cn=Doe\\, John,dc=x", "pässwörd".encode())
    assert ours.data == _ldap3_bytes(ours.message_id, "bindRequest", theirs)


@pytest.mark.parametrize("bad", ["(uid=a", "uid=a", "(uid=a)(x=y)", "(uid=a(b)", "(uid=a\\zz)", "(&(uid=a)", "(!)"])
def test_broken_filters_are_refused_when_the_configuration_loads(bad: str) -> None:
    with pytest.raises(ValueError):
        wire.compile_filter(bad)
    if bad.startswith("(") and bad.endswith(")"):
        with pytest.raises(ValidationError, match="not a valid LDAP filter"):
            LdapConfig(uri="ldap://h", base_dn="dc=x", group_filter=bad)


# ------------------------------------------------------------------ fewer waits


def test_direct_bind_sends_the_entry_read_and_the_group_search_together(make: Any, traffic: list[Any]) -> None:
    """py-ispyb's configuration: one wait for the bind, one for the entry and the groups together."""
    identity = make("pyispyb").authenticate(creds("alice", "alice-pw"))
    assert set(identity.groups) == {"admins", "staff", "developers"}
    assert [(kind, len(ids)) for kind, ids in traffic] == [("send", 1), ("receive", 1), ("send", 2), ("receive", 2)]


def test_search_then_bind_searches_groups_while_the_user_binds(make: Any, traffic: list[Any]) -> None:
    identity = make().authenticate(creds("bob", "bob-pw"))
    assert set(identity.groups) == {"developers", "ops", "auditors"}
    sends = [ids for kind, ids in traffic if kind == "send"]
    user_search, group_search, user_bind = sends[0][0], sends[1][0], sends[2][0]
    order = [(kind, ids[0]) for kind, ids in traffic]
    # The group search is on its way before the bind is sent, and read after the bind's answer.
    assert order.index(("send", group_search)) < order.index(("send", user_bind))
    assert order.index(("receive", user_bind)) < order.index(("receive", group_search))
    assert order[1] == ("receive", user_search)


def test_member_of_only_sends_no_group_search(make: Any, traffic: list[Any]) -> None:
    identity = make("pyispyb", member_of_only=True).authenticate(creds("alice", "alice-pw"))
    assert set(identity.groups) == {"admins", "staff"}  # memberOf: groupOfNames only, as documented
    assert [(kind, len(ids)) for kind, ids in traffic] == [("send", 1), ("receive", 1), ("send", 1), ("receive", 1)]
    with pytest.raises(ValidationError):
        LdapConfig(uri="ldap://h", base_dn="dc=x", member_of_only=True, read_member_of=False)


@pytest.mark.parametrize("mode", ["search", "direct", "pyispyb"])
def test_a_differently_typed_login_gets_the_same_groups(make: Any, mode: str) -> None:
    """memberUid is case-exact: a group search made with the typed "ALICE" is made again with "alice"."""
    identity = make(mode).authenticate(creds("ALICE", "alice-pw"))
    assert identity.login == "alice"
    assert set(identity.groups) == {"admins", "staff", "developers"}


def test_wrong_password_and_unknown_user_still_refused_with_pipelining(make: Any) -> None:
    for mode in ("search", "direct", "pyispyb"):
        p = make(mode)
        for login, password in [("alice", "bob-pw"), ("ghost", "x-pw"), ("nopw", "x-pw")]:
            with pytest.raises(InvalidCredentials):
                p.authenticate(creds(login, password))
        assert p.authenticate(creds("bob", "bob-pw")).login == "bob"  # the pooled connection is still in step


# ------------------------------------------------------------------ one login, one key


SPACED = [" alice", "alice ", "  alice", "alice  ", " alice ", "\u3000alice"]


@pytest.mark.parametrize("mode", ["search", "direct", "pyispyb"])
@pytest.mark.parametrize("login", SPACED, ids=repr)
def test_logins_with_outer_spaces_are_refused_before_any_request(
    make: Any, traffic: list[Any], mode: str, login: str
) -> None:
    """The server drops outer spaces when it matches: " alice" would be alice under another spelling."""
    with pytest.raises(InvalidCredentials) as caught:
        make(mode).authenticate(creds(login, "alice-pw"))
    assert str(caught.value) == "invalid login or password"
    assert traffic == []


def test_doubled_inner_spaces_are_refused(make: Any) -> None:
    p = make("direct", user_dn_template="cn={login},ou=people,dc=example,dc=org")
    assert p.authenticate(creds("José Müller", "pässwörd-ü")).login == "jose"
    with pytest.raises(InvalidCredentials):
        p.authenticate(creds("José  Müller", "pässwörd-ü"))


@pytest.mark.parametrize("mode", ["search", "direct", "pyispyb"])
@pytest.mark.parametrize("login", ["ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"])
def test_server_matched_variants_yield_the_directory_login(make: Any, mode: str, login: str) -> None:
    """Case and compatibility forms the server matches to alice: the identity is the directory's "alice"."""
    try:
        identity = make(mode).authenticate(creds(login, "alice-pw"))
    except InvalidCredentials:
        return  # a server that does not match this form: refused, which is the other allowed answer
    assert identity.login == "alice"


def test_fullwidth_login_reaches_alice_at_this_server(make: Any) -> None:
    """The variant test above is not vacuous: slapd does match fullwidth letters to alice."""
    assert make("pyispyb").authenticate(creds("ａｌｉｃｅ", "alice-pw")).login == "alice"


def test_entry_without_the_login_attribute_is_refused_not_named_after_the_typed_text(make: Any) -> None:
    p = make(
        "direct",
        user_dn_template="cn={login},ou=people,dc=example,dc=org",
        attributes={"login": "employeeNumber"},
    )
    with pytest.raises(InvalidCredentials):
        p.authenticate(creds("José Müller", "pässwörd-ü"))


# ------------------------------------------------------------------ production transports


def _production(slapd: SlapdServer, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "production": True,
        "tokens": {"secret": STRONG},
        "providers": [{"name": "ldap", "type": "ldap", "config": provider}],
    }


@pytest.mark.parametrize(
    "uris",
    [["{ldap}"], ["{ldaps}", "{ldap}"], ["{ldap}", "{ldaps}"]],
    ids=["ldap", "failover-second", "failover-first"],
)
def test_production_refuses_plaintext_ldap(slapd: SlapdServer, uris: list[str]) -> None:
    urls = [u.format(ldap=slapd.uri, ldaps=slapd.ldaps_uri) for u in uris]
    with pytest.raises(ConfigError, match="clear text") as caught:
        AuthManager.from_config(_production(slapd, pyispyb(slapd, LDAP_URI=urls, ca_file=str(slapd.ca_file))))
    assert slapd.uri in str(caught.value) and "allow_plaintext" in str(caught.value)


@pytest.mark.parametrize(
    "extra",
    [{"allow_plaintext": True}, {"start_tls": True}, {"LDAP_URI": "{ldaps}"}, {"LDAP_URI": "{ldapi}"}],
    ids=["allow_plaintext", "start_tls", "ldaps", "ldapi"],
)
def test_production_accepts_protected_transports_and_the_named_opt_in(
    slapd: SlapdServer, extra: dict[str, Any]
) -> None:
    if "LDAP_URI" in extra:
        extra = {"LDAP_URI": extra["LDAP_URI"].format(ldaps=slapd.ldaps_uri, ldapi=slapd.ldapi_uri)}
    config = _production(slapd, pyispyb(slapd, ca_file=str(slapd.ca_file), **extra))
    with AuthManager.from_config(config) as manager:
        assert manager.login("ldap", login="alice", password="alice-pw").identity.login == "alice"


def test_development_accepts_plaintext_and_tls_verify_is_declared_for_the_core() -> None:
    config = LdapConfig(uri="ldap://h", base_dn="dc=x")
    assert "clear text" in " ".join(config.production_issues())
    assert LdapConfig(uri="ldap://h", base_dn="dc=x", allow_plaintext=True).production_issues() == []
    assert "tls_verify" in LdapConfig.tls_verify_fields


def test_ldapi_uris_are_checked() -> None:
    assert LdapConfig(uri="ldapi://%2Frun%2Fslapd%2Fldapi", base_dn="dc=x").uri == ("ldapi://%2Frun%2Fslapd%2Fldapi",)
    for bad in ("ldapi://", "ldapi://run/slapd", "ldapi://%2Frun/dc=x"):
        with pytest.raises(ValidationError):
            LdapConfig(uri=bad, base_dn="dc=x")
    with pytest.raises(ValidationError, match="start_tls"):
        LdapConfig(uri="ldapi://%2Frun%2Fldapi", base_dn="dc=x", start_tls=True)


# ------------------------------------------------------------------ health without a user


def test_health_names_the_uri_and_the_reason(make: Any, slapd: SlapdServer) -> None:
    wrong = make(bind_password="wrong-reader-pw").health()
    assert not wrong.ok
    assert wrong.detail == f"{slapd.uri}: invalid credentials for the service account"
    assert "wrong-reader-pw" not in repr(wrong)
    dead = f"ldap://127.0.0.1:{free_port()}"
    down = make(uri=[dead]).health()
    assert not down.ok and down.detail == f"{dead}: connection refused"
    both = make(uri=[dead, slapd.uri]).health()
    assert both.ok and both.detail == f"degraded: {dead}: connection refused"


def test_health_without_a_service_account_reads_the_root_dse(make: Any, slapd: SlapdServer) -> None:
    assert make("pyispyb").health().ok
    dead = f"ldap://127.0.0.1:{free_port()}"
    down = make("pyispyb", LDAP_URI=dead).health()
    assert not down.ok and down.detail == f"{dead}: connection refused"


def test_health_through_the_manager_never_shows_the_password(slapd: SlapdServer, configs: Any) -> None:
    search_config, manager_config = configs
    with AuthManager.from_config(manager_config(search_config(slapd, bind_password="wrong-reader-pw"))) as manager:
        health = manager.health()["ldap"]
    assert not health.ok and "invalid credentials for the service account" in health.detail
    assert "wrong-reader-pw" not in health.detail + repr(health.extra)
