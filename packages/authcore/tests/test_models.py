"""Identities, credential packages, provider configs and durations: bad input gets a typed error."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from authcore import (
    AuthorizationCodeCredentials,
    Identity,
    NotSupported,
    PasswordCredentials,
    ProviderConfig,
    TokenCredentials,
    UserManagement,
)
from authcore.durations import parse_duration
from authcore.errors import AuthError, ConfigError, InvalidCredentials


def test_identity_views():
    identity = Identity(
        login="jd", given_name="Jane", family_name="Doe", email="jd@example.org", groups=("g",), roles=("r",)
    )
    assert identity.to_person() == {
        "login": "jd",
        "givenName": "Jane",
        "familyName": "Doe",
        "emailAddress": "jd@example.org",
    }
    assert identity.to_client_data() == {"client_id": "jd", "roles": ["g", "r"]}


def test_identity_session_state_is_never_shown():
    identity = Identity(login="jd", session_state={"upstream_refresh": "SECRET-REFRESH"})
    assert "SECRET-REFRESH" not in repr(identity)
    assert "session_state" not in identity.model_dump()
    assert "SECRET-REFRESH" not in identity.model_dump_json()


@pytest.mark.parametrize("login", ["", "a\x00b", "x" * 257, "tab\tin"])
def test_identity_rejects_bad_logins(login):
    with pytest.raises(ValidationError):
        Identity(login=login)


def test_identity_accepts_unicode():
    assert Identity(login="jöns-åkesson", permissions=["b", "a", "a"]).permissions == ("a", "b")


@pytest.mark.parametrize(
    "values",
    [
        {"login": "", "password": "x"},
        {"login": "u", "password": ""},
        {"login": "u\x00", "password": "x"},
        {"login": "u", "password": "x\x00"},
        {"login": "u" * 257, "password": "x"},
        {"login": "u", "password": "x" * 1025},
        {"login": "u", "password": "x", "extra": 1},
        {"login": 5, "password": "x"},
        {"login": "u"},
    ],
)
def test_password_credentials_refuse(values):
    with pytest.raises(ValidationError) as caught:
        PasswordCredentials.model_validate(values)
    if isinstance(values.get("password"), str) and len(values["password"]) > 3:
        assert values["password"] not in str(caught.value)


def test_password_is_secret():
    creds = PasswordCredentials(login="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(creds) and "hunter2-secret" not in str(creds)
    assert creds.password.get_secret_value() == "hunter2-secret"


@pytest.mark.parametrize("token", ["", "a b", "ü", "a\x00", "t" * 16385, "line\n"])
def test_token_credentials_refuse(token):
    with pytest.raises(ValidationError):
        TokenCredentials(token=token)


def test_token_credentials_repr_hides_token():
    assert "abc.def" not in repr(TokenCredentials(token="abc.def"))
    creds = AuthorizationCodeCredentials(code="the-code", redirect_uri="https://x/cb", code_verifier="v" * 43)
    assert "the-code" not in repr(creds)


class TLSConfig(ProviderConfig):
    tls_verify_fields = ("verify",)
    verify: bool = True
    client_secret: SecretStr | None = None


def test_provider_config_production_issues():
    assert TLSConfig().production_issues() == []
    issues = TLSConfig(verify=False, client_secret="changeme").production_issues()
    assert any("verify" in i for i in issues) and any("client_secret" in i for i in issues)
    assert not any("changeme" in i for i in issues)
    with pytest.raises(ValidationError):
        TLSConfig.model_validate({"unknown": 1})


def test_user_management_defaults_raise_not_supported():
    class ReadOnly(UserManagement):
        name = "ro"

        def list_users(self, *, search=None, limit=100, offset=0):
            return []

    users = ReadOnly()
    assert users.supported_user_operations() == ("list_users",)
    with pytest.raises(NotSupported) as caught:
        users.delete_user("x")
    assert caught.value.operation == "delete_user" and caught.value.provider == "ro"
    assert caught.value.status_code == 501


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), (90, 90), ("90", 90), ("1h30m", 5400), ("1d", 86400), ("250ms", 0.25), (1.5, 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["", "x", "15 minutes", "-1", -1, True, None, "9" * 100, "1e9", float("nan"), "100000d"]
)
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_error_hierarchy():
    assert issubclass(ConfigError, AuthError) and ConfigError.exit_code == 2
    assert InvalidCredentials().message == "invalid login or password"
    assert InvalidCredentials.status_code == 401
