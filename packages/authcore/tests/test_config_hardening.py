"""Configuration hardening (issue 9, section 4): look-alike placeholders, development warnings,
files that hold secrets, empty provider lists, and the location of every configuration error.

Real files on disk with real permission bits, real provider classes loaded by class path.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from authcore import AuthManager, ConfigError
from authcore.config import load_config, parse_config

SECRET = "Zq8-literal-secret-7Hk2mPw9xR4vN6bT"
LITERAL = "w9x-Provider-Password-3Jd8kLq2"

# A provider with the knobs the core checks generically: TLS-verification switches, a secret
# setting and a key file. Health is unhealthy so the CLI tests can use it too.
SITE_MODULE = """
from pydantic import BaseModel, SecretStr
from authcore import Health, Identity, Provider, ProviderConfig

class Smtp(BaseModel):
    host: str = "localhost"
    password: SecretStr | None = None

class SiteConfig(ProviderConfig):
    tls_verify_fields = ("verify_tls", "verify_ca")
    url: str = "https://idp.example.org"
    verify_tls: bool = True
    verify_ca: bool = True
    password: SecretStr | None = None
    client_key_file: str | None = None
    ca_file: str | None = None
    smtp: Smtp = Smtp()
    keys: list[SecretStr] = []

class SiteProvider(Provider):
    type = "site"
    Config = SiteConfig
    def authenticate(self, credentials):
        return Identity(login=credentials.login)
    def health(self):
        return Health(ok=False, detail="cannot reach https://idp.example.org: connection refused")

class FailingProvider(SiteProvider):
    def __init__(self, name, config):
        raise RuntimeError("boom")
"""


@pytest.fixture
def site(fake_dist) -> str:
    """The class path of the test provider above."""
    fake_dist("site-module", {}, {"site_auth": SITE_MODULE})
    return "site_auth:SiteProvider"


def write(tmp_path: Path, text: str, mode: int = 0o600, name: str = "auth.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def start(path: Path, environ: dict[str, str] | None = None) -> AuthManager:
    return AuthManager(load_config(path, environ=environ or {}))


def fails(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        start(path, environ).close()
    return caught.value.message


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("authcore")]


# --------------------------------------------------------------------------- look-alike placeholders


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("$AUTHCORE_SECRET", None),  # the example: would sign with the public text "$AUTHCORE_SECRET"
        ("prefix-$AUTHCORE_SECRET", None),
        ("$authcore_secret", None),  # a whole value that is a '$name' of any case
        ("$(cat /run/secrets/authcore)", None),
        ("%AUTHCORE_SECRET%", None),
        ("{{ authcore_secret }}", None),  # an Ansible/Helm template never rendered
    ],
)
def test_placeholder_lookalike_in_a_secret_is_refused(tmp_path: Path, value: str, shown: None) -> None:
    quoted = value.replace("'", "''")
    message = fails(write(tmp_path, f"tokens:\n  secret: '{quoted}'\nproviders:\n  - name: dummy\n"))
    assert message.startswith(f"{tmp_path / 'auth.yml'}, line 2, at tokens.secret: "), message
    assert "${VAR}" in message and "$$" in message  # says how to write it
    # Nothing of the value is quoted for a key that holds a secret.
    for part in re.findall(r"[A-Za-z_]{4,}", value):
        assert part not in message, (part, message)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("https://$KC_HOST/realms/x", "${KC_HOST}"),
        ("$ISSUER", "${ISSUER}"),
        ("%ISSUER%", "'%ISSUER%'"),
    ],
)
def test_placeholder_lookalike_elsewhere_names_the_fix(tmp_path: Path, value: str, named: str) -> None:
    message = fails(write(tmp_path, f"tokens:\n  issuer: '{value}'\nproviders:\n  - name: dummy\n"))
    assert message.startswith(f"{tmp_path / 'auth.yml'}, line 2, at tokens.issuer: "), message
    assert named in message


@pytest.mark.parametrize(
    "value",
    [
        "pa$word",  # a '$' inside a password, before a lower-case word
        "pbkdf2_sha256$600000$af3c0e1b2d4f5a6b7c8d9e0f1a2b3c4d$0123abcd",  # password hashes load as written
        "$2b$12$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
        "price: 5$, $1, $ 2, $-3",
    ],
)
def test_dollar_that_is_no_placeholder_stays(tmp_path: Path, value: str) -> None:
    config = load_config(write(tmp_path, f"tokens:\n  issuer: '{value}'\n"), environ={})
    assert config.tokens.issuer == value


def test_escaped_dollar_and_braces_are_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "tokens:\n  issuer: '$$AUTHCORE_ISSUER'\n  audience: '${AUD}'\n")
    config = load_config(path, environ={"AUD": "from-env"})
    assert (config.tokens.issuer, config.tokens.audience) == ("$AUTHCORE_ISSUER", "from-env")


@pytest.mark.parametrize("value", ["${AUTHCORE_SECRET}", "$AUTHCORE_SECRET", " $secret ", "%SECRET%", "{{ secret }}"])
def test_configuration_from_code_refuses_whole_placeholders(value: str) -> None:
    # Dicts from code are not interpolated: such a value would be used as the literal secret.
    with pytest.raises(ConfigError) as caught:
        AuthManager.from_config({"tokens": {"secret": value}, "providers": [{"name": "dummy"}]})
    message = caught.value.message
    assert message.startswith("<dict>, at tokens.secret: "), message
    assert value.strip() not in message


def test_configuration_from_code_keeps_other_dollars() -> None:
    config = parse_config({"tokens": {"secret": "pa$word${X}-and-more"}}, interpolate=False)
    assert config.tokens.secret is not None
    assert config.tokens.secret.get_secret_value() == "pa$word${X}-and-more"


# --------------------------------------------------------------------------- development warnings


@pytest.mark.parametrize("weak", ["changeme", "short-secret", "a" * 40, "your-256-bit-secret"])
def test_weak_secret_warns_once_in_development(tmp_path: Path, caplog: pytest.LogCaptureFixture, weak: str) -> None:
    path = write(tmp_path, f"tokens:\n  secret: '{weak}'\nproviders:\n  - name: dummy\n")
    caplog.set_level(logging.WARNING)
    with start(path) as manager:
        manager.login("dummy", login="u", password="read")
    about = [w for w in warnings(caplog) if "tokens.secret" in w]
    assert len(about) == 1, warnings(caplog)
    assert about[0].startswith(f"{path}, line 2, at tokens.secret: ")
    assert "production" in about[0]
    assert weak not in caplog.text


def test_strong_secret_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, f"tokens:\n  secret: '{SECRET}'\nproviders:\n  - name: dummy\n")
    caplog.set_level(logging.WARNING)
    start(path).close()
    assert not [w for w in warnings(caplog) if "tokens.secret" in w]


def test_tls_verification_off_warns_once_per_instance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, site: str
) -> None:
    path = write(
        tmp_path,
        f"providers:\n"  # 1
        f"  - name: a\n"  # 2
        f"    class: {site}\n"  # 3
        f"    config:\n"  # 4
        f"      verify_tls: false\n"  # 5
        f"  - name: b\n"  # 6
        f"    class: {site}\n"  # 7
        f"    config: {{verify_tls: false, verify_ca: false}}\n"  # 8
        f"  - name: c\n"  # 9
        f"    class: {site}\n",  # 10: verification on: no warning
    )
    caplog.set_level(logging.WARNING)
    start(path).close()
    tls = [w for w in warnings(caplog) if "TLS" in w]
    assert len(tls) == 3, tls
    assert tls[0].startswith(f"{path}, line 5, at providers[0].config.verify_tls: verify_tls is false")
    assert tls[1].startswith(f"{path}, line 8, at providers[1].config.verify_tls: verify_tls is false")
    assert tls[2].startswith(f"{path}, line 8, at providers[1].config.verify_ca: verify_ca is false")


# --------------------------------------------------------------------------- files that hold secrets


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_config_file_with_a_written_secret_open_to_others_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = write(tmp_path, f"tokens:\n  secret: '{SECRET}'\nproviders:\n  - name: dummy\n", mode)
    caplog.set_level(logging.WARNING)
    start(path).close()
    found = [w for w in warnings(caplog) if "too open" in w]
    assert found == [
        f"permissions {mode:04o} for {str(path)!r} are too open: it holds tokens.secret, which other users "
        "may read; chmod 600 it (or take the secrets from ${VAR})"
    ]
    assert SECRET not in caplog.text


def test_provider_secret_written_in_a_py_ispyb_file_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, site: str
) -> None:
    module, cls = site.split(":")
    path = write(
        tmp_path,
        f"AUTH:\n  - site:\n      ENABLED: true\n      AUTH_MODULE: {module}\n      AUTH_CLASS: {cls}\n"
        f"      CONFIG:\n        password: '{LITERAL}'\n",
        0o644,
    )
    caplog.set_level(logging.WARNING)
    start(path).close()
    found = [w for w in warnings(caplog) if "too open" in w]
    assert len(found) == 1 and "it holds AUTH[0].site.CONFIG.password" in found[0], found
    assert LITERAL not in caplog.text


def test_nested_and_core_section_secrets_written_in_the_file_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, site: str
) -> None:
    """Every written SecretStr counts, however deep: a provider's SMTP password, the SSO state key,
    py-ispyb's database URL (which carries its password)."""
    text = (
        f"providers:\n  - name: site\n    class: {site}\n    config:\n      smtp: {{password: '{LITERAL}'}}\n"
        f"web:\n  sso_state_secret: '{SECRET}'\n"
    )
    caplog.set_level(logging.WARNING)
    start(write(tmp_path, text, 0o644)).close()
    found = [w for w in warnings(caplog) if "too open" in w]
    assert len(found) == 1, found
    assert "providers[0].config.smtp.password" in found[0] and "web.sso_state_secret" in found[0]
    assert LITERAL not in caplog.text and SECRET not in caplog.text


def test_each_secret_of_a_list_written_in_the_file_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, site: str
) -> None:
    """A list of SecretStr (auth-local's ``second_factor.secret_keys``): an item written in the
    file counts, one taken from ``${VAR}`` does not."""
    text = f"providers:\n  - name: site\n    class: {site}\n    config:\n      keys: ['${{SITE_KEY}}', '{LITERAL}']\n"
    caplog.set_level(logging.WARNING)
    start(write(tmp_path, text, 0o644), {"SITE_KEY": SECRET}).close()
    found = [w for w in warnings(caplog) if "too open" in w]
    assert len(found) == 1 and "providers[0].config.keys[1]" in found[0] and "keys[0]" not in found[0], found
    assert LITERAL not in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize(
    "text",
    [
        "tokens:\n  secret: '${AUTHCORE_SECRET}'\nproviders:\n  - name: dummy\n",  # from the environment
        "tokens:\n  issuer: me\nproviders:\n  - name: dummy\n",  # no secret at all
    ],
)
def test_no_warning_without_a_written_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str) -> None:
    caplog.set_level(logging.WARNING)
    start(write(tmp_path, text, 0o644), {"AUTHCORE_SECRET": SECRET}).close()
    assert not [w for w in warnings(caplog) if "too open" in w]


def test_private_secret_file_is_quiet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    start(write(tmp_path, f"tokens:\n  secret: '{SECRET}'\nproviders:\n  - name: dummy\n", 0o600)).close()
    assert not [w for w in warnings(caplog) if "too open" in w]


def test_key_files_open_to_others_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture, site: str) -> None:
    key = tmp_path / "signing.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o644)
    client_key = tmp_path / "client.key"
    client_key.write_text("not read by the test provider")
    client_key.chmod(0o640)
    ca = tmp_path / "ca.pem"  # public: no warning
    ca.write_text("certificates")
    ca.chmod(0o644)
    path = write(
        tmp_path,
        f"tokens:\n  algorithm: EdDSA\n  private_key_file: {key}\n"
        f"providers:\n  - name: s\n    class: {site}\n    config:\n      client_key_file: {client_key}\n"
        f"      ca_file: {ca}\n",
        0o644,  # holds no secret itself
    )
    caplog.set_level(logging.WARNING)
    start(path).close()
    found = [w for w in warnings(caplog) if "too open" in w]
    assert len(found) == 2, found
    assert found[0].startswith(f"permissions 0644 for {str(key)!r} are too open: it is tokens.private_key_file")
    assert found[1].startswith(f"permissions 0640 for {str(client_key)!r} are too open")
    assert "providers[0].config.client_key_file" in found[1]
    assert f"{path}, line 8" in found[1]
    key.chmod(0o600)
    client_key.chmod(0o600)
    caplog.clear()
    start(path).close()
    assert not [w for w in warnings(caplog) if "too open" in w]


# --------------------------------------------------------------------------- no provider enabled


@pytest.mark.parametrize(
    ("text", "line", "at"),
    [
        ("tokens:\n  issuer: x\nproviders: []\n", 3, "providers"),
        ("tokens:\n  issuer: x\n", 1, "providers"),
        ("providers:\n  - name: dummy\n    enabled: false\n", 1, "providers"),
        # py-ispyb's documented example, the dummy plugin disabled: nothing could log in.
        (
            "AUTH:\n  - dummy:\n      ENABLED: false\n"
            "      AUTH_MODULE: pyispyb.app.extensions.auth.DummyAuthentication\n"
            "      AUTH_CLASS: DummyAuthentication\n"
            "  - ldap:\n      ENABLED: false\n      AUTH_CLASS: LdapAuthentication\n",
            1,
            "AUTH",
        ),
    ],
)
def test_no_enabled_provider_is_a_config_error(tmp_path: Path, text: str, line: int, at: str) -> None:
    path = write(tmp_path, text)
    message = fails(path)
    assert message.startswith(f"{path}, line {line}, at {at}: "), message
    assert "enable at least one" in message or "add at least one" in message


def test_no_provider_from_code() -> None:
    with pytest.raises(ConfigError, match=r"^<dict>, at providers: no provider is configured"):
        AuthManager.from_config({"providers": []})


# --------------------------------------------------------------------------- every refusal is located

STRONG = f"tokens:\n  secret: '{SECRET}'\n"


def _refusals(site: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """(configuration text, [(line, key path)] of each problem it must report)."""
    prod = "production: true\n"
    return [
        (prod + "providers:\n  - name: s\n    class: " + site + "\n", [(1, "tokens.secret")]),
        (prod + "tokens:\n  secret: 'short'\nproviders: []\n", [(3, "tokens.secret")]),
        (prod + "tokens:\n  secret: 'changeme'\nproviders: []\n", [(3, "tokens.secret")]),
        (prod + "tokens:\n  secret: '" + "ab" * 20 + "'\nproviders: []\n", [(3, "tokens.secret")]),
        (prod + STRONG + "providers:\n  - name: dummy\n", [(5, "providers[0].name")]),
        (
            prod + STRONG + f"providers:\n  - name: s\n    class: {site}\n  - name: dev\n    type: noauth\n",
            [(8, "providers[1].type")],
        ),
        (
            prod + STRONG + f"providers:\n  - name: s\n    class: {site}\n    config:\n      verify_tls: false\n",
            [(8, "providers[0].config.verify_tls")],
        ),
        (
            prod + STRONG + f"providers:\n  - name: s\n    class: {site}\n    config:\n"
            "      password: changeme\n      verify_ca: false\n",
            [(8, "providers[0].config.password"), (9, "providers[0].config.verify_ca")],
        ),
        (
            prod + STRONG + "AUTH:\n  - dummy:\n      ENABLED: true\n      AUTH_CLASS: DummyAuthentication\n",
            [(7, "AUTH[0].dummy.AUTH_CLASS")],
        ),
    ]


def test_every_production_refusal_names_file_line_and_key(tmp_path: Path, site: str) -> None:
    for number, (text, expected) in enumerate(_refusals(site)):
        path = write(tmp_path, text, name=f"prod{number}.yml")
        message = fails(path)
        lines = message.splitlines()
        if len(expected) > 1:
            assert lines[0] == f"{len(expected)} problems in {path}:", message
            lines = [line.strip() for line in lines[1:]]
        assert len(lines) == len(expected), message
        for line_number, key in expected:
            prefix = f"{path}, line {line_number}, at {key}: "
            assert [line for line in lines if line.startswith(prefix)], (prefix, message)
        assert all("production: true" in line for line in lines), message
        assert "changeme" not in message and "'short'" not in message


def test_other_value_errors_at_startup_are_located(tmp_path: Path, site: str) -> None:
    failing = site.replace("SiteProvider", "FailingProvider")
    cases = [
        ("sessions:\n  store: 'nosuch://x'\nproviders:\n  - name: dummy\n", "line 2, at sessions.store"),
        ("permissions:\n  store: 'postgres://x'\nproviders:\n  - name: dummy\n", "line 2, at permissions.store"),
        (
            f"tokens:\n  algorithm: EdDSA\n  private_key_file: {tmp_path / 'missing.pem'}\n"
            "providers:\n  - name: dummy\n",
            "line 3, at tokens.private_key_file",
        ),
        (f"providers:\n  - name: f\n    class: {failing}\n", "line 2, at providers[0]"),
        ("providers:\n  - name: k\n    type: no-such-type\n", "line 3, at providers[0].type"),
        ("providers:\n  - name: k\n    class: 'no_such_module:X'\n", "line 3, at providers[0].class"),
    ]
    for number, (text, where) in enumerate(cases):
        path = write(tmp_path, text, name=f"case{number}.yml")
        message = fails(path)
        assert message.startswith(f"{path}, {where}: "), message


def test_file_permission_check_reads_the_mode_of_the_file_read(tmp_path: Path) -> None:
    # The mode is taken from the open file, so a rename after reading cannot hide it.
    path = write(tmp_path, f"tokens:\n  secret: '{SECRET}'\nproviders:\n  - name: dummy\n", 0o644)
    config = load_config(path, environ={})
    os.chmod(path, 0o600)
    assert config.source.mode == 0o644
    assert config.source.written_in_file(("tokens", "secret"))
