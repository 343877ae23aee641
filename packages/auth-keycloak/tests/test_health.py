"""``health()`` / ``authcore check``: what can be checked without a user (the realm, our client's credentials),
with the realm's URL and the reason when unhealthy, never the secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from auth_keycloak.errors import client_refused, grant_refused
from auth_keycloak.testing import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    KeycloakTestServer,
    Realm,
)
from authcore import AuthManager
from authcore.cli import main as authcore_cli

WRONG = "wrong-secret-0f3c9a7d51"


def test_healthy_service_account_client(make_manager: Callable[..., AuthManager]):
    health = make_manager().health()["sso"]
    assert health.ok, health.detail
    assert health.extra["client"] == "credentials accepted"


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET), (PUBLIC_CLIENT_ID, None)],
    ids=["confidential-without-service-account", "public"],
)
def test_client_without_service_account_is_healthy(
    make_manager: Callable[..., AuthManager], client_id: str, secret: str | None
):
    """Keycloak refuses these the client-credentials grant *after* accepting the client: healthy."""
    health = make_manager(client_id=client_id, client_secret=secret).health()["sso"]
    assert health.ok, health.detail
    assert health.extra["client"] == "credentials accepted (no service account)"


@pytest.mark.parametrize(
    ("client_id", "secret", "error"),
    [
        (CLIENT_ID, WRONG, "unauthorized_client"),  # a wrong secret, as Keycloak 20+ answers it
        (OTHER_CLIENT_ID, WRONG, "unauthorized_client"),  # no service account, but the secret is checked first
        (CLIENT_ID, None, "unauthorized_client"),  # a confidential client configured without its secret
        ("no-such-client", WRONG, "invalid_client"),
        ("no-such-client", None, "invalid_client"),
    ],
)
def test_refused_client_credentials_are_unhealthy(
    make_manager: Callable[..., AuthManager], keycloak_realm: Realm, client_id: str, secret: str | None, error: str
):
    health = make_manager(client_id=client_id, client_secret=secret).health()["sso"]
    assert not health.ok
    assert health.detail == f"{keycloak_realm.issuer}: client credentials refused ({error})"
    assert WRONG not in repr(health) and CLIENT_SECRET not in repr(health)


def test_unknown_realm_and_unreachable_server(make_manager: Callable[..., AuthManager], keycloak_server):
    health = make_manager(realm="no-such-realm").health()["sso"]
    assert not health.ok
    assert health.detail == f"{keycloak_server.url}realms/no-such-realm: discovery document: " + (
        "Keycloak does not know the realm (404)"
    )
    manager = make_manager(server_url="http://127.0.0.1:9/")
    assert manager.health()["sso"].detail == "http://127.0.0.1:9/realms/test: discovery document: cannot be reached"


def test_wrong_secret_still_refuses_logins_as_unavailability(make_manager: Callable[..., AuthManager]):
    from authcore import ProviderUnavailable

    with pytest.raises(ProviderUnavailable, match="refused our client credentials"):
        make_manager(client_secret=WRONG).login("sso", login="alice", password="Alice-pw-1")


def _config_file(tmp_path: Path, server: KeycloakTestServer, secret: str) -> Path:
    path = tmp_path / "authcore.yml"
    path.write_text(
        "providers:\n"
        "  - name: sso\n"
        "    type: keycloak\n"
        "    config:\n"
        f"      server_url: {server.url}\n"
        "      realm: test\n"
        f"      client_id: {CLIENT_ID}\n"
        f"      client_secret: {secret}\n"
        "      timeout: 2\n"
    )
    return path


def test_authcore_check_reports_a_wrong_secret(
    tmp_path: Path, keycloak_server: KeycloakTestServer, keycloak_realm: Realm, capsys: pytest.CaptureFixture[str]
):
    assert authcore_cli(["check", "--config", str(_config_file(tmp_path, keycloak_server, CLIENT_SECRET))]) == 0
    capsys.readouterr()
    assert authcore_cli(["check", "--config", str(_config_file(tmp_path, keycloak_server, WRONG))]) == 1
    out = capsys.readouterr()
    assert f"sso: UNHEALTHY: {keycloak_realm.issuer}: client credentials refused (unauthorized_client)" in out.out
    assert WRONG not in out.out + out.err
    assert authcore_cli(["check", "--json", "--config", str(_config_file(tmp_path, keycloak_server, WRONG))]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "client credentials refused" in report["providers"]["sso"]["detail"]


# Keycloak's token-endpoint answers across versions (ClientIdAndSecretAuthenticator, AuthenticationProcessor,
# ClientCredentialsGrantType): which say "your client's credentials are wrong" and which "the client has no
# service account".
REFUSED = [
    ("invalid_client", "Invalid client or Invalid client credentials"),  # unknown or disabled client (20+)
    ("invalid_client", "Invalid client credentials"),  # unknown client (before 20)
    ("unauthorized_client", "Invalid client or Invalid client credentials"),  # wrong or missing secret (20+)
    ("unauthorized_client", "Invalid client secret"),  # wrong secret (before 20)
    ("unauthorized_client", "Client secret not provided in request"),
    ("unauthorized_client", "Client credentials setup required"),
    ("unauthorized_client", "Invalid client credentials"),  # disabled client (before 20)
]
NO_SERVICE_ACCOUNT = [
    ("unauthorized_client", "Client not enabled to retrieve service account"),
    ("unauthorized_client", "Public client not allowed to retrieve service account"),
    ("unauthorized_client", "Bearer-only client not allowed to retrieve service account"),
]


@pytest.mark.parametrize(("error", "description"), REFUSED)
def test_keycloak_answers_for_refused_credentials(error: str, description: str):
    assert client_refused(error, description) and not grant_refused(error, description)


@pytest.mark.parametrize(("error", "description"), NO_SERVICE_ACCOUNT)
def test_keycloak_answers_for_clients_without_service_account(error: str, description: str):
    assert grant_refused(error, description) and not client_refused(error, description)
