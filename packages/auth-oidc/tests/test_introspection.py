"""Opaque access tokens: RFC 7662 introspection at oidc-provider, its checks, and the short cache."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from auth_keycloak.testing import CLIENT_ID as KC_CLIENT_ID
from auth_keycloak.testing import CLIENT_SECRET as KC_CLIENT_SECRET
from auth_keycloak.testing import KeycloakTestServer, Realm
from auth_oidc.testing import CLIENT_ID, CLIENT_SECRET, OidcProviderServer
from authcore import InvalidToken, ProviderUnavailable


@pytest.fixture
def server(oidc_server_factory: Any) -> OidcProviderServer:
    """oidc-provider with opaque access tokens and the password grant."""
    started: OidcProviderServer = oidc_server_factory(access_token_format="opaque", password_grant=True)
    return started


def revoke(server: OidcProviderServer, token: str) -> None:
    document = httpx.get(server.discovery_url, timeout=10).json()
    answer = httpx.post(document["revocation_endpoint"], data={"token": token}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer.status_code == 200


def test_active_token_is_introspected_then_cached(
    server: OidcProviderServer, make_provider: Any, kit: Any, clock: Any
) -> None:
    provider = make_provider(server.issuer, clock=clock)
    token = kit.server_tokens(server)["access_token"]
    assert token.count(".") != 2
    verified = provider.verify_bearer(token)
    assert verified.identity.login == "alice" and set(verified.identity.groups) == {"staff", "mx"}
    assert verified.cache_until == pytest.approx(clock.now + 30)
    assert verified.expires_at == verified.claims["exp"] > clock.now
    requests = kit.count_requests(provider)
    for _ in range(5):
        assert provider.verify_bearer(token) is verified
    assert requests == []
    clock.advance(31)
    assert provider.verify_bearer(token).identity.login == "alice"
    assert len(requests) == 1 and requests[0].endswith("/token/introspection")


def test_revoked_token_is_refused_once_the_cache_runs_out(
    server: OidcProviderServer, make_provider: Any, kit: Any, clock: Any
) -> None:
    provider = make_provider(server.issuer, clock=clock, introspection_cache_ttl=30)
    token = kit.server_tokens(server)["access_token"]
    assert provider.verify_bearer(token) is not None
    revoke(server, token)
    assert provider.verify_bearer(token) is not None  # still within the cache ttl
    clock.advance(30)
    assert provider.verify_bearer(token) is None  # inactive: not vouched for


def test_without_cache_revocation_shows_at_once_through_the_manager(
    server: OidcProviderServer, kit: Any, authcore_manager_factory: Any
) -> None:
    manager = authcore_manager_factory(kit.manager_config(server.issuer, introspection_cache_ttl=0))
    token = kit.server_tokens(server)["access_token"]
    verified = manager.verify(token)
    assert verified.login == "alice" and {"staff_area", "mx_area"} <= set(verified.permissions)
    revoke(server, token)
    with pytest.raises(InvalidToken):
        manager.verify(token)


def test_login_from_userinfo_when_introspection_lacks_it(
    oidc_server_factory: Any, make_provider: Any, kit: Any
) -> None:
    server = oidc_server_factory(access_token_format="opaque", password_grant=True, access_token_claims=[])
    provider = make_provider(server.issuer)
    token = kit.server_tokens(server)["access_token"]
    requests = kit.count_requests(provider)
    verified = provider.verify_bearer(token)
    assert verified.identity.login == "alice" and set(verified.identity.groups) == {"staff", "mx"}
    assert verified.identity.given_name == "Alice"  # userinfo has the profile
    assert [url.rsplit("/", 1)[-1] for url in requests[-2:]] == ["introspection", "me"]
    never = make_provider(server.issuer, userinfo="never")
    with pytest.raises(InvalidToken, match="usable login"):
        never.verify_bearer(token)


def test_refresh_token_is_not_an_access_token(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    # oidc-provider calls a refresh token active without a token_type; it names no user either.
    provider = make_provider(server.issuer)
    with pytest.raises(InvalidToken):
        provider.verify_bearer(kit.server_tokens(server)["refresh_token"])


def test_modes_and_client_check(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    token = kit.server_tokens(server)["access_token"]
    assert make_provider(server.issuer, introspect="never").verify_bearer(token) is None
    with pytest.raises(InvalidToken, match="another client"):
        make_provider(server.issuer, client_check="aud").verify_bearer(token)  # the answer has no aud
    assert make_provider(server.issuer, introspect="always").verify_bearer(token).identity.login == "alice"
    moved = make_provider(server.issuer, token_info_uri=server.issuer + "/no-such-endpoint")
    with pytest.raises(ProviderUnavailable, match="not found"):
        moved.verify_bearer(token)


def test_client_credentials_refused(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    token = kit.server_tokens(server)["access_token"]
    wrong = make_provider(server.issuer, client_secret="not-the-secret-at-all")
    with pytest.raises(ProviderUnavailable, match="refused our client credentials") as caught:
        wrong.verify_bearer(token)
    assert "not-the-secret" not in str(caught.value) and token not in str(caught.value)
    public = make_provider(server.issuer, client_secret=None)
    with pytest.raises(ProviderUnavailable, match="refused our client credentials"):
        public.verify_bearer(token)
    post = make_provider(server.issuer, client_auth="client_secret_post")
    assert post.verify_bearer(token).identity.login == "alice"


def test_always_introspects_jwts_too(
    keycloak_server: KeycloakTestServer, keycloak_realm: Realm, make_provider: Any, clock: Any
) -> None:
    issuer = keycloak_server.issuer(keycloak_realm.name)
    settings = {"client_id": KC_CLIENT_ID, "client_secret": KC_CLIENT_SECRET, "preset": "keycloak"}
    provider = make_provider(issuer, clock=clock, introspect="always", introspection_cache_ttl=10, **settings)
    endpoint = issuer + "/protocol/openid-connect"
    answer = httpx.post(
        endpoint + "/token",
        data={"grant_type": "password", "username": "alice", "password": "Alice-pw-1", "scope": "openid"},
        auth=(KC_CLIENT_ID, KC_CLIENT_SECRET),
    ).json()
    token = answer["access_token"]
    verified = provider.verify_bearer(token)
    assert verified.identity.login == "alice" and verified.cache_until == pytest.approx(clock.now + 10)
    logout = httpx.post(
        endpoint + "/logout", data={"refresh_token": answer["refresh_token"]}, auth=(KC_CLIENT_ID, KC_CLIENT_SECRET)
    )
    assert logout.status_code == 204
    assert provider.verify_bearer(token) is verified  # cached
    clock.advance(10)
    with pytest.raises(InvalidToken, match="no longer active"):
        provider.verify_bearer(token)
    assert make_provider(issuer, **settings).verify_bearer(token) is not None  # offline only: the logout is unseen


def test_typed_refresh_token_is_refused(
    keycloak_server: KeycloakTestServer, keycloak_realm: Realm, make_provider: Any
) -> None:
    issuer = keycloak_server.issuer(keycloak_realm.name)
    provider = make_provider(issuer, client_id=KC_CLIENT_ID, client_secret=KC_CLIENT_SECRET, preset="keycloak")
    answer = httpx.post(
        issuer + "/protocol/openid-connect/token",
        data={"grant_type": "password", "username": "alice", "password": "Alice-pw-1", "scope": "openid"},
        auth=(KC_CLIENT_ID, KC_CLIENT_SECRET),
    ).json()
    # Keycloak's refresh tokens are JWTs (HS512): refused offline. Asked as an opaque token, the
    # introspection answer's token_type "Refresh" refuses it.
    with pytest.raises(InvalidToken, match="not an access token"):
        provider.introspection.ask(
            answer["refresh_token"],
            provider.discovery.get().introspection_endpoint,
            issuer=issuer,
            check_client=provider.issuer_keys().access.check_client,
        )


def test_oidc_provider_cannot_introspect_jwts(oidc_server_factory: Any, make_provider: Any, kit: Any) -> None:
    server = oidc_server_factory(access_token_format="jwt", password_grant=True)
    token = kit.server_tokens(server)["access_token"]
    with pytest.raises(ProviderUnavailable, match="unsupported_token_type"):
        make_provider(server.issuer, introspect="always").verify_bearer(token)


def test_cache_is_bounded(server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    provider = make_provider(server.issuer)
    provider.introspection._max = 3  # a small bound, so the test does not need 10,000 tokens
    tokens = [kit.server_tokens(server, login)["access_token"] for login in ("alice", "bob", "alice", "bob", "alice")]
    for token in tokens:
        assert provider.verify_bearer(token) is not None
    assert len(provider.introspection) == 3
    assert provider.introspection.cached(tokens[0]) is None and provider.introspection.cached(tokens[-1]) is not None
