"""Configuration: MXCuBE's keys as written, empty strings, presets, hostile values, production rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from auth_oidc import PRESETS, OIDCConfig
from auth_oidc.config import ASYMMETRIC_ALGORITHMS
from auth_oidc.presets import resolve
from authcore import AuthManager, ConfigError
from authcore.algorithms import ALGORITHMS

SECRET = "Zq8-unguessable-client-secret-4711"
STRONG_TOKEN_SECRET = "q8Zr1xV0-lM3pT7yW2nK5bH9cF4gD6sA-e"

#: MXCuBE's SSO section, keys and values as its sample configuration writes them (USE_SSO is the
#: core's business: the lead maps it to ``enabled``).
MXCUBE = {
    "ISSUER": "https://websso.site.com/realms/site/",
    "LOGOUT_URI": "",
    "TOKEN_INFO_URI": "",
    "CLIENT_SECRET": SECRET,
    "CLIENT_ID": "mxcube",
    "SCOPE": "openid email profile",
    "CODE_CHALLANGE_METHOD": "S256",
}


def provider(config: dict[str, Any], *, production: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {"providers": [{"name": "sso", "type": "oidc", "config": config}]}
    if production:
        document.update(production=True, tokens={"secret": STRONG_TOKEN_SECRET})
    return document


def test_mxcube_section_loads_as_written() -> None:
    config = OIDCConfig.model_validate(MXCUBE)
    assert config.issuer == "https://websso.site.com/realms/site/"
    assert config.logout_uri is None and config.token_info_uri is None  # "" means "not set"
    assert config.client_secret is not None and config.client_secret.get_secret_value() == SECRET
    assert config.scope == "openid email profile"
    assert config.code_challenge_method == "S256"
    assert config.auth_method == "client_secret_basic"
    assert config.discovery_url == "https://websso.site.com/realms/site/.well-known/openid-configuration"
    assert config.production_issues() == []
    assert SECRET not in repr(config) and SECRET not in str(config)


def test_mxcube_section_through_the_manager(authcore_manager_factory: Callable[..., AuthManager]) -> None:
    manager = authcore_manager_factory(provider(dict(MXCUBE)))  # nothing is fetched when it starts
    public = manager.public_config()
    assert SECRET not in json.dumps(public)
    (entry,) = public["providers"]
    assert entry["type"] == "oidc" and entry["client_id"] == "mxcube" and entry["preset"] == "generic"
    assert entry["credentials"] == ["authorization_code", "token"]  # no password grant unless asked


def test_other_spelling_and_defaults() -> None:
    config = OIDCConfig.model_validate(
        {"issuer": "https://idp.example.org", "CLIENT_ID": "c", "CODE_CHALLENGE_METHOD": "S256"}
    )
    assert config.client_secret is None and config.auth_method == "none"
    assert config.scope == "openid profile email"
    assert config.algorithms == ASYMMETRIC_ALGORITHMS
    assert not any(ALGORITHMS[name].symmetric for name in config.algorithms)
    assert (
        OIDCConfig.model_validate({"issuer": "https://i.org", "client_id": "c", "CLIENT_SECRET": ""}).client_secret
        is None
    )


def test_presets_are_data_and_explicit_settings_win() -> None:
    assert set(PRESETS) == {"generic", "keycloak", "entra", "google", "gitlab", "authentik", "okta"}
    assert all(row.notes and "\n" not in row.notes for row in PRESETS.values())
    rules = resolve(
        OIDCConfig.model_validate({"issuer": "https://k.org/realms/r", "client_id": "app", "preset": "keycloak"})
    )
    assert rules.roles_claim == ("realm_access.roles", "resource_access.app.roles")
    assert rules.strip_group_path and "default-roles-*" in rules.ignored_roles
    explicit = OIDCConfig.model_validate(
        {"issuer": "https://k.org/realms/r", "client_id": "app", "preset": "keycloak", "strip_group_path": True,
         "roles_claim": "roles", "login_claim": ["email", "sub"]}
    )  # fmt: skip
    rules = resolve(explicit)
    assert rules.roles_claim == ("roles",) and rules.login_claim == ("email", "sub")
    assert rules.strip_group_path is True
    # Set to the generic default explicitly: still wins over the preset.
    rules = resolve(
        OIDCConfig.model_validate(
            {"issuer": "https://k.org", "client_id": "a", "preset": "keycloak", "strip_group_path": False}
        )
    )
    assert rules.strip_group_path is False
    okta = resolve(OIDCConfig.model_validate({"issuer": "https://o.org", "client_id": "a", "preset": "okta"}))
    assert (okta.client_check, okta.audience) == ("aud", ("api://default",))
    generic = resolve(OIDCConfig.model_validate({"issuer": "https://o.org", "client_id": "a"}))
    assert generic.audience == ("a",) and generic.client_check == "either"
    google = resolve(
        OIDCConfig.model_validate({"issuer": "https://accounts.google.com", "client_id": "a", "preset": "google"})
    )
    assert google.login_claim == ("email",) and google.groups_claim == ()


BASE = {"issuer": "https://idp.example.org", "client_id": "c"}
BAD: list[tuple[str, dict[str, Any]]] = [
    ("no-issuer", {"client_id": "c"}),
    ("empty-issuer", {"ISSUER": "", "client_id": "c"}),
    ("empty-client", {"issuer": "https://i.org", "CLIENT_ID": ""}),
    ("ftp-issuer", {**BASE, "issuer": "ftp://i.org"}),
    ("issuer-query", {**BASE, "issuer": "https://i.org/?tenant=1"}),
    ("issuer-fragment", {**BASE, "issuer": "https://i.org/#x"}),
    ("issuer-unicode", {**BASE, "issuer": "https://ïdp.example.org"}),
    ("issuer-newline", {**BASE, "issuer": "https://i.org/\n"}),
    ("issuer-huge", {**BASE, "issuer": "https://i.org/" + "a" * 5000}),
    ("issuer-number", {**BASE, "issuer": 42}),
    ("client-nul", {**BASE, "client_id": "c\x00"}),
    ("client-huge", {**BASE, "client_id": "c" * 1000}),
    ("client-spaces", {**BASE, "client_id": " c "}),
    ("pkce-plain", {**BASE, "CODE_CHALLANGE_METHOD": "plain"}),
    ("pkce-other", {**BASE, "code_challenge_method": "S512"}),
    ("scope-no-openid", {**BASE, "SCOPE": "email profile"}),
    ("scope-unicode", {**BASE, "scope": "openid prøfile"}),
    ("hs256", {**BASE, "algorithms": ["HS256"]}),
    ("alg-none", {**BASE, "algorithms": ["none"]}),
    ("no-algs", {**BASE, "algorithms": []}),
    ("basic-without-secret", {**BASE, "client_auth": "client_secret_basic"}),
    ("none-with-secret", {**BASE, "client_auth": "none", "client_secret": "s3cr3t-value-123"}),
    ("unknown-key", {**BASE, "realm": "x"}),
    ("unknown-preset", {**BASE, "preset": "auth0"}),
    ("groups-placeholder", {**BASE, "groups_claim": "resource_access.{realm}.roles"}),
    ("groups-dots", {**BASE, "groups_claim": "a..b"}),
    ("login-empty-list", {**BASE, "login_claim": []}),
    ("login-control", {**BASE, "login_claim": "pre\x1bferred"}),
    ("flow-param", {**BASE, "extra_authorize_params": {"redirect_uri": "https://evil.example"}}),
    ("ttl-too-long", {**BASE, "introspection_cache_ttl": 301}),
    ("timeout-zero", {**BASE, "timeout": 0}),
    ("leeway-huge", {**BASE, "leeway": 3600}),
    ("userinfo-sometimes", {**BASE, "userinfo": "sometimes"}),
    ("groups-huge", {**BASE, "allowed_groups": ["g" * 300]}),
]


@pytest.mark.parametrize("values", [v for _, v in BAD], ids=[i for i, _ in BAD])
def test_bad_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OIDCConfig.model_validate(values)


@pytest.mark.parametrize(
    "values", [v for i, v in BAD if i in ("empty-issuer", "pkce-plain", "issuer-unicode", "scope-no-openid")]
)
def test_bad_settings_through_the_loader_name_the_key(
    values: dict[str, Any], authcore_manager_factory: Callable[..., AuthManager]
) -> None:
    with pytest.raises(ConfigError) as caught:
        authcore_manager_factory(provider({**values, "client_secret": SECRET}))
    message = str(caught.value)
    assert "providers" in message and SECRET not in message


def test_plain_pkce_message_says_why() -> None:
    with pytest.raises(ValidationError, match="S256"):
        OIDCConfig.model_validate({**BASE, "CODE_CHALLANGE_METHOD": "plain"})


def test_secret_never_in_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        OIDCConfig.model_validate({**BASE, "client_secret": SECRET, "client_auth": "none"})
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    with pytest.raises(ValidationError) as caught:
        OIDCConfig.model_validate({**BASE, "client_secret": ["not", SECRET]})
    assert SECRET not in str(caught.value)


def test_production_refuses_plaintext_and_tls_off(authcore_manager_factory: Callable[..., AuthManager]) -> None:
    with pytest.raises(ConfigError, match="issuer is plaintext"):
        authcore_manager_factory(provider({"issuer": "http://127.0.0.1:8080", "client_id": "c"}, production=True))
    with pytest.raises(ConfigError, match="logout_uri is plaintext"):
        authcore_manager_factory(provider({**BASE, "logout_uri": "http://idp.example.org/logout"}, production=True))
    with pytest.raises(ConfigError, match="verify_tls"):
        authcore_manager_factory(provider({**BASE, "verify_tls": False}, production=True))
    with pytest.raises(ConfigError, match="client_secret"):
        authcore_manager_factory(provider({**BASE, "client_secret": "changeme"}, production=True))
    manager = authcore_manager_factory(
        provider({"issuer": "http://127.0.0.1:8080", "client_id": "c", "allow_plaintext": True}, production=True)
    )
    assert manager.provider("sso").type == "oidc"


def test_importing_the_package_does_not_import_httpx() -> None:
    import subprocess
    import sys

    code = "import sys, auth_oidc; from auth_oidc import OIDCProvider; assert 'httpx' not in sys.modules, 'httpx'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
