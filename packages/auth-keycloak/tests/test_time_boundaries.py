"""Keycloak's tokens expire at ``exp`` itself (RFC 7519 4.1.4), as ours do (authcore's test_time_boundaries)."""

from __future__ import annotations

import time

import pytest

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import CLIENT_ID, Realm
from auth_keycloak.verify import KeycloakVerifier
from authcore import AuthManager, TokenExpired


@pytest.mark.parametrize("leeway", [0.0, 10.0])
def test_bearer_token_expires_at_exp_plus_leeway(manager: AuthManager, keycloak_realm: Realm, leeway: float) -> None:
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    exp = int(time.time()) + 300
    token = keycloak_realm.issue("alice", CLIENT_ID, overrides={"exp": exp})["access_token"]
    clock = [exp + leeway - 0.001]
    verifier = KeycloakVerifier(
        issuer=keycloak_realm.issuer,
        keys=provider.keys,
        clients=frozenset({CLIENT_ID}),
        audiences=frozenset(),
        client_check="azp",
        leeway=leeway,
        clock=lambda: clock[0],
    )
    claims = verifier.claims(token)
    assert claims is not None and claims["preferred_username"] == "alice"
    clock[0] = exp + leeway
    with pytest.raises(TokenExpired):
        verifier.claims(token)
