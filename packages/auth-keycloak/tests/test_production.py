"""``production: true`` refuses every plaintext URL of Keycloak unless ``allow_plaintext`` names the risk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth_keycloak import KeycloakConfig
from authcore import AuthManager, ConfigError

SECRET = "q8Zr1xV0-lM3pT7yW2nK5bH9cF4gD6sA-e"
SAFE: dict[str, Any] = {"server_url": "https://sso.example.org/", "realm": "r", "client_id": "c"}


def production(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "production": True,
        "tokens": {"secret": SECRET},
        "providers": [{"name": "sso", "type": "keycloak", "config": config}],
    }


PLAINTEXT = [
    ("server_url", {"server_url": "http://sso.example.org/"}),
    ("server_url", {"server_url": "HTTP://sso.example.org/"}),
    ("server_url", {"server_url": "http://127.0.0.1:8080/"}),  # loopback: may be a proxy forwarding in clear
    ("server_url", {"server_url": "http://localhost:8080/auth/"}),
    ("server_url", {"server_url": "http://[::1]:8080/"}),
    ("issuer", {"server_url": None, "realm": None, "issuer": "http://sso.example.org/realms/r"}),
    ("logout_uri", {"logout_uri": "http://sso.example.org/realms/r/protocol/openid-connect/logout"}),
    ("token_info_uri", {"token_info_uri": "http://sso.example.org/realms/r/protocol/openid-connect/userinfo"}),
]


def _config(changes: dict[str, Any], **more: Any) -> dict[str, Any]:
    config = {**SAFE, **changes, **more}
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize(("field", "changes"), PLAINTEXT)
def test_production_refuses_plaintext_urls(
    authcore_manager_factory: Callable[..., AuthManager], field: str, changes: dict[str, Any]
):
    config = _config(changes)
    assert any(issue.startswith(field) for issue in KeycloakConfig.model_validate(config).production_issues())
    with pytest.raises(ConfigError, match=f"{field} is plaintext http://.*allow_plaintext") as caught:
        authcore_manager_factory(production(config))
    assert "providers" in str(caught.value)  # the key path, as for every ConfigError


@pytest.mark.parametrize(("field", "changes"), PLAINTEXT)
def test_allow_plaintext_is_the_opt_in(
    authcore_manager_factory: Callable[..., AuthManager], field: str, changes: dict[str, Any]
):
    config = _config(changes, allow_plaintext=True)
    assert KeycloakConfig.model_validate(config).production_issues() == []
    manager = authcore_manager_factory(production(config))
    assert manager.provider("sso").name == "sso"


def test_https_and_development_are_unaffected(authcore_manager_factory: Callable[..., AuthManager]):
    assert KeycloakConfig.model_validate(SAFE).production_issues() == []
    authcore_manager_factory(production(SAFE))
    plain = _config({"server_url": "http://127.0.0.1:8080/"})
    authcore_manager_factory({"providers": [{"name": "sso", "type": "keycloak", "config": plain}]})


def test_allow_plaintext_does_not_excuse_other_issues():
    config = KeycloakConfig.model_validate(
        _config({"server_url": "http://x.org/"}, allow_plaintext=True, verify_tls=False)
    )
    assert config.production_issues() == ["verify_tls switches TLS certificate verification off"]
