"""Keycloak down, slow, or failing: ProviderUnavailable, never InvalidCredentials; cached keys keep working."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import CLIENT_ID, USERS, KeycloakTestServer, Realm
from authcore import AuthManager, InvalidCredentials, ProviderUnavailable

CERTS = "/protocol/openid-connect/certs"


def provider_of(manager: AuthManager) -> KeycloakProvider:
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    return provider


def test_down_after_warm_up(make_manager: Callable[..., AuthManager], keycloak_server, keycloak_realm: Realm):
    manager = make_manager(jwks_cache_ttl=0.2, jwks_refetch_cooldown=0.2)
    warm = manager.login("sso", login="alice", password=USERS["alice"][0])
    assert warm.login == "alice"
    tokens = [keycloak_realm.issue(login, CLIENT_ID)["access_token"] for login in USERS]
    assert manager.verify(tokens[0]).login == "alice"  # a presented token fetches the keys (a login does not)
    keycloak_server.set_down(True)
    time.sleep(0.3)  # the keys are past their TTL: refetching fails, the cached ones are used (stale-if-error)
    for login, token in zip(USERS, tokens, strict=True):
        bearer = provider_of(manager).verify_bearer(token)
        assert bearer is not None and bearer.identity.login == login
        assert manager.verify(token).login == login
    with pytest.raises(ProviderUnavailable):
        manager.login("sso", login="alice", password=USERS["alice"][0])
    with pytest.raises(ProviderUnavailable):
        manager.login("sso", login="alice", password="wrong-password")
    assert manager.verify(warm.access_token).login == "alice"  # our own token does not need Keycloak
    assert not manager.health()["sso"].ok
    keycloak_server.set_down(False)
    assert manager.login("sso", login="bob", password=USERS["bob"][0]).login == "bob"
    assert manager.health()["sso"].ok


def test_down_from_the_start(make_manager: Callable[..., AuthManager], keycloak_server, keycloak_realm: Realm):
    token = keycloak_realm.issue("alice", CLIENT_ID)["access_token"]
    keycloak_server.set_down(True)
    manager = make_manager()  # starting needs no Keycloak
    with pytest.raises(ProviderUnavailable):
        provider_of(manager).verify_bearer(token)  # the token cannot be checked: not "invalid"
    with pytest.raises(ProviderUnavailable):
        manager.login("sso", token=token)
    keycloak_server.set_down(False)
    time.sleep(0.05)
    manager = make_manager()
    assert manager.login("sso", token=token).login == "alice"


def test_slow_server_calls_end_within_the_timeout(
    make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer
):
    manager = make_manager(timeout=0.5)
    keycloak_server.slow(3)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        manager.login("sso", login="alice", password=USERS["alice"][0])
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    assert not manager.health()["sso"].ok
    assert time.monotonic() - started < 1.5
    keycloak_server.slow(0)


def test_server_errors_are_unavailability(
    make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer
):
    manager = make_manager(realm="no-such-realm")
    with pytest.raises(ProviderUnavailable):  # 404 for the realm
        manager.login("sso", login="alice", password=USERS["alice"][0])
    wrong_secret = make_manager(client_secret="not-the-secret-at-all")
    with pytest.raises(ProviderUnavailable) as caught:  # 401 invalid_client: our configuration, not the user
        wrong_secret.login("sso", login="alice", password=USERS["alice"][0])
    assert "not-the-secret" not in str(caught.value)
    unreachable = make_manager(server_url="http://127.0.0.1:9/")
    with pytest.raises(ProviderUnavailable):
        unreachable.login("sso", login="alice", password=USERS["alice"][0])


def test_wrong_password_is_invalid_credentials(manager: AuthManager):
    with pytest.raises(InvalidCredentials):
        manager.login("sso", login="alice", password="wrong")


def test_issuer_mismatch_is_reported(make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer):
    # Same server under another host name: Keycloak's tokens name the URL it knows itself by.
    manager = make_manager(server_url=keycloak_server.url.replace("127.0.0.1", "localhost"))
    with pytest.raises(ProviderUnavailable) as caught:
        manager.login("sso", login="alice", password=USERS["alice"][0])
    assert "issuer" in str(caught.value)
