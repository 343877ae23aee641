"""Claims to identities: login claims, dotted paths, presets, bounds, hostile values, userinfo subjects."""

from __future__ import annotations

from typing import Any

import pytest

from auth_oidc import OIDCConfig
from auth_oidc.claims import merge_userinfo
from auth_oidc.mapping import MAX_NAMES, ClaimMapper, MissingLogin, lookup
from auth_oidc.presets import resolve
from authcore import InvalidToken


def mapper(**settings: Any) -> ClaimMapper:
    config = OIDCConfig.model_validate({"issuer": "https://idp.example.org", "client_id": "app", **settings})
    return ClaimMapper(resolve(config), allowed_groups=config.allowed_groups, denied_groups=config.denied_groups)


KEYCLOAK_CLAIMS: dict[str, Any] = {
    "sub": "f1",
    "preferred_username": "alice",
    "email": "alice@example.org",
    "given_name": "Alice",
    "family_name": "Example",
    "name": "Alice Example",
    "groups": ["/staff/mx", "/users"],
    "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-site", "user"]},
    "resource_access": {"app": {"roles": ["operator"]}, "other": {"roles": ["admin"]}},
}


def test_keycloak_preset() -> None:
    identity = mapper(preset="keycloak").identity(KEYCLOAK_CLAIMS)
    assert identity.login == "alice" and identity.groups == ("mx", "users")
    assert identity.roles == ("user", "operator")  # built-ins ignored, other clients' roles not ours
    assert (identity.given_name, identity.family_name, identity.display_name) == ("Alice", "Example", "Alice Example")
    assert identity.attributes == {"sub": "f1"}
    generic = mapper().identity(KEYCLOAK_CLAIMS)
    assert generic.groups == ("/staff/mx", "/users") and generic.roles == ()


def test_login_claims_in_order() -> None:
    entra = mapper(preset="entra")
    assert entra.identity({"upn": "a@x.org", "email": "e@x.org"}).login == "a@x.org"
    assert entra.identity({"preferred_username": "p", "upn": "a@x.org"}).login == "p"
    assert entra.identity({"preferred_username": "bad\nname", "upn": "", "email": "e@x.org"}).login == "e@x.org"
    with pytest.raises(MissingLogin):
        entra.identity({"sub": "x", "name": "No Login"})
    with pytest.raises(InvalidToken):
        mapper().identity({"preferred_username": "x" * 300})
    assert mapper(preset="gitlab").identity({"nickname": "gl", "preferred_username": "p"}).login == "gl"


def test_paths_and_shapes() -> None:
    claims = {"preferred_username": "a", "https://example.org/groups": ["g1"], "app": {"nested": {"roles": "r1"}}}
    identity = mapper(
        groups_claim="https://example.org/groups", roles_claim=["app.nested.roles", "missing.path"]
    ).identity(claims)
    assert identity.groups == ("g1",) and identity.roles == ("r1",)
    assert lookup({"a": {"b": 1}}, "a.b") == 1 and lookup({"a": 1}, "a.b") is None and lookup({}, "x") is None
    odd = {"preferred_username": "a", "groups": ["ok", 7, None, {"x": 1}, "", "bad\x00", "z" * 300, "ok"]}
    assert mapper().identity(odd).groups == ("ok",)
    assert mapper().identity({"preferred_username": "a", "groups": {"not": "a list"}}).groups == ()
    assert mapper(ignored_roles=["tmp-*", "x"], roles_claim="roles").identity(
        {"preferred_username": "a", "roles": ["tmp-1", "x", "keep"]}
    ).roles == ("keep",)


def test_bounds() -> None:
    many = {"preferred_username": "a", "groups": [f"g{i}" for i in range(MAX_NAMES + 1)]}
    with pytest.raises(InvalidToken, match="too many"):
        mapper().identity(many)
    split = {"preferred_username": "a", "g1": [f"a{i}" for i in range(600)], "g2": [f"b{i}" for i in range(600)]}
    with pytest.raises(InvalidToken, match="too many"):
        mapper(groups_claim=["g1", "g2"]).identity(split)
    assert mapper().identity({"preferred_username": "a", "email": "x" * 400}).email is None


def test_group_rules() -> None:
    alice = {"preferred_username": "a", "groups": ["staff"]}
    assert mapper(allowed_groups=["staff"]).identity(alice).login == "a"
    with pytest.raises(InvalidToken):
        mapper(allowed_groups=["admins"]).identity(alice)
    with pytest.raises(InvalidToken):
        mapper(denied_groups=["staff"]).identity(alice)
    with pytest.raises(InvalidToken):  # no groups claim at all: membership of a denied group cannot be ruled out
        mapper(denied_groups=["staff"]).identity({"preferred_username": "a"})
    assert mapper(denied_groups=["staff"]).identity({"preferred_username": "a", "groups": []}).login == "a"


def test_userinfo_needs_and_subjects() -> None:
    m = mapper()
    assert m.lacks_claims({"sub": "1"}) and m.lacks_claims({"preferred_username": "a"})
    assert not m.lacks_claims({"preferred_username": "a", "groups": []})
    assert not mapper(preset="google").lacks_claims({"email": "a@gmail.com"})
    assert merge_userinfo({"sub": "1", "x": 1}, {"sub": "1", "x": 2}) == {"sub": "1", "x": 2}
    with pytest.raises(InvalidToken, match="another subject"):
        merge_userinfo({"sub": "1"}, {"sub": "2"})
    with pytest.raises(InvalidToken, match="another subject"):
        merge_userinfo({"sub": "1"}, {"preferred_username": "no-sub"})


def test_remembered_identities_follow_every_claim_they_are_made_of() -> None:
    """The per-subject memo returns the same identity only for equal raw values: a changed group,
    name or login makes a new one, and the group rules are applied to it again."""
    config = OIDCConfig(issuer="https://idp.example.org", client_id="app", denied_groups=("banned",))
    mapper = ClaimMapper(resolve(config), allowed_groups=config.allowed_groups, denied_groups=config.denied_groups)
    base = {"sub": "u1", "preferred_username": "alice", "groups": ["staff"], "name": "Alice"}
    first = mapper.identity(dict(base))
    assert mapper.identity({**base, "exp": 1, "jti": "other"}) is first  # other token, same person
    assert mapper.remembered({**base, "groups": ["staff", "mx"]}) is None
    assert mapper.identity({**base, "groups": ["staff", "mx"]}).groups == ("staff", "mx")
    assert mapper.identity({**base, "name": "Alice B."}).display_name == "Alice B."
    assert mapper.identity({**base, "preferred_username": "alice2"}).login == "alice2"
    with pytest.raises(InvalidToken):
        mapper.identity({**base, "groups": ["staff", "banned"]})
    assert mapper.identity({**base, "sub": ["not", "hashable"]}).login == "alice"  # mapped, not remembered
    assert mapper.remembered({**base, "sub": ["not", "hashable"]}) is None
