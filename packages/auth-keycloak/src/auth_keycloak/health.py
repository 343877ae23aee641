"""What ``authcore check`` learns about a Keycloak provider without a user.

1. The realm's discovery document: Keycloak answers, and knows the realm.
2. Our client's credentials: a client-credentials grant at the token endpoint. Keycloak
   authenticates the client before it looks at the grant, so the answer tells a wrong
   secret or an unknown client (refused: unhealthy) from a client that authenticated but
   has no service account (``unauthorized_client`` "... not enabled to retrieve service
   account": the credentials were accepted, and password or SSO logins need nothing more).
   A public client sends no secret and is checked the same way: its ``client_id`` must exist.

An unhealthy :class:`~authcore.Health` names the realm's URL and the reason, e.g.
``https://sso.example.org/realms/x: client credentials refused (unauthorized_client)``;
never the secret (Keycloak's error descriptions are not repeated either).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authcore import Health

from .config import KeycloakConfig
from .errors import client_refused, grant_refused, oauth_error

if TYPE_CHECKING:
    from keycloak import KeycloakOpenID

__all__ = ["check_health"]


def check_health(openid: KeycloakOpenID, settings: KeycloakConfig, *, keys: int) -> Health:
    """The health of one realm and client (two HTTP calls at most)."""
    where = settings.realm_issuer
    failed, _answer = _ask(openid.well_known)
    if failed is not None:
        status, error, _description = failed
        return Health(ok=False, detail=f"{where}: discovery document: {_reason(status, error)}")
    failed, _answer = _ask(
        lambda: openid.token(username=None, password=None, grant_type="client_credentials", scope=settings.scope)
    )
    if failed is None:
        return Health(ok=True, extra={"keys": keys, "client": "credentials accepted"})
    status, error, description = failed
    if grant_refused(error, description):
        return Health(ok=True, extra={"keys": keys, "client": "credentials accepted (no service account)"})
    if client_refused(error, description):
        return Health(ok=False, detail=f"{where}: client credentials refused ({_code(error)})")
    if error and status is not None and 400 <= status < 500:  # authenticated, then refused: invalid_scope, say
        return Health(ok=False, detail=f"{where}: token endpoint refused the client ({_code(error)})")
    return Health(ok=False, detail=f"{where}: token endpoint: {_reason(status, error)}")


def _ask(request: Callable[[], Any]) -> tuple[tuple[int | None, str, str] | None, Any]:
    """``(None, answer)``, or ``((status, error, description), None)`` when the call failed."""
    from keycloak.exceptions import KeycloakConnectionError, KeycloakError

    try:
        return None, request()
    except KeycloakConnectionError:
        return (None, "unreachable", ""), None
    except KeycloakError as exc:
        return oauth_error(exc), None
    except (TypeError, ValueError, KeyError):  # a body that is not Keycloak's JSON (a proxy's error page)
        return (None, "not-json", ""), None


def _code(error: str) -> str:
    """An OAuth error code as sent, if it looks like one (RFC 6749 codes are short ASCII words)."""
    return error if error.isascii() and error.replace("_", "").isalnum() and len(error) <= 40 else "an error"


def _reason(status: int | None, error: str) -> str:
    if error == "unreachable":
        return "cannot be reached"
    if error == "not-json":
        return "the answer is not Keycloak's JSON"
    if status == 404:
        return "Keycloak does not know the realm (404)"
    return f"Keycloak answered {status or 'with an error'}" + (f" ({_code(error)})" if error else "")
