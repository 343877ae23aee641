"""Keycloak's errors in authcore's terms.

A down, slow or failing Keycloak is :class:`~authcore.ProviderUnavailable`, never
:class:`~authcore.InvalidCredentials`: a server that cannot answer is not a wrong password.
Messages never carry a password, a token or a secret.
"""

from __future__ import annotations

import json
from typing import Any

from authcore import AuthError, ProviderUnavailable, UserExists, UserNotFound

__all__ = ["UnknownRole", "KeycloakRefused", "oauth_error", "admin_error", "client_refused", "grant_refused"]


class UnknownRole(AuthError):
    """User management: the name is neither a realm role nor a group of the realm."""

    status_code = 404
    code = "unknown_role"
    default_message = "no such role or group"


class KeycloakRefused(AuthError):
    """User management: Keycloak refused the change (a password policy, say)."""

    status_code = 400
    code = "keycloak_refused"
    default_message = "Keycloak refused the change"


def oauth_error(exc: BaseException) -> tuple[int | None, str, str]:
    """``(status, error, error_description)`` of a python-keycloak error from an OAuth endpoint."""
    status = getattr(exc, "response_code", None)
    body: Any = getattr(exc, "response_body", None)
    error = description = ""
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            error = str(data.get("error", ""))[:64]
            description = str(data.get("error_description", ""))[:200]
    return (status if isinstance(status, int) else None), error, description


def client_refused(error: str, description: str) -> bool:
    """Whether a token-endpoint error says Keycloak did not accept our client's credentials.

    The error code alone cannot tell: Keycloak answers an unknown client with ``invalid_client``
    but a wrong or missing secret with ``unauthorized_client`` ("Invalid client or Invalid
    client credentials" since Keycloak 20, "Invalid client secret" before), the same code it
    uses for an authenticated client that may not use a grant. Its descriptions tell them apart.
    """
    if error == "invalid_client":
        return True
    if error != "unauthorized_client":
        return False
    text = description.lower()
    return "invalid client" in text or "client secret" in text or "client credentials" in text


def grant_refused(error: str, description: str) -> bool:
    """Whether Keycloak authenticated the client and then refused it the client-credentials grant
    because the client has no service account ("Client not enabled to retrieve service account",
    "Public client not allowed to retrieve service account", "Bearer-only client not allowed ...")."""
    return error == "unauthorized_client" and "service account" in description.lower()


def admin_error(exc: BaseException, provider: str, *, subject: str = "user") -> AuthError:
    """The authcore error for a python-keycloak error from the admin API."""
    from keycloak.exceptions import KeycloakAuthenticationError, KeycloakConnectionError

    if isinstance(exc, AuthError):
        return exc
    if isinstance(exc, KeycloakConnectionError):
        return ProviderUnavailable(f"provider {provider!r}: Keycloak cannot be reached")
    if isinstance(exc, KeycloakAuthenticationError):
        return ProviderUnavailable(f"provider {provider!r}: Keycloak refused the admin credentials")
    status, _error, _description = oauth_error(exc)
    if status == 404:
        return UserNotFound() if subject == "user" else UnknownRole()
    if status == 409:
        return UserExists()
    if status == 403:
        return ProviderUnavailable(f"provider {provider!r}: the admin account lacks the realm-management roles")
    if status is not None and 400 <= status < 500:
        message = _admin_message(exc)
        return KeycloakRefused(f"Keycloak refused the change: {message}" if message else None)
    return ProviderUnavailable(f"provider {provider!r}: Keycloak failed ({status or type(exc).__name__})")


def _admin_message(exc: BaseException) -> str:
    body: Any = getattr(exc, "response_body", None)
    try:
        data = json.loads(body) if isinstance(body, bytes | str) else None
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    message = data.get("errorMessage") or data.get("error_description") or data.get("error") or ""
    text = str(message)[:200]
    return text if text.isprintable() else ""
