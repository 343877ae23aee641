"""Single sign-on pieces: PKCE (S256), state and nonce, the authorization and logout URLs.

The web layer redirects the browser to :func:`authorization_url`, keeps ``state``,
``nonce`` and the PKCE verifier server-side, checks ``state`` on the callback, and hands
the code, verifier and nonce to ``AuthManager.login``; the provider exchanges the code
and checks the nonce in the ID token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlencode

__all__ = [
    "new_code_verifier",
    "code_challenge",
    "new_state",
    "new_nonce",
    "authorization_url",
    "logout_url",
    "same_value",
]


def new_code_verifier() -> str:
    """A PKCE code verifier: 64 random bytes, base64url (86 characters, RFC 7636 allows 43-128)."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """The S256 challenge of *verifier*: ``BASE64URL(SHA256(verifier))`` without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """A random ``state`` value (CSRF protection of the callback)."""
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    """A random ``nonce`` value (binds the ID token to this request)."""
    return secrets.token_urlsafe(32)


def same_value(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two optional strings (``None`` equals nothing)."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    nonce: str,
    code_verifier: str,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The URL that starts the authorization-code flow with PKCE S256 (*extra*: more parameters,
    ``resource`` or ``prompt`` say, which never override the ones above)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    query = {**(extra or {}), **query}
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(query)}"


def logout_url(
    endpoint: str,
    *,
    client_id: str,
    id_token_hint: str | None = None,
    post_logout_redirect_uri: str | None = None,
) -> str:
    """The end-session URL (RP-initiated logout) for a browser."""
    query = {"client_id": client_id}
    if id_token_hint:
        query["id_token_hint"] = id_token_hint
    if post_logout_redirect_uri:
        query["post_logout_redirect_uri"] = post_logout_redirect_uri
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(query)}"
