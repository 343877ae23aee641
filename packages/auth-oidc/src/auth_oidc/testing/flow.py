"""Drive the test server's login page with httpx, as a browser would (no JavaScript needed).

:func:`pkce_pair` makes a PKCE S256 verifier and challenge; :func:`authorization_url` builds
an authorization request; :func:`drive_login` follows it through ``/interaction/<uid>``,
posts the login form and stops at the client's redirect URI, returning that URL (with
``code``, ``state`` and ``iss``) without requesting it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import urlencode, urljoin

import httpx

__all__ = ["LoginRefused", "authorization_url", "drive_login", "pkce_pair"]

_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_MAX_HOPS = 10


class LoginRefused(AssertionError):
    """The login page came back with an error instead of redirecting."""


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for PKCE with S256 (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    scope: str = "openid profile email groups",
    state: str | None = None,
    nonce: str | None = None,
    **params: str,
) -> str:
    """An authorization-code request with PKCE S256 (a fresh ``state`` and ``nonce`` when not given)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state or secrets.token_urlsafe(16),
        "nonce": nonce or secrets.token_urlsafe(16),
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **params,
    }
    return f"{authorization_endpoint}?{urlencode(query)}"


def _follow(http: httpx.Client, response: httpx.Response, redirect_uri: str) -> httpx.Response | str:
    """Follow redirects on the server; stop (returning the URL) at the client's redirect URI."""
    for _ in range(_MAX_HOPS):
        if not response.is_redirect:
            return response
        target = urljoin(str(response.url), response.headers["location"])
        if target.split("?", 1)[0] == redirect_uri:
            return target
        response = http.get(target)
    raise AssertionError(f"more than {_MAX_HOPS} redirects")


def drive_login(http: httpx.Client, url: str, *, login: str, password: str, redirect_uri: str) -> str:
    """Open *url*, sign in on the login page, and return the redirect-URI URL the server sends back.

    *http* keeps the server's cookies (use one ``httpx.Client`` per simulated browser, with
    ``follow_redirects=False``). A second authorization in the same client skips the form
    (the session cookie is still valid). :class:`LoginRefused` if the form shows an error.
    """
    page = _follow(http, http.get(url), redirect_uri)
    if isinstance(page, str):
        return page
    match = _ACTION.search(page.text)
    if page.status_code != 200 or match is None:
        raise AssertionError(f"expected the login form, got HTTP {page.status_code}")
    action = urljoin(str(page.url), html.unescape(match.group(1)))
    answer = http.post(action, data={"login": login, "password": password})
    result = _follow(http, answer, redirect_uri)
    if isinstance(result, str):
        return result
    raise LoginRefused(f"login refused (HTTP {result.status_code})")
