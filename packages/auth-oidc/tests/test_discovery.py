"""Discovery: the issuer rule, required fields, plaintext endpoints, TLS, caching with stale-if-error."""

from __future__ import annotations

import time
from typing import Any

import pytest

from auth_oidc.testing import OidcProviderServer, generate_jwks, public_jwks, sign_jwt
from authcore import ProviderUnavailable

KEYS = generate_jwks(("RS256",), kid_prefix="static")
KEY = KEYS["keys"][0]


def token(issuer: str, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": issuer,
        "sub": "s-1",
        "aud": "authcore-test",
        "client_id": "authcore-test",
        "exp": now + 300,
        "iat": now,
    }
    body.update(preferred_username="alice", groups=[], **claims)
    return sign_jwt(body, KEY)


def test_nothing_is_fetched_when_the_provider_is_made(static_issuer: Any, make_provider: Any) -> None:
    static_issuer.openid(public_jwks(KEYS))
    make_provider(static_issuer.issuer)
    assert sum(static_issuer.hits.values()) == 0


def test_a_document_naming_another_issuer_is_refused(static_issuer: Any, make_provider: Any) -> None:
    static_issuer.openid(public_jwks(KEYS), issuer="https://evil.example.org")
    provider = make_provider(static_issuer.issuer)
    with pytest.raises(ProviderUnavailable) as caught:
        provider.verify_bearer(token(static_issuer.issuer))
    message = str(caught.value)
    assert "'https://evil.example.org'" in message and "configured" in message and "sso" in message
    health = provider.health()
    assert not health.ok and "evil.example.org" in health.detail and "127.0.0.1" in health.detail


@pytest.mark.parametrize("published_slash", [True, False])
def test_one_trailing_slash_is_forgiven_and_the_document_decides(
    static_issuer: Any, make_provider: Any, published_slash: bool
) -> None:
    published = static_issuer.issuer + ("/" if published_slash else "")
    configured = static_issuer.issuer + ("" if published_slash else "/")
    static_issuer.openid(public_jwks(KEYS), issuer=published)
    provider = make_provider(configured, client_check="aud")
    verified = provider.verify_bearer(token(published))
    assert verified is not None and verified.identity.login == "alice"
    assert provider.verify_bearer(token(configured)) is None  # the document's spelling is the issuer
    assert provider.public_config()["issuer"] == published


def test_two_trailing_slashes_are_not_forgiven(static_issuer: Any, make_provider: Any) -> None:
    static_issuer.openid(public_jwks(KEYS), issuer=static_issuer.issuer + "//")
    with pytest.raises(ProviderUnavailable, match="names issuer"):
        make_provider(static_issuer.issuer).verify_bearer(token(static_issuer.issuer))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"jwks_uri": None}, "no jwks_uri"),
        ({"token_endpoint": ""}, "no token_endpoint"),
        ({"authorization_endpoint": "javascript:alert(1)"}, "authorization_endpoint is not an http"),
        ({"userinfo_endpoint": 7}, "no userinfo_endpoint"),
    ],
)
def test_required_fields_and_urls(static_issuer: Any, make_provider: Any, change: dict[str, Any], reason: str) -> None:
    document = static_issuer.openid(public_jwks(KEYS))
    document.update(change)
    static_issuer.json("/.well-known/openid-configuration", {k: v for k, v in document.items() if v is not None})
    with pytest.raises(ProviderUnavailable, match=reason):
        make_provider(static_issuer.issuer).verify_bearer(token(static_issuer.issuer))


def test_not_json_and_not_an_object(static_issuer: Any, make_provider: Any) -> None:
    static_issuer.json("/.well-known/openid-configuration", ["not", "an", "object"])
    with pytest.raises(ProviderUnavailable, match="not a JSON object"):
        make_provider(static_issuer.issuer).discovery.refresh()


def test_https_issuer_with_plaintext_endpoints(tls_issuer: Any, make_provider: Any) -> None:
    server, ca_file = tls_issuer
    plain = server.issuer.replace("https://", "http://")
    server.openid(public_jwks(KEYS), token_endpoint=f"{plain}/token")
    with pytest.raises(ProviderUnavailable, match="token_endpoint is plaintext http"):
        make_provider(server.issuer, ca_file=ca_file).discovery.get()
    assert (
        make_provider(server.issuer, ca_file=ca_file, allow_plaintext=True)
        .discovery.get()
        .token_endpoint.startswith("http://")
    )


def test_tls_is_checked_against_ca_file(tls_issuer: Any, make_provider: Any) -> None:
    server, ca_file = tls_issuer
    server.openid(public_jwks(KEYS))
    with pytest.raises(ProviderUnavailable, match="TLS certificate is not trusted"):
        make_provider(server.issuer).discovery.get()
    provider = make_provider(server.issuer, ca_file=ca_file, client_check="aud")
    verified = provider.verify_bearer(token(server.issuer))
    assert verified is not None and verified.identity.login == "alice"


def test_cached_then_refetched_and_stale_within_bounds(static_issuer: Any, make_provider: Any, clock: Any) -> None:
    static_issuer.openid(public_jwks(KEYS))
    provider = make_provider(
        static_issuer.issuer, clock=clock, discovery_ttl=60, jwks_max_stale=300, jwks_refetch_cooldown=10
    )
    path = "/.well-known/openid-configuration"
    for _ in range(20):
        provider.discovery.get()
    assert static_issuer.hits[path] == 1
    clock.advance(61)
    provider.discovery.get()
    assert static_issuer.hits[path] == 2
    static_issuer.json(path, {"error": "down"}, status=503)
    clock.advance(61)
    assert provider.discovery.get().issuer == static_issuer.issuer  # stale, kept
    assert static_issuer.hits[path] == 3
    provider.discovery.get()
    assert static_issuer.hits[path] == 3  # a failed fetch is not retried within the cooldown
    clock.advance(300)
    with pytest.raises(ProviderUnavailable, match="jwks_max_stale"):
        provider.discovery.get()


def test_first_fetch_failure_then_cooldown(static_issuer: Any, make_provider: Any, clock: Any) -> None:
    provider = make_provider(static_issuer.issuer, clock=clock, jwks_refetch_cooldown=10)
    path = "/.well-known/openid-configuration"
    with pytest.raises(ProviderUnavailable, match="not found"):
        provider.discovery.get()
    with pytest.raises(ProviderUnavailable, match="retried after a pause"):
        provider.discovery.get()
    assert static_issuer.hits[path] == 1
    static_issuer.openid(public_jwks(KEYS))
    clock.advance(11)
    assert provider.discovery.get().issuer == static_issuer.issuer


def test_no_algorithm_in_common(static_issuer: Any, make_provider: Any) -> None:
    static_issuer.openid({"keys": []}, id_token_signing_alg_values_supported=["ES256"])
    with pytest.raises(ProviderUnavailable, match="no signature algorithm in common"):
        make_provider(static_issuer.issuer, algorithms=["RS256"]).verify_bearer(token(static_issuer.issuer))


def test_oidc_provider_document(oidc_server: OidcProviderServer, make_provider: Any) -> None:
    provider = make_provider(oidc_server.issuer + "/")
    metadata = provider.discovery.get()
    assert metadata.issuer == oidc_server.issuer
    assert metadata.iss_parameter_supported
    assert metadata.revocation_endpoint and metadata.introspection_endpoint and metadata.end_session_endpoint
    health = provider.health()
    assert health.ok and health.extra == {"issuer": oidc_server.issuer, "keys": 1}


def test_health_names_the_url_and_reason_when_down(static_issuer: Any, make_provider: Any) -> None:
    provider = make_provider(static_issuer.issuer)
    static_issuer.stop()
    health = provider.health()
    assert not health.ok
    assert static_issuer.issuer.removeprefix("http://") in health.detail and "cannot be reached" in health.detail
