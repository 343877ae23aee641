"""The HTTP client: size cap, JSON only, no redirects, OAuth errors in authcore's terms, nothing secret in messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auth_oidc.http import MAX_ANSWER
from auth_oidc.testing import OidcProviderServer, standard_client
from authcore import InvalidCredentials, InvalidToken, PasswordCredentials, ProviderUnavailable

SECRET = "p@ss w:rd/+%&=?-client-secret"


@pytest.fixture
def http(static_issuer: Any, make_provider: Any) -> Any:
    return make_provider(static_issuer.issuer, client_secret=SECRET).http


@pytest.mark.parametrize("length", [True, False], ids=["declared", "streamed"])
def test_answers_are_capped(static_issuer: Any, http: Any, length: bool) -> None:
    big = json.dumps({"keys": ["x" * 1000] * (MAX_ANSWER // 1000 + 10)}).encode()
    static_issuer.raw("/big", big, length=length)
    with pytest.raises(ProviderUnavailable, match="larger than"):
        http.get_json(static_issuer.issuer + "/big")
    small = {"keys": ["x" * 1000] * (MAX_ANSWER // 2000)}
    static_issuer.json("/small", small, length=length)
    assert http.get_json(static_issuer.issuer + "/small") == small


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason"),
    [
        (200, b"<html>hello</html>", "text/html", "with text/html, not JSON"),
        (200, b"{not json", "application/json", "not valid JSON"),
        (500, b"<html>oops</html>", "text/html", "answered 500"),
        (404, b"", "text/plain", "not found"),
        (302, b"", "text/plain", "redirects are not followed"),
    ],
)
def test_bad_answers(static_issuer: Any, http: Any, status: int, body: bytes, content_type: str, reason: str) -> None:
    static_issuer.json("/target", {"ok": True})
    location = {"Location": static_issuer.issuer + "/target"}
    static_issuer.raw("/doc", body, status, content_type=content_type, headers=location)
    with pytest.raises(ProviderUnavailable, match=reason) as caught:
        http.get_json(static_issuer.issuer + "/doc")
    assert "'sso'" in str(caught.value) and "127.0.0.1:" in str(caught.value)
    assert static_issuer.hits["/target"] == 0


@pytest.mark.parametrize(
    ("status", "error", "raised", "reason"),
    [
        (400, "invalid_grant", InvalidCredentials, None),
        (401, "invalid_client", ProviderUnavailable, "refused our client credentials"),
        (400, "unauthorized_client", ProviderUnavailable, "refused our client credentials"),
        (401, None, ProviderUnavailable, "refused our client credentials"),
        (400, "invalid_scope", ProviderUnavailable, r"answered 400 \(invalid_scope\)"),
        (400, "<script>", ProviderUnavailable, "answered 400$"),
        (503, None, ProviderUnavailable, "answered 503"),
    ],
)
def test_oauth_errors(
    static_issuer: Any, http: Any, status: int, error: str | None, raised: type[Exception], reason: str | None
) -> None:
    body: dict[str, Any] = {"error_description": f"echo of {SECRET} and the password hunter2"}
    if error is not None:
        body["error"] = error
    static_issuer.json("/token", body, status=status)
    with pytest.raises(raised, match=reason) as caught:
        http.post_form(
            static_issuer.issuer + "/token",
            {"grant_type": "password", "password": "hunter2"},
            refused=InvalidCredentials,
        )
    text = str(caught.value) + repr(caught.value)
    assert SECRET not in text and "hunter2" not in text and "echo" not in text


def test_unreachable(static_issuer: Any, http: Any) -> None:
    url = static_issuer.issuer + "/x"
    static_issuer.stop()
    with pytest.raises(ProviderUnavailable, match="cannot be reached"):
        http.get_json(url)


def test_bearer_refused_is_the_callers_error(static_issuer: Any, http: Any) -> None:
    static_issuer.json("/me", {"error": "invalid_token"}, status=401)
    with pytest.raises(InvalidToken):
        http.get_json(static_issuer.issuer + "/me", bearer="some-token", refused=InvalidToken)


@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
def test_client_secrets_with_special_characters(
    oidc_server_factory: Any, make_provider: Any, kit: Any, client_auth: str
) -> None:
    # RFC 6749 2.3.1: Basic credentials are form-encoded before base64; oidc-provider decodes them so.
    client = standard_client(client_secret=SECRET, token_endpoint_auth_method=client_auth)
    server: OidcProviderServer = oidc_server_factory(
        access_token_format="opaque", password_grant=True, clients=[client]
    )
    provider = make_provider(server.issuer, client_secret=SECRET, client_auth=client_auth, password_grant=True)
    identity = provider.authenticate(PasswordCredentials(login="bob", password="bob-password"))
    assert identity.login == "bob"
