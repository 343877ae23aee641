"""Configuration: py-ispyb's and MXCuBE's keys, derived values, bad input, the public config."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from auth_keycloak import KeycloakConfig
from auth_keycloak.testing import CLIENT_SECRET
from authcore import AuthManager, ConfigError


def test_py_ispyb_keys():
    config = KeycloakConfig.model_validate(
        {
            "KEYCLOAK_SERVER_URL": "https://sso.example.org/auth",
            "KEYCLOAK_CLIENT_ID": "ispyb",
            "KEYCLOAK_REALM_NAME": "esrf",
            "KEYCLOAK_CLIENT_SECRET_KEY": "s3cr3t-value",
        }
    )
    assert config.base_url == "https://sso.example.org/auth/"
    assert config.realm_issuer == "https://sso.example.org/auth/realms/esrf"
    assert config.client_secret is not None and "s3cr3t" not in repr(config)


def test_mxcube_keys():
    config = KeycloakConfig.model_validate(
        {
            "ISSUER": "https://websso.site.com/realms/site/",
            "CLIENT_ID": "mxcube",
            "CLIENT_SECRET": "ASECRETKEY",
            "SCOPE": "openid email profile",
            "CODE_CHALLANGE_METHOD": "S256",
            "LOGOUT_URI": "https://websso.site.com/realms/site/protocol/openid-connect/logout",
            "TOKEN_INFO_URI": "https://websso.site.com/realms/site/protocol/openid-connect/userinfo",
        }
    )
    assert (config.base_url, config.realm_name) == ("https://websso.site.com/", "site")
    assert config.scope == "openid email profile"
    assert config.production_issues() == ["client_secret is a well-known example value"]
    assert (
        KeycloakConfig.model_validate(
            {"ISSUER": "https://x.org/realms/r", "CLIENT_ID": "c", "CODE_CHALLENGE_METHOD": "S256", "SCOPE": "email"}
        ).scope
        == "openid email"
    )


BAD: list[dict[str, Any]] = [
    {},
    {"client_id": "c"},
    {"client_id": "c", "server_url": "https://x.org/"},
    {"client_id": "c", "realm": "r"},
    {"client_id": "c", "realm": "r", "server_url": "ftp://x.org/"},
    {"client_id": "c", "realm": "r", "server_url": ""},
    {"client_id": "", "realm": "r", "server_url": "https://x.org/"},
    {"client_id": "c", "realm": "a/b", "server_url": "https://x.org/"},
    {"client_id": "c\x00", "realm": "r", "server_url": "https://x.org/"},
    {"client_id": "c", "realm": "r" * 1000, "server_url": "https://x.org/"},
    {"client_id": "c", "issuer": "https://x.org/not-a-realm"},
    {"client_id": "c", "issuer": "https://x.org/realms/a", "realm": "b"},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "code_challenge_method": "plain"},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "algorithms": ["HS256"]},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "algorithms": ["none"]},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "algorithms": []},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "timeout": 0},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "leeway": 3600},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "admin_username": "root"},
    {"client_id": "c", "realm": "r", "server_url": "https://x.org/", "unknown": 1},
    {"client_id": "c", "realm": "r", "server_url": "https://ü.org/\n"},
]


@pytest.mark.parametrize("values", BAD, ids=range(len(BAD)))
def test_bad_configs_are_refused(values: dict[str, Any]):
    with pytest.raises(ValidationError):
        KeycloakConfig.model_validate(values)


def test_bad_config_through_the_manager_names_the_key(authcore_manager_factory: Callable[..., AuthManager]):
    with pytest.raises(ConfigError) as caught:
        authcore_manager_factory(
            {"providers": [{"name": "sso", "type": "keycloak", "config": {"client_id": "c", "realm": "r"}}]}
        )
    assert "providers" in str(caught.value)


def test_production_refuses_tls_off(authcore_manager_factory: Callable[..., AuthManager]):
    config = {"server_url": "https://x.org/", "realm": "r", "client_id": "c", "verify_tls": False}
    with pytest.raises(ConfigError, match="verify_tls"):
        authcore_manager_factory(
            {
                "production": True,
                "tokens": {"secret": "q8Zr1xV0-lM3pT7yW2nK5bH9cF4gD6sA-e"},
                "providers": [{"name": "sso", "type": "keycloak", "config": config}],
            }
        )


def test_public_config(manager: AuthManager):
    public = manager.public_config()
    text = json.dumps(public)
    assert CLIENT_SECRET not in text
    (entry,) = public["providers"]
    assert entry["type"] == "keycloak" and entry["realm"] == "test" and entry["client_id"] == "authcore"
    assert set(entry["endpoints"]) == {"authorization", "token", "logout", "jwks", "userinfo"}
    assert entry["endpoints"]["jwks"].endswith("/realms/test/protocol/openid-connect/certs")
    assert entry["credentials"] == ["password", "authorization_code", "token"]
