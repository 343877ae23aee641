"""Tests for authcore.config: YAML loading, interpolation, py-ispyb translation, validation, messages."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator

from authcore.config import (
    MAX_CONFIG_BYTES,
    MAX_NODES,
    PYISPYB_CLASSES,
    AuthcoreConfig,
    ConfigSource,
    load_config,
    load_yaml,
    parse_config,
)
from authcore.errors import ConfigError
from authcore.providers import ProviderConfig

DATA = Path(__file__).parent / "data"
SECRET = "S3cr3t-Value-never-shown"


def write(tmp_path: Path, text: str | bytes, name: str = "auth.yml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str | bytes, environ: dict[str, str] | None = None) -> AuthcoreConfig:
    return load_config(write(tmp_path, text), environ=environ or {})


def fails(tmp_path: Path, text: str | bytes, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environ)
    return str(info.value)


def located(message: str, line: int | None, path: str | None = None) -> None:
    """The message names the file, the line and (when given) the key path."""
    assert "auth.yml" in message, message
    if line is not None:
        assert f"line {line}" in message, message
    if path is not None:
        assert f"at {path}" in message, message


class LdapLikeConfig(ProviderConfig):
    """A provider config in the style the LDAP provider uses: py-ispyb upper-case aliases."""

    uri: str = Field(validation_alias=AliasChoices("uri", "LDAP_URI"))
    base_internal: str = Field(default="", validation_alias=AliasChoices("base_internal", "LDAP_BASE_INTERNAL"))
    base_groups: str = Field(default="", validation_alias=AliasChoices("base_groups", "LDAP_BASE_GROUPS"))
    bind_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("bind_password", "LDAP_BIND_PASSWORD")
    )

    @field_validator("bind_password")
    @classmethod
    def _long(cls, value: SecretStr | None) -> SecretStr | None:
        # Deliberately careless: echoes the value, as a third-party validator might.
        if value is not None and len(value.get_secret_value()) > 8:
            raise ValueError(f"refusing {value.get_secret_value()}")
        return value


# --------------------------------------------------------------------------- authcore's own schema


def test_design_example_loads_with_interpolation() -> None:
    config = load_config(DATA / "authcore.yml", environ={"AUTHCORE_SECRET": SECRET, "KC_SECRET": "kc-secret-1"})
    assert config.production is True
    assert config.tokens.secret is not None and config.tokens.secret.get_secret_value() == SECRET
    assert config.tokens.issuer == "https://auth.example.org"
    assert config.tokens.access_ttl == 900.0
    assert config.sessions.idle_timeout == 8 * 3600 and config.sessions.max_lifetime == 24 * 3600
    assert config.sessions.store == "sqlite:////var/lib/authcore/sessions.db"
    assert [(p.name, p.type, p.enabled) for p in config.providers] == [
        ("site-ldap", "ldap", True),
        ("sso", "keycloak", True),
    ]
    assert config.providers[0].config["uri"] == ["ldaps://ldap1.example.org", "ldaps://ldap2.example.org"]
    assert config.providers[1].config["client_secret"] == "kc-secret-1"
    assert config.permissions.groups == {
        "Admin": ["all_proposals", "all_sessions"],
        "user": ["own_proposals", "own_sessions"],
    }
    assert config.source.name == str(DATA / "authcore.yml")
    assert config.source.line(("providers", 1, "config", "client_secret")) == 14
    assert config.source.line(("tokens", "secret")) == 4
    assert config.source.where(("providers", 0, "type")).endswith("authcore.yml, line 10, at providers[0].type")


def test_load_config_accepts_str_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, "providers: [{name: dummy}]\n")
    assert load_config(str(path), environ={}).providers[0].type == "dummy"
    assert load_config(path, environ={}).providers[0].type == "dummy"


def test_minimal_mapping_gives_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "{}\n")
    assert config.providers == [] and config.production is False
    assert config.tokens.access_ttl == 900.0


def test_several_instances_of_one_type(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "providers:\n"
        "  - {name: ldap-a, type: ldap, config: {uri: ldap://a}}\n"
        "  - {name: ldap-b, type: ldap, config: {uri: ldap://b}}\n"
        "  - {name: own, class: 'site.auth:Mine', enabled: false}\n",
    )
    assert [(p.name, p.type, p.class_) for p in config.providers] == [
        ("ldap-a", "ldap", None),
        ("ldap-b", "ldap", None),
        ("own", None, "site.auth:Mine"),
    ]
    assert config.providers[2].enabled is False


def test_null_sections_and_null_provider_config_mean_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "tokens:\nsessions:\nproviders:\n  - name: dummy\n    config:\n")
    assert config.tokens.issuer == "authcore"
    assert config.providers[0].config == {}


def test_duplicate_provider_names(tmp_path: Path) -> None:
    message = fails(
        tmp_path,
        "providers:\n  - name: ldap\n    type: ldap\n  - name: other\n  - name: ldap\n    type: keycloak\n",
    )
    located(message, 5, "providers[2].name")
    assert "'ldap'" in message and "first at line 2" in message


def test_duplicate_provider_names_pyispyb(tmp_path: Path) -> None:
    message = fails(tmp_path, "AUTH:\n  - dummy: {}\n  - dummy:\n      ENABLED: false\n")
    located(message, 3, "AUTH[1].dummy")
    assert "two providers are named 'dummy'" in message


def test_provider_name_rule_is_ascii(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers:\n  - name: ldap-é\n    type: ldap\n")
    located(message, 2, "providers[0].name")
    assert "provider name" in message


def test_type_and_class_together(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers:\n  - name: x\n    type: ldap\n    class: 'a.b:C'\n")
    located(message, 2, "providers[0]")
    assert "not both" in message


def test_token_model_validator_message_is_shown(tmp_path: Path) -> None:
    message = fails(tmp_path, f"tokens:\n  algorithm: RS256\n  secret: {SECRET}\n")
    located(message, 1, "tokens")
    assert "RS256 needs 'private_key_file'" in message
    assert SECRET not in message


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("text", "line", "path", "key", "suggestion"),
    [
        ("production: false\nprovider: []\n", 2, "provider", "provider", "providers"),
        ("tokens:\n  issuer: x\n  isuer: y\n", 3, "tokens.isuer", "isuer", "issuer"),
        ("sessions:\n  idle_timout: 1h\n", 2, "sessions.idle_timout", "idle_timout", "idle_timeout"),
        ("permissions:\n  group: {}\n", 2, "permissions.group", "group", "groups"),
        ("providers:\n  - name: x\n    tpye: ldap\n", 3, "providers[0].tpye", "tpye", "type"),
        ("providers:\n  - name: x\n    configs: {}\n", 3, "providers[0].configs", "configs", "config"),
        ("auth:\n  - dummy: {}\n", 1, "auth", "auth", "AUTH"),
        ("Tokens: {}\n", 1, "Tokens", "Tokens", "tokens"),
        ("zzz: 1\n", 1, "zzz", "zzz", None),
    ],
)
def test_unknown_keys(tmp_path: Path, text: str, line: int, path: str, key: str, suggestion: str | None) -> None:
    message = fails(tmp_path, text)
    located(message, line, path)
    assert f"unknown key {key!r}" in message
    if suggestion is None:
        assert "did you mean" not in message
    else:
        assert f"did you mean {suggestion!r}?" in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  isuer: x\n  access_ttl: 15x\nproviders:\n  - name: a\n    tpye: b\n")
    assert message.startswith("3 problems in ")
    assert "line 2, at tokens.isuer: unknown key 'isuer'" in message
    assert "line 3, at tokens.access_ttl: not a duration" in message
    assert "line 6, at providers[0].tpye: unknown key 'tpye'" in message


def test_missing_required_key(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers:\n  - type: ldap\n")
    located(message, 2, "providers[0].name")
    assert "missing required key 'name'" in message


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("15m", 900.0), ("'90'", 90.0), ("90", 90.0), ("1h30m", 5400.0), ("1d 2h", 93600.0), ("2.5s", 2.5), ("1.5", 1.5)],
)
def test_durations(tmp_path: Path, value: str, seconds: float) -> None:
    config = load(tmp_path, f"tokens:\n  access_ttl: {value}\n  leeway: 500ms\n")
    assert config.tokens.access_ttl == seconds
    assert config.tokens.leeway == 0.5


@pytest.mark.parametrize("value", ["15x", "-5", "abc", "true", "''", "1h30", "11000d", ".nan", "[1]", "0.5"])
def test_bad_durations(tmp_path: Path, value: str) -> None:
    message = fails(tmp_path, f"tokens:\n  issuer: x\n  access_ttl: {value}\n")
    located(message, 3, "tokens.access_ttl")


def test_duration_from_environment(tmp_path: Path) -> None:
    config = load(tmp_path, "sessions:\n  idle_timeout: ${IDLE:-30m}\n  max_lifetime: ${MAX}\n", {"MAX": "2h"})
    assert config.sessions.idle_timeout == 1800.0 and config.sessions.max_lifetime == 7200.0


# --------------------------------------------------------------------------- ${VAR} interpolation


@pytest.mark.parametrize(
    ("template", "environ", "expected"),
    [
        ("${HOST}", {"HOST": "sso.example.org"}, "sso.example.org"),
        ("https://${HOST}/realms/${REALM}", {"HOST": "h", "REALM": "r"}, "https://h/realms/r"),
        ("${HOST:-fallback}", {}, "fallback"),
        ("${HOST:-fallback}", {"HOST": ""}, "fallback"),
        ("${HOST:-}", {}, ""),
        ("${HOST}", {"HOST": ""}, ""),
        ("${HOST:-a:b/c d}", {}, "a:b/c d"),
        ("pa$$word", {}, "pa$word"),
        ("$${HOST}", {"HOST": "x"}, "${HOST}"),
        ("cost: 5$", {}, "cost: 5$"),
        ("$$HOST", {"HOST": "x"}, "$HOST"),
        ("price: $5, $ 6, $-7, 8$", {}, "price: $5, $ 6, $-7, 8$"),
        ("${_A1}", {"_A1": "ok"}, "ok"),
        ("${HOST}", {"HOST": "[1, 2]"}, "[1, 2]"),
        ("${HOST}", {"HOST": "{a: 1}"}, "{a: 1}"),
        ("${HOST}", {"HOST": "*anchor"}, "*anchor"),
        ("${HOST}", {"HOST": "!!python/name:os.system"}, "!!python/name:os.system"),
        ("${HOST}", {"HOST": "${OTHER}"}, "${OTHER}"),
        ("é${HOST}é", {"HOST": "ü"}, "éüé"),
    ],
)
def test_interpolation(tmp_path: Path, template: str, environ: dict[str, str], expected: str) -> None:
    quoted = template.replace("'", "''")
    config = load(tmp_path, f"providers:\n  - name: p\n    config: {{v: '{quoted}'}}\n", environ)
    assert config.providers[0].config["v"] == expected


def test_interpolation_in_lists_and_nested_config(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "providers:\n  - name: l\n    config:\n"
        "      uri: ['ldap://${A}', 'ldap://${B:-b}']\n"
        "      deep: {x: [{y: '${A}'}]}\n",
        {"A": "a"},
    )
    assert config.providers[0].config == {"uri": ["ldap://a", "ldap://b"], "deep": {"x": [{"y": "a"}]}}


def test_interpolated_value_is_not_reparsed(tmp_path: Path) -> None:
    config = load(tmp_path, "providers:\n  - name: p\n    config: {n: '${N}', b: '${B}'}\n", {"N": "42", "B": "true"})
    assert config.providers[0].config == {"n": "42", "b": "true"}


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    config = load(tmp_path, "providers:\n  - name: p\n    config: {'${A}': v}\n", {"A": "x"})
    assert config.providers[0].config == {"${A}": "v"}


def test_unresolved_variable(tmp_path: Path) -> None:
    message = fails(
        tmp_path,
        f"tokens:\n  issuer: x\n  secret: ${{AUTHCORE_SECRET}}\nproviders: [{{name: a, config: {{p: {SECRET}}}}}]\n",
    )
    located(message, 3, "tokens.secret")
    assert "'AUTHCORE_SECRET'" in message and "not set" in message
    assert SECRET not in message


def test_unresolved_variable_in_list(tmp_path: Path) -> None:
    message = fails(
        tmp_path, "providers:\n  - name: a\n    config:\n      uri:\n        - ldap://a\n        - ${LDAP_B}\n"
    )
    located(message, 6, "providers[0].config.uri[1]")
    assert "'LDAP_B'" in message


@pytest.mark.parametrize("template", ["${", "${}", "${1A}", "${A-b}", "${A:?err}", "${A", "${A B}", "x${é}", "${A:-b"])
def test_malformed_interpolation(tmp_path: Path, template: str) -> None:
    message = fails(tmp_path, f"tokens:\n  secret: '{SECRET}{template}'\n", {"A": "a"})
    located(message, 2, "tokens.secret")
    assert "malformed ${...}" in message
    assert SECRET not in message


def test_environ_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHCORE_TEST_ISSUER", "from-env")
    config = load_config(write(tmp_path, "tokens: {issuer: '${AUTHCORE_TEST_ISSUER}'}\n"))
    assert config.tokens.issuer == "from-env"


def test_interpolation_can_be_switched_off_for_dicts() -> None:
    config = parse_config({"tokens": {"secret": "pa$word${X}"}}, interpolate=False)
    assert config.tokens.secret is not None and config.tokens.secret.get_secret_value() == "pa$word${X}"


# --------------------------------------------------------------------------- py-ispyb auth.yml


@pytest.mark.parametrize("name", ["pyispyb_001_dummy.yml", "pyispyb_000_dummy.yml"])
def test_seed_dummy_example(name: str) -> None:
    config = load_config(DATA / name, environ={})
    assert len(config.providers) == 1
    entry = config.providers[0]
    assert (entry.name, entry.type, entry.class_, entry.enabled, entry.config) == ("dummy", "dummy", None, True, {})


@pytest.mark.parametrize("name", ["pyispyb_001_dummy_disabled.yml", "pyispyb_000_dummy_disabled.yml"])
def test_seed_disabled_example(name: str) -> None:
    config = load_config(DATA / name, environ={})
    assert [(p.name, p.type, p.enabled) for p in config.providers] == [("dummy", "dummy", False)]


def test_seed_ldap_example() -> None:
    config = load_config(DATA / "pyispyb_001_ldap.yml", environ={})
    entry = config.providers[0]
    assert (entry.name, entry.type, entry.enabled) == ("ldap", "ldap", True)
    assert entry.config == {
        "LDAP_URI": "ldap://your_ldap",
        "LDAP_BASE_INTERNAL": "ou=People,dc=test,dc=fr",
        "LDAP_BASE_GROUPS": "ou=Pxwebgroups,dc=test,dc=fr",
    }
    # Positions of provider config keys point at the original lines.
    assert config.source.line(("providers", 0, "config", "LDAP_BASE_GROUPS")) == 9
    assert config.source.where(("providers", 0, "config", "LDAP_URI")).endswith(
        "pyispyb_001_ldap.yml, line 7, at AUTH[0].ldap.CONFIG.LDAP_URI"
    )
    # The provider's own model accepts the upper-case keys as written.
    assert LdapLikeConfig.model_validate(entry.config).uri == "ldap://your_ldap"


def test_seed_keycloak_example() -> None:
    config = load_config(DATA / "pyispyb_001_keycloak.yml", environ={})
    entry = config.providers[0]
    assert (entry.name, entry.type, entry.enabled) == ("keycloak", "keycloak", True)
    assert entry.config == {
        "KEYCLOAK_SERVER_URL": "your_server",
        "KEYCLOAK_CLIENT_ID": "your_client",
        "KEYCLOAK_REALM_NAME": "your_realm",
        "KEYCLOAK_CLIENT_SECRET_KEY": "your_secret",
    }
    assert config.source.where(("providers", 0, "config", "KEYCLOAK_REALM_NAME")).endswith(
        "line 8, at AUTH.CONFIG.KEYCLOAK_REALM_NAME"
    )
    assert config.source.where(("providers", 0, "type")).endswith("line 4, at AUTH.AUTH_CLASS")


@pytest.mark.parametrize(
    ("name", "line"), [("pyispyb_000_keycloak_as_scraped.yml", 3), ("pyispyb_000_ldap_as_scraped.yml", 5)]
)
def test_seed_examples_that_lost_lines_in_the_scrape(name: str, line: int) -> None:
    # Seed 000 printed these without their ``CONFIG:`` line: not YAML; a clear error, not a crash.
    with pytest.raises(ConfigError) as info:
        load_config(DATA / name, environ={})
    assert f"{name}, line {line}: YAML syntax error" in str(info.value)


def test_mixed_pyispyb_file() -> None:
    config = load_config(DATA / "pyispyb_mixed.yml", environ={})
    assert config.tokens.access_ttl == 5400.0
    assert config.permissions.groups == {"Admin": ["all_proposals"]}
    assert [(p.name, p.type, p.class_, p.enabled) for p in config.providers] == [
        ("ldap-internal", "ldap", None, True),
        ("ldap-external", "ldap", None, True),
        ("site", None, "site_auth.plugins:SiteAuthentication", False),
    ]
    assert config.source.where(("providers", 2, "class")).endswith("line 22, at AUTH[2].site.AUTH_CLASS")
    assert config.source.where(("providers", 1, "enabled")).endswith("line 14, at AUTH[1].ldap-external")


def test_pyispyb_class_table() -> None:
    assert dict(PYISPYB_CLASSES) == {
        "DummyAuthentication": "dummy",
        "LdapAuthentication": "ldap",
        "KeycloakAuthentication": "keycloak",
        "KeycloakDBGroupsAuthentication": "keycloak",
    }
    config = parse_config(
        {"AUTH": [{name.lower(): {"AUTH_CLASS": name, "AUTH_MODULE": "pyispyb"}} for name in PYISPYB_CLASSES]}
    )
    assert [p.type for p in config.providers] == ["dummy", "ldap", "keycloak", "keycloak"]


def test_pyispyb_provider_config_errors_point_at_original_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "AUTH:\n"
        "  - ldap:\n"
        "      AUTH_CLASS: LdapAuthentication\n"
        "      CONFIG:\n"
        "        LDAP_URI: ldap://x\n"
        "        LDAP_BASE_INTERNL: ou=People\n"
        f"        LDAP_BIND_PASSWORD: {SECRET}\n",
    )
    config = load_config(path, environ={})
    with pytest.raises(ValidationError) as caught:
        LdapLikeConfig.model_validate(config.providers[0].config)
    message = str(config.source.validation_error(caught.value, ("providers", 0, "config")))
    assert message.startswith("2 problems in ")
    assert "auth.yml, line 6, at AUTH[0].ldap.CONFIG.LDAP_BASE_INTERNL: unknown key 'LDAP_BASE_INTERNL'" in message
    assert "did you mean 'LDAP_BASE_INTERNAL'?" in message
    assert "auth.yml, line 7, at AUTH[0].ldap.CONFIG.LDAP_BIND_PASSWORD" in message
    assert SECRET not in message


def test_pyispyb_entry_field_errors_point_at_original_lines(tmp_path: Path) -> None:
    message = fails(tmp_path, "AUTH:\n  - dummy:\n      ENABLED: maybe\n      CONFIG: [1]\n")
    assert "line 3, at AUTH[0].dummy.ENABLED" in message
    assert "line 4, at AUTH[0].dummy.CONFIG" in message


def test_pyispyb_bad_entry_name(tmp_path: Path) -> None:
    message = fails(tmp_path, "AUTH:\n  - dummy: {}\n  - 'ldap é':\n      AUTH_CLASS: LdapAuthentication\n")
    located(message, 3, "AUTH[1]['ldap é']")


@pytest.mark.parametrize("module", ["", "pyispyb.app.extensions.auth.Mine", "pyispyb"])
def test_pyispyb_unknown_class(tmp_path: Path, module: str) -> None:
    message = fails(
        tmp_path, f"AUTH:\n  - mine:\n      AUTH_MODULE: '{module}'\n      AUTH_CLASS: MineAuthentication\n"
    )
    located(message, 4, "AUTH[0].mine.AUTH_CLASS")
    assert "unknown py-ispyb AUTH_CLASS 'MineAuthentication'" in message
    for known in PYISPYB_CLASSES:
        assert known in message


def test_pyispyb_own_class(tmp_path: Path) -> None:
    config = load(tmp_path, "AUTH:\n  - mine:\n      AUTH_MODULE: site.auth\n      AUTH_CLASS: MineAuthentication\n")
    entry = config.providers[0]
    assert (entry.name, entry.type, entry.class_) == ("mine", None, "site.auth:MineAuthentication")


def test_pyispyb_single_mapping_with_own_class(tmp_path: Path) -> None:
    config = load(tmp_path, "AUTH:\n  AUTH_MODULE: site.auth\n  AUTH_CLASS: SiteAuth\n  CONFIG: {A: 1}\n")
    entry = config.providers[0]
    assert (entry.name, entry.class_, entry.config) == ("SiteAuth", "site.auth:SiteAuth", {"A": 1})


@pytest.mark.parametrize(
    ("text", "line", "path", "needle"),
    [
        ("AUTH:\n  - ldap:\n      ENABLE: true\n", 3, "AUTH[0].ldap.ENABLE", "did you mean 'ENABLED'?"),
        ("AUTH:\n  - ldap:\n      config: {}\n", 3, "AUTH[0].ldap.config", "did you mean 'CONFIG'?"),
        ("AUTH:\n  ENABLED: true\n  AUTH_CLAS: X\n", 3, "AUTH.AUTH_CLAS", "did you mean 'AUTH_CLASS'?"),
        ("AUTH:\n  - dummy\n", 2, "AUTH[0]", "an AUTH entry is a mapping"),
        ("AUTH:\n  - {}\n", 2, "AUTH[0]", "an AUTH entry is a mapping"),
        ("AUTH:\n  - name: site\n    type: ldap\n", 2, "AUTH[0].name", "not a string"),
        ("AUTH:\n  - dummy: true\n", 2, "AUTH[0].dummy", "not a boolean"),
        ("AUTH: dummy\n", 1, "AUTH", "AUTH must be a list"),
        ("AUTH:\n  ENABLED: true\n", 1, "AUTH", "AUTH needs AUTH_CLASS"),
        ("AUTH:\n  - x:\n      AUTH_MODULE: site.auth\n", 3, "AUTH[0].x.AUTH_MODULE", "without AUTH_CLASS"),
        ("AUTH:\n  - x:\n      AUTH_CLASS: [a]\n", 3, "AUTH[0].x.AUTH_CLASS", "must be a string"),
        ("AUTH:\n  - x:\n      AUTH_MODULE: 'site auth'\n      AUTH_CLASS: A\n", 3, "AUTH[0].x.AUTH_MODULE", "dotted"),
        ("AUTH:\n  - x:\n      AUTH_MODULE: site\n      AUTH_CLASS: 'A:B'\n", 4, "AUTH[0].x.AUTH_CLASS", "class name"),
        ("providers: []\nAUTH: []\n", 2, "AUTH", "use one of them"),
    ],
)
def test_pyispyb_errors(tmp_path: Path, text: str, line: int, path: str, needle: str) -> None:
    message = fails(tmp_path, text)
    located(message, line, path)
    assert needle in message


def test_pyispyb_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "AUTH:\n  - dummy:\n  - ldap:\n      ENABLED:\n      CONFIG:\n")
    assert [(p.name, p.type, p.enabled, p.config) for p in config.providers] == [
        ("dummy", "dummy", True, {}),
        ("ldap", "ldap", True, {}),
    ]


def test_pyispyb_several_names_in_one_item(tmp_path: Path) -> None:
    # py-ispyb iterates over every key of each list item; so do we.
    config = load(tmp_path, "AUTH:\n  - dummy: {}\n    ldap: {AUTH_CLASS: LdapAuthentication}\n")
    assert [(p.name, p.type) for p in config.providers] == [("dummy", "dummy"), ("ldap", "ldap")]
    assert config.source.line(("providers", 1, "type")) == 3


def test_pyispyb_empty_auth(tmp_path: Path) -> None:
    assert load(tmp_path, "AUTH: []\n").providers == []
    assert load(tmp_path, "AUTH:\n").providers == []


# --------------------------------------------------------------------------- config given as a dict


def test_dict_in_authcore_shape() -> None:
    config = parse_config({"providers": [{"name": "dummy"}], "tokens": {"access_ttl": "15m"}}, environ={})
    assert config.providers[0].type == "dummy" and config.tokens.access_ttl == 900.0
    assert config.source.name == "<dict>"


def test_dict_in_pyispyb_shape() -> None:
    data = {"AUTH": [{"ldap": {"AUTH_CLASS": "LdapAuthentication", "CONFIG": {"LDAP_URI": "${URI}"}}}]}
    config = parse_config(data, environ={"URI": "ldap://x"})
    assert (config.providers[0].type, config.providers[0].config) == ("ldap", {"LDAP_URI": "ldap://x"})
    assert data["AUTH"][0]["ldap"]["CONFIG"] == {"LDAP_URI": "${URI}"}  # the caller's dict is not modified
    bare = parse_config([{"dummy": {"ENABLED": False}}])
    assert (bare.providers[0].name, bare.providers[0].enabled) == ("dummy", False)


def test_dict_errors_name_the_dict() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"providers": [{"name": "x", "tpye": "ldap"}]})
    assert str(info.value) == "<dict>, at providers[0].tpye: unknown key 'tpye'; did you mean 'type'?"
    with pytest.raises(ConfigError) as info:
        parse_config({"AUTH": [{"x": {"ENABLED": True, "OOPS": 1}}]})
    assert str(info.value).startswith("<dict>, at AUTH[0].x.OOPS: unknown key 'OOPS'")


def test_dict_with_non_string_keys_or_cycles() -> None:
    with pytest.raises(ConfigError, match=r"<dict>, at providers\[0\]\.config: keys must be strings"):
        parse_config({"providers": [{"name": "x", "config": {1: "a"}}]})
    looped: dict[str, Any] = {"name": "x"}
    looped["config"] = {"self": looped}
    with pytest.raises(ConfigError, match="recursive"):
        parse_config({"providers": [looped]})


def test_dict_secretstr_values_are_kept_and_masked() -> None:
    config = parse_config({"tokens": {"secret": SecretStr(SECRET)}})
    assert config.tokens.secret is not None and config.tokens.secret.get_secret_value() == SECRET


def test_parse_config_passes_a_config_through() -> None:
    config = parse_config({"providers": [{"name": "dummy"}]})
    assert parse_config(config) is config


@pytest.mark.parametrize("data", [None, "providers", 42, True])
def test_dict_that_is_not_a_mapping(data: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith("<dict")


# --------------------------------------------------------------------------- YAML safety


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/tuple [1, 2]",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!omap [{a: 1}]",
        "!custom thing",
        "!<tag:example.org,2024:x> y",
    ],
)
def test_unsafe_tags_are_refused(tmp_path: Path, value: str) -> None:
    marker = tmp_path / "executed"
    message = fails(
        tmp_path,
        "tokens:\n  issuer: x\nproviders:\n  - name: p\n    config:\n"
        f"      v: {value.replace('{marker}', str(marker))}\n",
    )
    located(message, 6, "providers[0].config.v")
    assert "is not allowed" in message
    assert not marker.exists()


def test_unsafe_tag_as_key(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  ? !!python/name:os.system\n  : x\n")
    located(message, 2)
    assert "a key must be a plain string" in message


@pytest.mark.parametrize(
    ("text", "line", "path", "key"),
    [
        ("tokens: {}\nproviders: []\ntokens: {}\n", 3, "tokens", "tokens"),
        ("tokens:\n  issuer: a\n  audience: b\n  issuer: c\n", 4, "tokens.issuer", "issuer"),
        ("providers:\n  - name: a\n    type: x\n    name: b\n", 4, "providers[0].name", "name"),
        ("providers:\n  - name: a\n    config:\n      k: 1\n      k: 2\n", 5, "providers[0].config.k", "k"),
        (
            "AUTH:\n  - ldap:\n      CONFIG:\n        LDAP_URI: a\n        LDAP_URI: b\n",
            5,
            "AUTH[0].ldap.CONFIG.LDAP_URI",
            "LDAP_URI",
        ),
        ("AUTH:\n  - ldap: {}\n    ldap: {}\n", 3, "AUTH[0].ldap", "ldap"),
        ("tokens: {issuer: a, issuer: b}\n", 1, "tokens.issuer", "issuer"),
        ("permissions:\n  groups:\n    1: [a]\n    '1': [b]\n", 4, "permissions.groups.1", "1"),
    ],
)
def test_duplicate_keys(tmp_path: Path, text: str, line: int, path: str, key: str) -> None:
    message = fails(tmp_path, text)
    located(message, line, path)
    assert f"duplicate key {key!r}" in message


def test_merge_keys(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "providers:\n"
        "  - &ldap\n"
        "    name: a\n"
        "    type: ldap\n"
        "    config: {uri: ldap://shared, base: dc=x}\n"
        "  - <<: *ldap\n"
        "    name: b\n"
        "  - <<: [{config: {uri: ldap://first}}, *ldap]\n"
        "    name: c\n",
    )
    assert [(p.name, p.type, p.config) for p in config.providers] == [
        ("a", "ldap", {"uri": "ldap://shared", "base": "dc=x"}),
        ("b", "ldap", {"uri": "ldap://shared", "base": "dc=x"}),
        ("c", "ldap", {"uri": "ldap://first"}),
    ]
    # A merged key's position is where it was written.
    assert config.source.line(("providers", 1, "config", "uri")) == 5
    assert config.source.line(("providers", 1, "name")) == 7


def test_merged_unknown_key_points_at_its_definition(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers:\n  - &base\n    name: a\n    tpye: ldap\n  - <<: *base\n    name: b\n")
    assert "line 4, at providers[0].tpye" in message
    assert "line 4, at providers[1].tpye" in message


def test_bad_merge(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  <<: 5\n")
    located(message, 2, "tokens")
    assert "'<<' merges a mapping" in message


def test_recursive_alias(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers:\n  - &p\n    name: a\n    config: {self: *p}\n")
    located(message, 2)
    assert "recursive alias" in message
    message = fails(tmp_path, "providers: &l [*l]\n")
    assert "recursive alias" in message
    message = fails(tmp_path, "tokens: &t\n  <<: *t\n")
    assert "recursive alias" in message


def test_undefined_alias(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  issuer: *nothing\n")
    located(message, 2)
    assert "undefined alias" in message


def test_alias_bomb_is_stopped(tmp_path: Path) -> None:
    # 10 ** 6 values once expanded (a "billion laughs"); the file itself is tiny.
    lines = ["providers:", "  - name: bomb", "    config:", "      a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"      a{level}: &a{level} [{refs}]")
    started = time.perf_counter()
    message = fails(tmp_path, "\n".join(lines) + "\n")
    assert time.perf_counter() - started < 30
    located(message, None)
    assert f"more than {MAX_NODES}" in message and "line " in message


def test_merge_bomb_is_stopped(tmp_path: Path) -> None:
    # Each level merges the previous one twice: exponential if merges were flattened naively.
    lines = ["providers:", "  - name: m", "    config:", "      m0: &m0 {k: v}"]
    for level in range(1, 40):
        lines.append(
            f"      m{level}: &m{level} "
            f"{{<<: [*m{level - 1}, *m{level - 1}], x: {{a: *m{level - 1}, b: *m{level - 1}}}}}"
        )
    message = fails(tmp_path, "\n".join(lines) + "\n")
    assert f"more than {MAX_NODES}" in message


def test_many_plain_nodes(tmp_path: Path) -> None:
    items = ", ".join(["a"] * (MAX_NODES + 10))
    message = fails(tmp_path, f"permissions:\n  authenticated: [{items}]\n")
    located(message, 2)
    assert f"more than {MAX_NODES}" in message


def test_deep_nesting(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers:\n  - name: p\n    config: {v: " + "[" * 5000 + "]" * 5000 + "}\n")
    located(message, 3)
    assert "nested deeper" in message


def test_size_limit(tmp_path: Path) -> None:
    filler = "# " + "x" * 1000 + "\n"
    text = "providers: []\n" + filler * (2 * MAX_CONFIG_BYTES // len(filler))
    assert len(text.encode()) > 2 * MAX_CONFIG_BYTES - 2000
    message = fails(tmp_path, text)
    assert "auth.yml" in message and "larger than 1024 KiB" in message
    with pytest.raises(ConfigError, match="larger than"):
        load_yaml(text, name="big.yml")
    with pytest.raises(ConfigError, match="larger than"):
        load_yaml("é" * (MAX_CONFIG_BYTES // 2 + 1), name="big.yml")  # bytes, not characters, count


def test_just_under_the_size_limit_loads(tmp_path: Path) -> None:
    filler = "# " + "x" * 1000 + "\n"
    text = "providers: []\n" + filler * ((MAX_CONFIG_BYTES - 100) // len(filler))
    assert load(tmp_path, text).providers == []


def test_several_documents(tmp_path: Path) -> None:
    message = fails(tmp_path, "providers: []\n---\ntokens: {}\n")
    located(message, 2)
    assert "single document" in message


def test_syntax_error_does_not_quote_the_line(tmp_path: Path) -> None:
    message = fails(tmp_path, f'tokens:\n  issuer: x\n  secret: "{SECRET}\n')
    assert message.startswith(f"{tmp_path / 'auth.yml'}, line ")
    assert "YAML syntax error" in message
    assert SECRET not in message
    message = fails(tmp_path, f"tokens:\n  secret: {SECRET}\n   issuer: : x\n")
    located(message, 3)
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("# only a comment\n", "empty"),
        ("---\n", "empty"),
        ("~\n", "empty"),
        ("null\n", "empty"),
    ],
)
def test_empty_documents(tmp_path: Path, text: str, kind: str) -> None:
    message = fails(tmp_path, text)
    assert message == f"{tmp_path / 'auth.yml'} is empty: there is nothing to configure (an empty configuration)"


@pytest.mark.parametrize(("text", "kind"), [("providers\n", "a string"), ("42\n", "a number"), ("true\n", "a boolean")])
def test_document_that_is_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    message = fails(tmp_path, text)
    located(message, 1)
    assert "must be a mapping of sections" in message and kind in message


def test_not_utf8(tmp_path: Path) -> None:
    message = fails(tmp_path, b"tokens:\n  issuer: caf\xe9\n")
    located(message, 2)
    assert "not valid UTF-8" in message
    message = fails(tmp_path, "tokens: {issuer: x}\n".encode("utf-16"))
    assert "not valid UTF-8" in message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load(tmp_path, b"\xef\xbb\xbftokens: {issuer: x}\n").tokens.issuer == "x"


def test_nul_byte_in_file(tmp_path: Path) -> None:
    message = fails(tmp_path, b"tokens:\n  issuer: x\n  audience: a\x00b\n")
    located(message, 3)
    assert "#x0000" in message


def test_nul_from_escape(tmp_path: Path) -> None:
    message = fails(tmp_path, 'tokens:\n  issuer: "a\\0b"\n')
    located(message, 2, "tokens.issuer")
    assert "NUL" in message
    message = fails(tmp_path, 'tokens:\n  "a\\0b": x\n')
    located(message, 2)


def test_control_characters_in_file(tmp_path: Path) -> None:
    message = fails(tmp_path, b"tokens:\n  issuer: a\x1bb\n")
    located(message, 2)


def test_unicode_keys_and_values(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "tokens:\n  issuer: 'https://auth.exämple.org/ünï'\n"
        "permissions:\n  groups:\n    Администраторы: [all_proposals]\n    管理: [own_sessions]\n"
        "providers:\n  - name: ldap\n    config: {base_dn: 'ou=Persönen,dc=例,dc=org', 'clé': 'välue 🔑'}\n",
    )
    assert config.tokens.issuer == "https://auth.exämple.org/ünï"
    assert config.permissions.groups == {"Администраторы": ["all_proposals"], "管理": ["own_sessions"]}
    assert config.providers[0].config == {"base_dn": "ou=Persönen,dc=例,dc=org", "clé": "välue 🔑"}
    message = fails(tmp_path, "tokens:\n  émetteur: x\n")
    located(message, 2, "tokens['émetteur']")
    assert "unknown key 'émetteur'" in message


def test_keys_are_text_and_dates_are_strings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "permissions:\n  groups:\n    yes: [a]\n    NO: [b]\n    1234: [c]\n    null: [d]\n"
        "providers:\n  - name: p\n    config: {since: 2024-01-01, eq: =, on: yes, n: 0x10}\n",
    )
    assert config.permissions.groups == {"yes": ["a"], "NO": ["b"], "1234": ["c"], "null": ["d"]}
    assert config.providers[0].config == {"since": "2024-01-01", "eq": "=", "on": True, "n": 16}


def test_complex_key(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  ? [a, b]\n  : x\n")
    located(message, 2, "tokens")
    assert "a key must be a plain string" in message


def test_huge_integer(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  cache_size: " + "9" * 5000 + "\n")
    located(message, 2, "tokens.cache_size")


# --------------------------------------------------------------------------- files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "auth.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: configuration file not found"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value) and "directory" in str(info.value)


def test_path_below_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "{}\n") / "auth.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_device_file_is_cut_at_the_limit() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        load_config("/dev/zero")


def test_fixture_files_are_copied_verbatim(tmp_path: Path) -> None:
    # Loading does not depend on the file's location or name.
    copy = tmp_path / "auth.yml"
    shutil.copy(DATA / "pyispyb_001_ldap.yml", copy)
    assert load_config(copy, environ={}).providers[0].type == "ldap"


# --------------------------------------------------------------------------- secrets in messages


SECRET_CASES = [
    f"tokens:\n  secret: [{SECRET}]\n",
    f"tokens:\n  secret: {{value: {SECRET}}}\n",
    f"tokens:\n  secret: '{SECRET}${{'\n",
    f"tokens:\n  secret: '{SECRET}${{MISSING}}'\n",
    f"tokens:\n  secret: {SECRET}\n  secret: {SECRET}\n",
    f"tokens:\n  secret: {SECRET}\n  algorithm: ES256\n",
    f"tokens:\n  secret: {SECRET}\n  access_ttl: 1y\n",
    f"tokens:\n  secret: {SECRET}\n  issuer: ''\n",
    f"tokens:\n  secret: !!python/name:os.system {SECRET}\n",
    f'tokens:\n  secret: "{SECRET}\\q"\n',
    f'tokens:\n  secret: "{SECRET}\n',
    f"tokens:\n  secret: {SECRET}\nproviders:\n  - name: '{SECRET}!'\n",
    "AUTH:\n  ENABLED: true\n  AUTH_CLASS: KeycloakAuthentication\n  CONFIG:\n"
    f"    KEYCLOAK_CLIENT_SECRET_KEY: {SECRET}\n  EXTRA: 1\n",
    f"providers:\n  - name: sso\n    config: {{client_secret: {SECRET}}}\n    confg: {{}}\n",
    f"providers:\n  - name: sso\n    config: {{client_secret: {SECRET}}}\n  - name: sso\n",
]


@pytest.mark.parametrize("text", SECRET_CASES)
def test_secret_never_in_messages(tmp_path: Path, text: str) -> None:
    message = fails(tmp_path, text)
    assert SECRET not in message
    assert "auth.yml" in message


def test_secret_masked_even_under_a_name_that_echoes_it(tmp_path: Path) -> None:
    # The provider name is not secret-ish, but the same string is known to be a secret: masked.
    message = fails(tmp_path, f"tokens:\n  secret: {SECRET}\nproviders:\n  - name: 'x {SECRET}'\n")
    assert SECRET not in message
    assert "providers[0].name" in message


def test_validator_that_echoes_a_secret_is_withheld() -> None:
    config = parse_config({"providers": [{"name": "l", "config": {"LDAP_URI": "u", "LDAP_BIND_PASSWORD": SECRET}}]})
    with pytest.raises(ValidationError) as caught:
        LdapLikeConfig.model_validate(config.providers[0].config)
    assert SECRET in str(caught.value.errors()[0]["msg"])  # the careless validator did echo it
    message = str(config.source.validation_error(caught.value, ("providers", 0, "config")))
    assert SECRET not in message
    assert message.startswith("<dict>, at providers[0].config.LDAP_BIND_PASSWORD: invalid value")


# --------------------------------------------------------------------------- ConfigSource


def test_config_source_api() -> None:
    source = ConfigSource("auth.yml", {(): 1, ("providers",): 3, ("providers", 0): 4, ("providers", 0, "name"): 4})
    assert source.name == "auth.yml"
    assert source.line(("providers", 0, "config", "uri")) == 4
    assert source.line(("tokens", "issuer")) == 1
    assert source.where(("providers", 0, "config", "uri")) == "auth.yml, line 4, at providers[0].config.uri"
    assert source.where(()) == "auth.yml, line 1"
    assert source.where(("a b", 2, "c.d")) == "auth.yml, line 1, at ['a b'][2]['c.d']"
    error = source.error(("providers", 0), "something is wrong")
    assert isinstance(error, ConfigError)
    assert str(error) == "auth.yml, line 4, at providers[0]: something is wrong"
    empty = ConfigSource()
    assert empty.name == "<dict>" and empty.line(("x",)) is None
    assert empty.where(("x",)) == "<dict>, at x" and empty.where(()) == "<dict>"
    assert dict(source.positions)[("providers",)] == 3


def test_validation_error_with_prefix_and_model() -> None:
    source = ConfigSource("auth.yml", {("providers", 1, "config"): 7, ("providers", 1, "config", "LDAP_URL"): 8})
    with pytest.raises(ValidationError) as caught:
        LdapLikeConfig.model_validate({"LDAP_URL": "x"})
    message = str(source.validation_error(caught.value, ("providers", 1, "config")))
    assert (
        "auth.yml, line 8, at providers[1].config.LDAP_URL: unknown key 'LDAP_URL'; did you mean 'LDAP_URI'?" in message
    )
    assert "auth.yml, line 7, at providers[1].config.uri: missing required key 'uri'" in message
    assert message.startswith("2 problems in auth.yml:\n")


def test_default_source_and_read_only_property() -> None:
    config = AuthcoreConfig()
    assert isinstance(config.source, ConfigSource) and config.source.name == "<dict>"
    with pytest.raises((AttributeError, ValidationError)):
        config.source = ConfigSource("x")  # type: ignore[misc]
    loaded = parse_config({})
    assert loaded.model_copy().source is loaded.source


def test_load_yaml_returns_data_and_positions() -> None:
    data, source = load_yaml("a:\n  b: [1, 2]\n  c: x\n", name="t.yml")
    assert data == {"a": {"b": [1, 2], "c": "x"}}
    assert source.name == "t.yml"
    assert source.line(("a", "c")) == 3 and source.line(("a", "b", 1)) == 2
    assert load_yaml("", name="e.yml")[0] is None
    assert load_yaml(b"x: 1\n")[1].name == "<string>"


def test_messages_are_one_line_per_problem(tmp_path: Path) -> None:
    message = fails(tmp_path, "tokens:\n  isuer: x\n")
    assert "\n" not in message
    assert re.fullmatch(r".*auth\.yml, line 2, at tokens\.isuer: unknown key 'isuer'; did you mean 'issuer'\?", message)


def test_variable_in_a_flow_mapping_must_be_quoted(tmp_path: Path) -> None:
    # ``{`` is a flow indicator: ``{secret: ${X}}`` is not YAML, ``{secret: "${X}"}`` is.
    message = fails(tmp_path, "tokens: {issuer: x,\n  secret: ${X}}\n", {"X": SECRET})
    located(message, 2)
    assert "YAML syntax error" in message
    config = load(tmp_path, 'tokens: {issuer: x,\n  secret: "${X}"}\n', {"X": SECRET})
    assert config.tokens.secret is not None and config.tokens.secret.get_secret_value() == SECRET


MXCUBE_SERVER_YAML = """\
server:
  SECRET_KEY: "ASECRETKEY"
  PERMANENT_SESSION_LIFETIME: 3600
mxcube:
  USER_DB_PATH: /tmp/mxcube-users.db
sso:
  USE_SSO: {use_sso}
  ISSUER: https://websso.site.example/realms/site/
  LOGOUT_URI: ""
  TOKEN_INFO_URI: ""
  CLIENT_SECRET: mxcube-test-only-secret
  CLIENT_ID: mxcube
  SCOPE: openid email profile
  CODE_CHALLANGE_METHOD: S256
"""


@pytest.mark.parametrize("use_sso", [True, False])
def test_mxcube_server_yaml_sso_section_becomes_an_oidc_provider(tmp_path: Path, use_sso: bool) -> None:
    """MXCuBE's server.yaml loads as written: sso: is the provider `sso` (type oidc), USE_SSO its switch,
    MXCuBE's own sections are left alone, and authcore sections may sit beside them."""
    text = MXCUBE_SERVER_YAML.format(use_sso="true" if use_sso else "false")
    text += "providers:\n  - {name: local, type: dummy}\n"
    config = load(tmp_path, text)
    expected = [("local", "dummy", True), ("sso", "oidc", use_sso)]
    assert [(p.name, p.type, p.enabled) for p in config.providers] == expected
    sso = config.providers[1]
    assert sso.config["ISSUER"] == "https://websso.site.example/realms/site/"
    assert sso.config["CODE_CHALLANGE_METHOD"] == "S256" and "USE_SSO" not in sso.config
    assert "mxcube-test-only-secret" not in repr(config)


@pytest.mark.parametrize(
    ("sso", "message", "where"),
    [
        ("sso: [1, 2]", "'sso' section is a mapping", "sso"),
        ("sso: {USE_SSO: 'yes'}", "USE_SSO must be true or false", "USE_SSO"),
    ],
)
def test_mxcube_sso_section_errors_name_its_keys(tmp_path: Path, sso: str, message: str, where: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load(tmp_path, sso + "\n")
    assert where in str(caught.value) and "line 1" in str(caught.value)
