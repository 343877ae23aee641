"""The oidc-provider test server, proved with plain httpx and PyJWT (no auth_oidc provider code).

Every test talks to a real node process on a loopback port; the JWTs it issues are checked
against the keys it publishes.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from auth_oidc.testing import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_RESOURCE,
    REDIRECT_URIS,
    SUPPORTED_ALGS,
    NodeMissing,
    OidcProviderServer,
    generate_jwks,
    public_jwks,
    sign_jwt,
    standard_users,
)
from auth_oidc.testing.flow import LoginRefused, authorization_url, drive_login, pkce_pair
from authcore.errors import ConfigError

ServerFactory = Callable[..., OidcProviderServer]
REDIRECT_URI = REDIRECT_URIS[0]
ALICE = standard_users()["alice"]["claims"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# ---------------------------------------------------------------- helpers


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """One simulated browser: its own cookie jar, redirects followed by hand."""
    with httpx.Client(follow_redirects=False, timeout=10.0, trust_env=False) as client:
        yield client


def discovery(server: OidcProviderServer) -> dict[str, Any]:
    return dict(httpx.get(server.discovery_url, timeout=10.0).json())


def segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def verify(server: OidcProviderServer, token: str, audience: str, **options: Any) -> dict[str, Any]:
    """Check *token* against the keys the server publishes at its jwks_uri."""
    published = httpx.get(discovery(server)["jwks_uri"], timeout=10.0).json()
    header = segment(token, 0)
    key = jwt.PyJWKSet.from_dict(published)[header["kid"]]
    return dict(jwt.decode(token, key, algorithms=[header["alg"]], audience=audience, issuer=server.issuer, **options))


def token_request(server: OidcProviderServer, **form: str) -> httpx.Response:
    return httpx.post(discovery(server)["token_endpoint"], data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10.0)


def code_flow(
    server: OidcProviderServer, http: httpx.Client, *, login: str = "alice", password: str = "alice-password"
) -> tuple[dict[str, Any], str]:
    """Sign in through the login page and exchange the code: ``(token response, nonce)``."""
    verifier, challenge = pkce_pair()
    url = authorization_url(
        discovery(server)["authorization_endpoint"],
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        code_challenge=challenge,
        nonce="n-0S6_WzA2Mj",
    )
    callback = drive_login(http, url, login=login, password=password, redirect_uri=REDIRECT_URI)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = token_request(
        server, grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()), "n-0S6_WzA2Mj"


def introspect(server: OidcProviderServer, token: str) -> httpx.Response:
    endpoint = discovery(server)["introspection_endpoint"]
    return httpx.post(endpoint, data={"token": token}, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10.0)


# ---------------------------------------------------------------- discovery and keys


def test_discovery_document_lists_the_endpoints(oidc_server: OidcProviderServer) -> None:
    doc = discovery(oidc_server)
    assert doc["issuer"] == oidc_server.issuer == f"http://127.0.0.1:{oidc_server.port}"
    assert "S256" in doc["code_challenge_methods_supported"]
    for name in ("authorization", "token", "userinfo", "introspection", "revocation", "end_session"):
        assert doc[f"{name}_endpoint"].startswith(oidc_server.issuer), name
    assert {"openid", "profile", "email", "groups"} <= set(doc["scopes_supported"])
    assert "client_credentials" in doc["grant_types_supported"]
    assert "password" not in doc["grant_types_supported"]


def test_jwks_publishes_the_configured_public_keys_only(oidc_server_factory: ServerFactory) -> None:
    keys = generate_jwks(("RS256", "PS256", "ES256", "ES384", "EdDSA"), kid_prefix="pub")
    server = oidc_server_factory(jwks=keys)
    published = httpx.get(discovery(server)["jwks_uri"], timeout=10.0).json()["keys"]
    assert sorted(k["kid"] for k in published) == sorted(k["kid"] for k in keys["keys"])
    assert not any(PRIVATE_MEMBERS & set(k) for k in published)
    assert not any(PRIVATE_MEMBERS & set(k) for k in server.public_jwks["keys"])
    ours = {k["kid"]: k for k in server.public_jwks["keys"]}
    for key in published:
        for member in ("kty", "n", "e", "crv", "x", "y"):
            assert key.get(member) == ours[key["kid"]].get(member)
    assert all("d" in k for k in server.jwks["keys"])


# ---------------------------------------------------------------- authorization code flow


def test_code_flow_step_by_step_with_jwt_access_tokens(oidc_server: OidcProviderServer, http: httpx.Client) -> None:
    doc = discovery(oidc_server)
    verifier, challenge = pkce_pair()
    url = authorization_url(
        doc["authorization_endpoint"], client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, code_challenge=challenge
    )
    state = parse_qs(urlsplit(url).query)["state"][0]
    to_login = http.get(url)
    assert to_login.is_redirect and "/interaction/" in to_login.headers["location"]
    page = http.get(httpx.URL(url).join(to_login.headers["location"]))
    assert page.status_code == 200
    assert 'name="login"' in page.text and 'type="password"' in page.text and "Sign in" in page.text
    resume = http.post(page.url, data={"login": "alice", "password": "alice-password"})
    assert resume.is_redirect
    answer = http.get(httpx.URL(str(page.url)).join(resume.headers["location"]))
    assert answer.is_redirect
    callback = answer.headers["location"]
    assert callback.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [state] and query["iss"] == [oidc_server.issuer]

    tokens = token_request(
        oidc_server,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    ).json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    assert segment(tokens["access_token"], 0)["typ"] == "at+jwt"
    access = verify(oidc_server, tokens["access_token"], DEFAULT_RESOURCE)
    assert access["sub"] == ALICE["sub"] and access["client_id"] == CLIENT_ID
    assert {"openid", "profile", "email", "groups"} <= set(access["scope"].split())
    assert access["groups"] == ["staff", "mx"] and access["preferred_username"] == "alice"
    # The access token is for the API, so the ID token carries the scope claims itself.
    identity = verify(oidc_server, tokens["id_token"], CLIENT_ID)
    assert identity["sub"] == ALICE["sub"] and identity["email"] == "alice@example.org"
    assert identity["groups"] == ["staff", "mx"]
    # A code is single use.
    again = token_request(
        oidc_server,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_jwt_mode_refresh_and_oidc_provider_limits(oidc_server: OidcProviderServer, http: httpx.Client) -> None:
    tokens, _ = code_flow(oidc_server, http)
    refreshed = token_request(oidc_server, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert verify(oidc_server, refreshed.json()["access_token"], DEFAULT_RESOURCE)["sub"] == ALICE["sub"]
    assert introspect(oidc_server, tokens["refresh_token"]).json()["active"] is True
    # oidc-provider never introspects structured tokens, and audience-bound ones miss userinfo.
    refused = introspect(oidc_server, tokens["access_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "unsupported_token_type"
    userinfo = httpx.get(
        discovery(oidc_server)["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10.0,
    )
    assert userinfo.status_code == 401


def test_code_flow_with_opaque_tokens(oidc_server_opaque: OidcProviderServer, http: httpx.Client) -> None:
    server = oidc_server_opaque
    tokens, nonce = code_flow(server, http, login="bob", password="bob-password")
    assert tokens["access_token"].count(".") == 0 and tokens["refresh_token"]
    identity = verify(server, tokens["id_token"], CLIENT_ID)
    assert identity["nonce"] == nonce and identity["sub"] == standard_users()["bob"]["claims"]["sub"]
    # oidc-provider's default: scope claims come from userinfo, not the ID token.
    assert "email" not in identity and "groups" not in identity
    userinfo = httpx.get(
        discovery(server)["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10.0,
    ).json()
    assert userinfo["groups"] == ["users"] and userinfo["preferred_username"] == "bob"
    info = introspect(server, tokens["access_token"]).json()
    assert info["active"] is True and info["client_id"] == CLIENT_ID and info["sub"] == identity["sub"]
    assert info["groups"] == ["users"] and "groups" in info["scope"].split()
    revoked = httpx.post(
        discovery(server)["revocation_endpoint"],
        data={"token": tokens["access_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10.0,
    )
    assert revoked.status_code == 200
    assert introspect(server, tokens["access_token"]).json() == {"active": False}


def test_wrong_password_shows_the_error_and_the_form_again(oidc_server: OidcProviderServer, http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    url = authorization_url(
        discovery(oidc_server)["authorization_endpoint"],
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        code_challenge=challenge,
    )
    with pytest.raises(LoginRefused):
        drive_login(http, url, login="alice", password="wrong", redirect_uri=REDIRECT_URI)
    page = http.get(httpx.URL(url).join(http.get(url).headers["location"]))
    answer = http.post(page.url, data={"login": "alice", "password": "not-it"})
    assert answer.status_code == 401 and "Invalid login or password" in answer.text
    assert 'name="login"' in answer.text and "not-it" not in answer.text
    unknown = http.post(page.url, data={"login": "nobody", "password": "alice-password"})
    assert unknown.status_code == 401 and unknown.text == answer.text
    assert http.post(page.url, data={"login": "alice", "password": "alice-password"}).is_redirect


def test_logout_at_the_end_session_endpoint(oidc_server_opaque: OidcProviderServer, http: httpx.Client) -> None:
    server = oidc_server_opaque
    tokens, _ = code_flow(server, http)
    endpoint = discovery(server)["end_session_endpoint"]
    confirm = http.get(
        endpoint,
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1/logged-out",
            "state": "bye",
        },
    )
    assert confirm.status_code == 200
    xsrf = confirm.text.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
    done = http.post(f"{endpoint}/confirm", data={"xsrf": xsrf, "logout": "yes"})
    assert done.is_redirect and done.headers["location"] == "http://127.0.0.1/logged-out?state=bye"
    # Without offline_access the tokens lived with the session.
    assert introspect(server, tokens["access_token"]).json() == {"active": False}


# ---------------------------------------------------------------- other grants


def test_password_grant_is_unknown_by_default(oidc_server: OidcProviderServer) -> None:
    answer = token_request(oidc_server, grant_type="password", username="alice", password="alice-password")
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_password_grant_when_enabled(oidc_server_factory: ServerFactory) -> None:
    server = oidc_server_factory(
        access_token_format="jwt", password_grant=True, jwks=generate_jwks(("ES256", "RS256")), id_token_alg="ES256"
    )
    assert "password" in discovery(server)["grant_types_supported"]
    answer = token_request(
        server, grant_type="password", username="alice", password="alice-password", scope="openid profile groups"
    )
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert segment(tokens["access_token"], 0)["typ"] == "at+jwt"
    access = verify(server, tokens["access_token"], DEFAULT_RESOURCE)
    assert access["groups"] == ["staff", "mx"] and "email" not in access
    identity = verify(server, tokens["id_token"], CLIENT_ID)
    assert segment(tokens["id_token"], 0)["alg"] == "ES256" and identity["sub"] == ALICE["sub"]
    refreshed = token_request(server, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    for username, password in (("alice", "wrong"), ("nobody", "alice-password")):
        refused = token_request(server, grant_type="password", username=username, password=password)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_client_credentials_grant(oidc_server: OidcProviderServer) -> None:
    answer = token_request(oidc_server, grant_type="client_credentials", scope="openid")
    assert answer.status_code == 200, answer.text
    access = verify(oidc_server, answer.json()["access_token"], DEFAULT_RESOURCE)
    assert access["sub"] == CLIENT_ID and access["client_id"] == CLIENT_ID


# ---------------------------------------------------------------- life cycle


def test_restart_with_rotated_keys_keeps_the_port(oidc_server: OidcProviderServer, http: httpx.Client) -> None:
    port, old_kids = oidc_server.port, {k["kid"] for k in oidc_server.jwks["keys"]}
    rotated = generate_jwks(("RS256",), kid_prefix="rotated")
    oidc_server.restart(jwks=rotated)
    assert oidc_server.port == port
    published = {k["kid"] for k in httpx.get(discovery(oidc_server)["jwks_uri"], timeout=10.0).json()["keys"]}
    assert published == {"rotated1-rs256"} and not published & old_kids
    tokens, _ = code_flow(oidc_server, http)
    assert segment(tokens["access_token"], 0)["kid"] == "rotated1-rs256"


def test_stop_leaves_no_process(oidc_server_factory: ServerFactory) -> None:
    server = oidc_server_factory()
    pid, url = server.pid, server.discovery_url
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    server.stop()
    assert server.pid is None and not os.path.exists(f"/proc/{pid}")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5.0)
    server.stop()  # idempotent


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = OidcProviderServer(clients=[], users={}, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="in use"):
            server.start()
    assert server.pid is None


def test_node_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    server = OidcProviderServer(clients=[], users={})
    with pytest.raises(NodeMissing, match="nodejs") as info:
        server.start()
    assert isinstance(info.value, RuntimeError)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="access_token_format"):
        OidcProviderServer(clients=[], users={}, access_token_format="paseto")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="private"):
        OidcProviderServer(clients=[], users={}, jwks=public_jwks(generate_jwks()))
    with pytest.raises(ConfigError, match="unsupported"):
        generate_jwks(("HS256",))
    assert "test-only-secret" not in repr(OidcProviderServer(clients=[{"client_secret": CLIENT_SECRET}], users={}))


def test_startup_failure_reports_node_stderr() -> None:
    # oidc-provider refuses an unknown feature when it starts: the error carries node's stderr.
    server = OidcProviderServer(clients=[], users={}, extra={"features": {"notAFeature": {"enabled": True}}})
    with pytest.raises(RuntimeError, match="exited with code"):
        server.start()
    assert server.pid is None


# ---------------------------------------------------------------- forging tokens


@pytest.mark.parametrize("alg", [a for a in SUPPORTED_ALGS if a != "Ed25519"])
def test_sign_jwt_verifies_with_the_public_key(alg: str) -> None:
    keys = generate_jwks((alg,))
    token = sign_jwt({"sub": "x", "aud": "api"}, keys["keys"][0], {"typ": "at+jwt"})
    header = segment(token, 0)
    assert header == {"alg": alg, "typ": "at+jwt", "kid": f"k1-{alg.lower()}"}
    key = jwt.PyJWKSet.from_dict(public_jwks(keys))[header["kid"]]
    assert jwt.decode(token, key, algorithms=[alg], audience="api")["sub"] == "x"


def test_sign_jwt_ed25519_alg_name_and_unsigned() -> None:
    jwk = generate_jwks(("Ed25519",))["keys"][0]
    token = sign_jwt({"sub": "x"}, jwk)
    head, body, signature = token.split(".")
    public = ed25519.Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "="))
    public.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), f"{head}.{body}".encode())
    assert sign_jwt({"sub": "x"}, jwk, {"alg": "none"}).endswith(".")


def test_secrets_stay_private(oidc_server_factory: ServerFactory) -> None:
    server = oidc_server_factory()
    rundir = server._rundir  # white-box: where the config file and the logs live
    assert rundir is not None
    # The config file holds the client secret, passwords and private keys: owner-only.
    assert (rundir / "config.json").stat().st_mode & 0o077 == 0
    assert (rundir / "stdout.log").read_text().strip() == f"ready {server.issuer}"
    logged = (rundir / "stderr.log").read_text()
    for secret in (CLIENT_SECRET, "alice-password", server.jwks["keys"][0]["d"]):
        assert secret not in logged
