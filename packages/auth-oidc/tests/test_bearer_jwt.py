"""Bearer JWTs checked offline: real oidc-provider tokens, client policies, forgeries, and key-set trouble."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from auth_keycloak.testing import CLIENT_ID as KC_CLIENT_ID
from auth_keycloak.testing import CLIENT_SECRET as KC_CLIENT_SECRET
from auth_keycloak.testing import KeycloakTestServer, Realm
from auth_oidc.testing import CLIENT_ID, DEFAULT_RESOURCE, OidcProviderServer, generate_jwks, public_jwks, sign_jwt
from authcore import InvalidToken, ProviderUnavailable, TokenExpired


@pytest.fixture
def server(oidc_server_factory: Any) -> OidcProviderServer:
    """oidc-provider with JWT access tokens and the password grant (to get tokens without a browser)."""
    started: OidcProviderServer = oidc_server_factory(access_token_format="jwt", password_grant=True)
    return started


def forged(issuer: str, key: dict[str, Any], *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": issuer,
        "sub": "forged-sub",
        "aud": DEFAULT_RESOURCE,
        "client_id": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "preferred_username": "mallory",
        "groups": ["staff"],
    }
    body.update(claims)
    return sign_jwt(body, key, {"typ": "at+jwt", **(header or {})})


# ---------------------------------------------------------------- real tokens


def test_access_token_verifies_offline_and_costs_no_request_once_warm(
    server: OidcProviderServer, make_provider: Any, kit: Any
) -> None:
    provider = make_provider(server.issuer)
    first, second = kit.server_tokens(server), kit.server_tokens(server, "bob")
    verified = provider.verify_bearer(first["access_token"])
    assert verified is not None
    assert verified.identity.login == "alice" and set(verified.identity.groups) == {"staff", "mx"}
    assert verified.identity.attributes["sub"] == verified.claims["sub"]
    assert verified.expires_at == verified.claims["exp"] and verified.token_id and verified.cache_until is None
    requests = kit.count_requests(provider)
    for _ in range(3):
        assert provider.verify_bearer(first["access_token"]).identity.login == "alice"
        assert provider.verify_bearer(second["access_token"]).identity.login == "bob"
    assert requests == []
    # The same through the manager: a token of the issuer verifies like one of ours.


def test_manager_verifies_issuer_tokens(server: OidcProviderServer, kit: Any, authcore_manager_factory: Any) -> None:
    manager = authcore_manager_factory(kit.manager_config(server.issuer))
    verified = manager.verify(kit.server_tokens(server)["access_token"])
    assert verified.login == "alice" and verified.provider == "sso"
    assert {"staff_area", "mx_area"} <= set(verified.permissions)
    with pytest.raises(InvalidToken):
        manager.verify(forged(server.issuer, generate_jwks()["keys"][0]))


@pytest.mark.parametrize(
    ("settings", "accepted"),
    [
        ({}, True),  # either: client_id names us
        ({"client_check": "azp"}, True),
        ({"client_check": "aud"}, False),  # aud is the API, not our client id
        ({"client_check": "aud", "audience": [DEFAULT_RESOURCE]}, True),
        ({"client_check": "both", "audience": [DEFAULT_RESOURCE]}, True),
        ({"client_check": "both"}, False),
        ({"client_id": "another-app", "client_check": "azp"}, False),
        ({"client_id": "another-app", "client_check": "azp", "trusted_clients": [CLIENT_ID]}, True),
        ({"client_id": "another-app", "audience": ["urn:other"]}, False),
    ],
)
def test_client_policies(
    server: OidcProviderServer, make_provider: Any, kit: Any, settings: dict[str, Any], accepted: bool
) -> None:
    provider = make_provider(server.issuer, **settings)
    token = kit.server_tokens(server)["access_token"]
    if accepted:
        assert provider.verify_bearer(token).identity.login == "alice"
    else:
        with pytest.raises(InvalidToken, match="another client"):
            provider.verify_bearer(token)


def test_id_token_is_not_an_access_token(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    tokens = kit.server_tokens(server)
    for settings in ({}, {"client_check": "aud"}, {"access_token_type": "at+jwt"}):
        with pytest.raises(InvalidToken, match="not an access token"):
            make_provider(server.issuer, **settings).verify_bearer(tokens["id_token"])
    # Typed access tokens pass the strict setting.
    strict = make_provider(server.issuer, access_token_type="at+jwt")
    assert strict.verify_bearer(tokens["access_token"]).identity.login == "alice"
    untyped = forged(server.issuer, server.jwks["keys"][0], header={"typ": "JWT"})
    with pytest.raises(InvalidToken, match="typ at\\+jwt"):
        strict.verify_bearer(untyped)
    assert make_provider(server.issuer).verify_bearer(untyped).identity.login == "mallory"  # auto: names a client


def test_refresh_token_and_garbage_are_not_ours(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    provider = make_provider(server.issuer, introspect="never")
    assert provider.verify_bearer(kit.server_tokens(server)["refresh_token"]) is None  # opaque, no introspection
    assert provider.verify_bearer("a.b.c") is None
    assert provider.verify_bearer("not-a-token") is None


def test_keycloak_id_and_refresh_tokens_are_refused(
    keycloak_server: KeycloakTestServer, keycloak_realm: Realm, make_provider: Any
) -> None:
    import httpx

    issuer = keycloak_server.issuer(keycloak_realm.name)
    provider = make_provider(issuer, client_id=KC_CLIENT_ID, client_secret=KC_CLIENT_SECRET, preset="keycloak")
    answer = httpx.post(
        issuer + "/protocol/openid-connect/token",
        data={"grant_type": "password", "username": "alice", "password": "Alice-pw-1", "scope": "openid"},
        auth=(KC_CLIENT_ID, KC_CLIENT_SECRET),
    ).json()
    verified = provider.verify_bearer(answer["access_token"])
    assert verified.identity.roles == ("user", "operator") and verified.session_id
    with pytest.raises(InvalidToken, match="not an access token"):
        provider.verify_bearer(answer["id_token"])
    with pytest.raises(InvalidToken):
        provider.verify_bearer(answer["refresh_token"])  # HS512: never an accepted algorithm


# ---------------------------------------------------------------- forgeries


def test_other_issuer_with_the_same_kid(server: OidcProviderServer, make_provider: Any) -> None:
    provider = make_provider(server.issuer)
    impostor = dict(generate_jwks()["keys"][0], kid=server.jwks["keys"][0]["kid"])
    assert provider.verify_bearer(forged("https://other.example.org", impostor)) is None  # not ours: not checked
    with pytest.raises(InvalidToken, match="bad token signature"):
        provider.verify_bearer(forged(server.issuer, impostor))  # claims our issuer: our key refuses it


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none"}, "algorithm not accepted"),
        ({"alg": "HS256"}, "algorithm not accepted"),
        ({"jku": "https://evil.example.org/jwks"}, "unexpected token header"),
        ({"jwk": {"kty": "RSA"}}, "unexpected token header"),
        ({"kid": "no-such-key"}, "unknown key"),
        ({"typ": "logout+jwt"}, "unexpected token type"),
    ],
)
def test_hostile_headers(server: OidcProviderServer, make_provider: Any, header: dict[str, Any], reason: str) -> None:
    provider = make_provider(server.issuer)
    with pytest.raises(InvalidToken, match=reason):
        provider.verify_bearer(forged(server.issuer, server.jwks["keys"][0], header=header))


def test_times(server: OidcProviderServer, make_provider: Any) -> None:
    provider = make_provider(server.issuer, leeway=0)
    key = server.jwks["keys"][0]
    now = int(time.time())
    with pytest.raises(TokenExpired):
        provider.verify_bearer(forged(server.issuer, key, exp=now - 1))
    with pytest.raises(InvalidToken, match="not valid yet"):
        provider.verify_bearer(forged(server.issuer, key, nbf=now + 600))
    with pytest.raises(InvalidToken, match="usable login"):
        provider.verify_bearer(forged(server.issuer, key, preferred_username=None))


def test_group_rules_apply_to_bearer_tokens(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    alice, bob = kit.server_tokens(server)["access_token"], kit.server_tokens(server, "bob")["access_token"]
    allowed = make_provider(server.issuer, allowed_groups=["staff"])
    assert allowed.verify_bearer(alice).identity.login == "alice"
    with pytest.raises(InvalidToken, match="group rules"):
        allowed.verify_bearer(bob)
    denied = make_provider(server.issuer, denied_groups=["mx"])
    with pytest.raises(InvalidToken, match="group rules"):
        denied.verify_bearer(alice)
    assert denied.verify_bearer(bob).identity.login == "bob"


# ---------------------------------------------------------------- algorithms


def test_only_published_or_pinned_algorithms(static_issuer: Any, make_provider: Any) -> None:
    keys = generate_jwks(("RS256", "PS256"), kid_prefix="alg")
    unpinned, pinned = keys["keys"]
    published = public_jwks(keys)
    del published["keys"][0]["alg"]  # the RSA key may serve any RSA algorithm as far as the JWK goes
    static_issuer.openid(published)  # publishes RS256 only; the second key pins PS256
    provider = make_provider(static_issuer.issuer)
    issuer = static_issuer.issuer
    assert provider.verify_bearer(forged(issuer, unpinned)).identity.login == "mallory"
    with pytest.raises(InvalidToken, match="algorithm not accepted"):
        provider.verify_bearer(forged(issuer, unpinned, header={"alg": "PS256"}))
    assert provider.verify_bearer(forged(issuer, pinned)).identity.login == "mallory"  # pinned by its key
    assert provider.issuer_keys().algorithms == {"RS256", "PS256"}
    with pytest.raises(InvalidToken, match="algorithm not accepted"):
        make_provider(issuer, algorithms=["RS256"]).verify_bearer(forged(issuer, pinned))


# ---------------------------------------------------------------- the key set in trouble


def test_keys_down_stay_usable_until_max_stale(
    server: OidcProviderServer, make_provider: Any, kit: Any, clock: Any
) -> None:
    provider = make_provider(server.issuer, clock=clock, jwks_cache_ttl=60, jwks_max_stale=120, jwks_refetch_cooldown=5)
    token = kit.server_tokens(server)["access_token"]
    assert provider.verify_bearer(token).identity.login == "alice"
    server.stop()
    clock.advance(100)  # keys stale, the issuer down: the keys held still serve
    assert provider.verify_bearer(token).identity.login == "alice"
    assert not provider.health().ok
    clock.advance(100)  # past max_stale
    with pytest.raises(ProviderUnavailable, match="cannot be fetched"):
        provider.verify_bearer(token)
    server.start()  # same port: the keys come back
    clock.advance(10)
    assert provider.verify_bearer(token).identity.login == "alice"


def test_slow_keys_are_bounded_by_the_timeout(static_issuer: Any, make_provider: Any) -> None:
    keys = generate_jwks(kid_prefix="slow")
    document = static_issuer.openid(public_jwks(keys))
    static_issuer.routes["/jwks"].delay = 3.0
    provider = make_provider(static_issuer.issuer, timeout=0.3)
    with pytest.raises(ProviderUnavailable, match=r"no answer within 0\.3 s"):
        provider.http.get_json(document["jwks_uri"])
    with pytest.raises(ProviderUnavailable):
        provider.verify_bearer(forged(static_issuer.issuer, keys["keys"][0]))


def test_garbage_keys_keep_the_old_ones(static_issuer: Any, make_provider: Any, clock: Any) -> None:
    keys = generate_jwks(kid_prefix="g")
    static_issuer.openid(public_jwks(keys))
    provider = make_provider(static_issuer.issuer, clock=clock, jwks_cache_ttl=60, jwks_refetch_cooldown=1)
    token = forged(static_issuer.issuer, keys["keys"][0])
    assert provider.verify_bearer(token) is not None
    for garbage in ({"keys": "nope"}, ["x"], {"keys": [{}] * 2000}):
        static_issuer.json("/jwks", garbage)
        clock.advance(61)
        fetched = static_issuer.hits["/jwks"]
        assert provider.verify_bearer(token).identity.login == "mallory"
        assert static_issuer.hits["/jwks"] == fetched + 1
    static_issuer.routes["/jwks"].content_type = "text/html"
    static_issuer.routes["/jwks"].body = b"<html>502 Bad Gateway</html>"
    clock.advance(61)
    assert provider.verify_bearer(token).identity.login == "mallory"


def test_a_thousand_keys(static_issuer: Any, make_provider: Any) -> None:
    many = generate_jwks(("ES256",) * 1000, kid_prefix="m")
    static_issuer.openid(public_jwks(many), id_token_signing_alg_values_supported=["ES256"])
    provider = make_provider(static_issuer.issuer)
    right, other = many["keys"][500], many["keys"][10]
    for _ in range(5):
        assert provider.verify_bearer(forged(static_issuer.issuer, right)).identity.login == "mallory"
    with pytest.raises(InvalidToken, match="bad token signature"):
        provider.verify_bearer(forged(static_issuer.issuer, right, header={"kid": other["kid"]}))
    assert static_issuer.hits["/jwks"] == 1
    assert len(provider.issuer_keys().keys.kids) == 1000


def test_unknown_kid_storm_refetches_once_per_cooldown(static_issuer: Any, make_provider: Any, clock: Any) -> None:
    keys = generate_jwks(("ES256",), kid_prefix="s")  # EC: fast to sign, the storm is sixty tokens
    static_issuer.openid(public_jwks(keys), id_token_signing_alg_values_supported=["ES256"])
    provider = make_provider(static_issuer.issuer, clock=clock, jwks_refetch_cooldown=30)
    assert provider.verify_bearer(forged(static_issuer.issuer, keys["keys"][0])) is not None
    assert static_issuer.hits["/jwks"] == 1
    for _ in range(50):
        with pytest.raises(InvalidToken, match="unknown key"):
            provider.verify_bearer(forged(static_issuer.issuer, keys["keys"][0], header={"kid": secrets.token_hex(8)}))
    assert static_issuer.hits["/jwks"] == 2  # one refetch for the first unknown kid, then the cooldown
    clock.advance(31)
    for _ in range(10):
        with pytest.raises(InvalidToken):
            provider.verify_bearer(
                forged(static_issuer.issuer, keys["keys"][0], header={"kid": "x" + secrets.token_hex(4)})
            )
    assert static_issuer.hits["/jwks"] == 3


def test_key_rotation_is_picked_up(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    provider = make_provider(server.issuer, jwks_refetch_cooldown=0)
    assert provider.verify_bearer(kit.server_tokens(server)["access_token"]) is not None
    server.restart(jwks=generate_jwks(kid_prefix="rotated"))
    token = kit.server_tokens(server)["access_token"]
    assert provider.verify_bearer(token).identity.login == "alice"
